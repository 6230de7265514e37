import type { PublishProperties, QoS, RetainHandling } from "@myqtt/codec";
import type {
  StoredDelivery,
  StoredMessage,
  StoredSessionInfo,
  StoredSubscription,
  StoredWill,
} from "@myqtt/storage";

// Values that carry a message (deliveries, wills, retained messages) are binary:
//   byte 0       format version (1)
//   bytes 1..4   length H of the header, unsigned 32-bit big-endian
//   5..5+H       the header: JSON, UTF-8
//   the rest     the payload, raw
// so a payload round-trips byte for byte and costs nothing to encode. Sessions and subscriptions
// have no bytes and are plain JSON text, readable with redis-cli.

const FORMAT = 1;
const PREFIX_LENGTH = 5;

/** A value that is not what this backend writes. */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
}

interface MessageHeader {
  t: string;
  q: QoS;
  r: boolean;
  e: number;
  p: string | null;
  /** Properties without the correlation data (JSON has no bytes). */
  x?: Omit<PublishProperties, "correlationData">;
  /** The correlation data, base64. */
  c?: string;
}

interface DeliveryHeader {
  s: number;
  q: QoS;
  r: boolean;
  i: readonly number[] | null;
  st: StoredDelivery["state"];
  k: number;
  m: MessageHeader;
}

interface WillHeader {
  at: number;
  d: number;
  m: MessageHeader;
}

interface RetainedHeader {
  m: MessageHeader;
}

function messageHeader(msg: StoredMessage): MessageHeader {
  const h: MessageHeader = {
    t: msg.topic,
    q: msg.qos,
    r: msg.retain,
    e: msg.expiresAt,
    p: msg.publisher,
  };
  if (msg.properties !== undefined) {
    const { correlationData, ...rest } = msg.properties;
    h.x = rest;
    if (correlationData !== undefined) h.c = Buffer.from(correlationData).toString("base64");
  }
  return h;
}

function messageOf(h: MessageHeader, payload: Uint8Array): StoredMessage {
  if (typeof h !== "object" || h === null || typeof h.t !== "string") {
    throw new DecodeError("the message header has no topic");
  }
  let properties: PublishProperties | undefined;
  if (h.x !== undefined || h.c !== undefined) {
    properties = { ...h.x };
    if (h.c !== undefined) properties.correlationData = copy(Buffer.from(h.c, "base64"));
  }
  return {
    topic: h.t,
    payload,
    qos: h.q,
    retain: h.r,
    ...(properties !== undefined ? { properties } : {}),
    expiresAt: h.e,
    publisher: h.p,
  };
}

function pack(header: object, payload: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const out = Buffer.allocUnsafe(PREFIX_LENGTH + json.length + payload.length);
  out[0] = FORMAT;
  out.writeUInt32BE(json.length, 1);
  json.copy(out, PREFIX_LENGTH);
  out.set(payload, PREFIX_LENGTH + json.length);
  return out;
}

function unpack(value: Buffer): { header: unknown; payload: Uint8Array } {
  if (value.length < PREFIX_LENGTH || value[0] !== FORMAT) {
    throw new DecodeError(`unknown value format ${value[0] ?? "(empty)"}`);
  }
  const end = PREFIX_LENGTH + value.readUInt32BE(1);
  if (end > value.length) throw new DecodeError("the header runs past the end of the value");
  let header: unknown;
  try {
    header = JSON.parse(value.toString("utf8", PREFIX_LENGTH, end));
  } catch (error) {
    throw new DecodeError("the header is not JSON", { cause: error });
  }
  if (typeof header !== "object" || header === null)
    throw new DecodeError("the header is not an object");
  return { header, payload: copy(value.subarray(end)) };
}

/** A plain Uint8Array of its own (not a view pinning a larger reply buffer). */
function copy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

export function encodeDelivery(d: StoredDelivery): Buffer {
  const h: DeliveryHeader = {
    s: d.seq,
    q: d.qos,
    r: d.retain,
    i: d.subscriptionIds,
    st: d.state,
    k: d.packetId,
    m: messageHeader(d.message),
  };
  return pack(h, d.message.payload);
}

export function decodeDelivery(value: Buffer): StoredDelivery {
  const { header, payload } = unpack(value);
  const h = header as DeliveryHeader;
  if (typeof h.s !== "number") throw new DecodeError("a delivery without seq");
  return {
    seq: h.s,
    message: messageOf(h.m, payload),
    qos: h.q,
    retain: h.r,
    subscriptionIds: h.i,
    state: h.st,
    packetId: h.k,
  };
}

export function encodeWill(w: StoredWill): Buffer {
  const h: WillHeader = { at: w.at, d: w.delay, m: messageHeader(w.message) };
  return pack(h, w.message.payload);
}

export function decodeWill(value: Buffer): StoredWill {
  const { header, payload } = unpack(value);
  const h = header as WillHeader;
  return { message: messageOf(h.m, payload), at: h.at, delay: h.d };
}

export function encodeRetained(msg: StoredMessage): Buffer {
  const h: RetainedHeader = { m: messageHeader(msg) };
  return pack(h, msg.payload);
}

export function decodeRetained(value: Buffer): StoredMessage {
  const { header, payload } = unpack(value);
  return messageOf((header as RetainedHeader).m, payload);
}

export function encodeSession(info: StoredSessionInfo): string {
  return JSON.stringify({
    expiryInterval: info.expiryInterval,
    disconnectedAt: info.disconnectedAt,
  });
}

export function decodeSession(value: Buffer): StoredSessionInfo {
  const v = parseJson(value) as StoredSessionInfo;
  if (typeof v.expiryInterval !== "number") throw new DecodeError("a session without expiry");
  return { expiryInterval: v.expiryInterval, disconnectedAt: v.disconnectedAt };
}

export function encodeSubscription(sub: StoredSubscription): string {
  return JSON.stringify(sub);
}

export function decodeSubscription(value: Buffer): StoredSubscription {
  const v = parseJson(value) as StoredSubscription;
  if (typeof v.filter !== "string") throw new DecodeError("a subscription without filter");
  return {
    filter: v.filter,
    qos: v.qos,
    noLocal: v.noLocal,
    retainAsPublished: v.retainAsPublished,
    retainHandling: v.retainHandling as RetainHandling,
    ...(v.subscriptionIdentifier !== undefined
      ? { subscriptionIdentifier: v.subscriptionIdentifier }
      : {}),
  };
}

function parseJson(value: Buffer): object {
  let v: unknown;
  try {
    v = JSON.parse(value.toString("utf8"));
  } catch (error) {
    throw new DecodeError("not JSON", { cause: error });
  }
  if (typeof v !== "object" || v === null) throw new DecodeError("not a JSON object");
  return v;
}
