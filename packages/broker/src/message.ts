import {
  encode,
  PacketType,
  type PublishPacket,
  type PublishProperties,
  type QoS,
} from "@myqtt/codec";

/**
 * An application message inside the broker: what was published, without the parts that belong
 * to one connection (packet id, topic alias, subscription identifiers). One object is shared by
 * every delivery of a publish.
 */
export interface BrokerMessage {
  readonly topic: string;
  /** Replaced by a copy of itself when held for long, if it is a view into a larger buffer. */
  payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  /** Forwarded properties; messageExpiryInterval is kept as `expiresAt` instead. */
  readonly properties: PublishProperties | undefined;
  /** Epoch milliseconds after which the message is dropped; 0 for never. */
  readonly expiresAt: number;
  /** The client id of the publisher, for No Local; null for messages the broker made. */
  readonly publisher: string | null;
  /**
   * Bytes counted against queue limits (see messageSize), -1 until sizeOf first counts them:
   * a message delivered at once, as most QoS 0 ones are, is never counted.
   */
  size: number;
  /** Queue, in-flight and retained entries that hold it (see MessageMemory). */
  holders?: number;
  /** QoS 0 encodings shared by every plain delivery, by protocol level (4 covers 3 too). */
  encodedV4?: Uint8Array | undefined;
  encodedV5?: Uint8Array | undefined;
}

const FORWARDED: readonly (keyof PublishProperties)[] = [
  "payloadFormatIndicator",
  "contentType",
  "responseTopic",
  "correlationData",
  "userProperties",
];

/** Builds the broker's message from a received PUBLISH (topic alias already resolved). */
export function messageFromPublish(
  packet: PublishPacket,
  topic: string,
  publisher: string | null,
  now: number,
): BrokerMessage {
  let properties: PublishProperties | undefined;
  let expiresAt = 0;
  const p = packet.properties;
  if (p !== undefined) {
    for (const key of FORWARDED) {
      const value = p[key];
      if (value !== undefined) (properties ??= {})[key] = value as never;
    }
    if (p.messageExpiryInterval !== undefined) expiresAt = now + p.messageExpiryInterval * 1000;
  }
  return {
    topic,
    payload: packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    properties,
    expiresAt,
    publisher,
    size: -1,
    holders: 0,
    // Present from the start, so that setting and clearing them changes no object's shape.
    encodedV4: undefined,
    encodedV5: undefined,
  };
}

/** Any character beyond Latin-1: V8 keeps such a string with two bytes per character. */
const WIDE = /[\u0100-\uffff]/;

/** The bytes a string's characters take in the heap. */
export function stringBytes(s: string): number {
  return WIDE.test(s) ? 2 * s.length : s.length;
}

/**
 * What each user property takes beside its two strings' characters: the pair's array, its
 * place in the list, and the two strings' headers (measured on Node 20: 99 bytes a pair for
 * 1000 pairs of short strings, 108 with 16-character values).
 */
const USER_PROPERTY_BYTES = 112;

/** The message's size (see messageSize), counted once. */
export function sizeOf(msg: BrokerMessage): number {
  if (msg.size < 0) msg.size = messageSize(msg.topic, msg.payload, msg.properties);
  return msg.size;
}

/**
 * What a message is counted for against maxQueuedBytes and maxTotalMessageBytes: its payload,
 * its topic and the properties it carries to 5.0 subscribers (user properties, correlation
 * data, response topic, content type), strings counted as they sit in the heap, plus 16.
 * Counting only payload and topic let one client queue 290 messages of 14 MB of user
 * properties each, counted 30 bytes, for one offline session until the broker ran out of heap.
 */
export function messageSize(
  topic: string,
  payload: Uint8Array,
  properties: PublishProperties | null | undefined,
): number {
  let size = payload.length + stringBytes(topic) + 16;
  if (properties == null) return size;
  if (properties.correlationData !== undefined) size += properties.correlationData.length;
  if (properties.responseTopic !== undefined) size += stringBytes(properties.responseTopic);
  if (properties.contentType !== undefined) size += stringBytes(properties.contentType);
  const user = properties.userProperties;
  if (user !== undefined)
    for (const [name, value] of user)
      size += USER_PROPERTY_BYTES + stringBytes(name) + stringBytes(value);
  return size;
}

/** Whether `bytes` is a view into a buffer much larger than itself. */
function keepsMore(bytes: Uint8Array): boolean {
  return bytes.buffer.byteLength - bytes.byteLength > 64 + (bytes.byteLength >> 3);
}

// Uint8Array's slice, not Buffer's (which returns a view): a copy of the same class.
const sliceCopy = Uint8Array.prototype.slice;

/**
 * Makes a message held for long keep only its own bytes. The decoder hands out payloads (and
 * correlation data) as views into the network chunk their packet arrived in, which a held
 * message would keep whole: measured, each 10-byte message queued from a 64 KB chunk kept
 * 58 KB outside the heap, counted 94 bytes. Such a view is copied out; a view that is most of
 * its buffer (a large payload gathered on its own) is not, nor is one copied already. Only
 * what is held for long pays for the copy (see Session.keepsLong; retained messages too):
 * copying every message in flight cost 18% of the harness's QoS 1 fan-in (605k -> 495k
 * msg/s), for messages held a millisecond.
 */
export function detach(msg: BrokerMessage): void {
  if (keepsMore(msg.payload)) msg.payload = sliceCopy.call(msg.payload);
  const properties = msg.properties;
  const correlationData = properties?.correlationData;
  if (correlationData !== undefined && keepsMore(correlationData))
    properties!.correlationData = sliceCopy.call(correlationData);
}

/** A message the broker makes itself (a will, an admin reply). */
export function makeMessage(
  topic: string,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  properties: PublishProperties | undefined,
  publisher: string | null,
  now: number,
): BrokerMessage {
  return messageFromPublish(
    {
      type: PacketType.PUBLISH,
      topic,
      payload,
      qos,
      retain,
      dup: false,
      ...(properties ? { properties } : {}),
    },
    topic,
    publisher,
    now,
  );
}

/** Whether the message expired (v5 3.3.2.3.3). */
export function isExpired(msg: BrokerMessage, now: number): boolean {
  return msg.expiresAt !== 0 && now >= msg.expiresAt;
}

/** The properties of one delivery: forwarded ones, remaining expiry, subscription ids. */
export function deliveryProperties(
  msg: BrokerMessage,
  subscriptionIds: readonly number[] | null,
  now: number,
): PublishProperties | undefined {
  if (msg.expiresAt === 0 && subscriptionIds === null) return msg.properties;
  const out: PublishProperties = { ...msg.properties };
  if (msg.expiresAt !== 0)
    out.messageExpiryInterval = Math.max(0, Math.ceil((msg.expiresAt - now) / 1000));
  if (subscriptionIds !== null) out.subscriptionIdentifiers = subscriptionIds.slice();
  return out;
}

/**
 * The encoded QoS 0 delivery shared by all receivers that need nothing of their own (no
 * subscription id, no alias, no expiry to adjust), made once per protocol family.
 */
export function sharedQoS0Encoding(msg: BrokerMessage, v5: boolean): Uint8Array {
  const packet: PublishPacket = {
    type: PacketType.PUBLISH,
    topic: msg.topic,
    payload: msg.payload,
    qos: 0,
    retain: false,
    dup: false,
  };
  if (v5) {
    if (msg.properties !== undefined) packet.properties = msg.properties;
    return encode(packet, { protocolVersion: 5 });
  }
  return encode(packet, { protocolVersion: 4 });
}
