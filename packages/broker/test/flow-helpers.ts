// Helpers of the message-flow tests (QoS, retained, wills, sessions, 5.0 features, flow control),
// built on helpers.ts: MQTT.js clients that record what they receive from the first packet on,
// raw-packet shortcuts, and a subscriber that stops reading its socket.
import { type Socket, connect as tcpConnect } from "node:net";
import {
  type ConnackPacket,
  type ConnectPacket,
  Decoder,
  encode,
  type Packet,
  PacketType,
  type ProtocolVersion,
  type PublishPacket,
  type QoS,
  type SubscribeProperties,
  type Subscription,
} from "@myqtt/codec";
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { type BrokerMessage, getBroker, type ServerConn } from "../src/index.js";
import { onCleanup, RawClient, sleep, type TestBroker, until } from "./helpers.js";

/** One message as an MQTT.js client saw it. */
export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  dup: boolean;
  packet: IPublishPacket;
}

/** An MQTT.js client and everything it received. */
export interface Recording {
  c: MqttClient;
  got: Received[];
}

/**
 * An MQTT.js client that records messages from the first packet after CONNACK (the plain
 * `client()` helper attaches listeners only after connecting, which can miss queued messages).
 */
export async function recorder(
  broker: TestBroker,
  options: IClientOptions = {},
): Promise<Recording> {
  const c = mqtt.connect(broker.url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  const got: Received[] = [];
  c.on("message", (topic, payload, packet) =>
    got.push({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      packet,
    }),
  );
  onCleanup(() => c.endAsync(true));
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
    c.once("close", () => reject(new Error("closed before CONNACK")));
  });
  return { c, got };
}

/** Payloads of what was received, in order. */
export const payloads = (got: readonly Received[]): string[] => got.map((r) => r.payload);

/** Bytes of a string. */
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A string of bytes. */
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A RawClient connected with `fields`; throws unless the CONNACK accepted it. */
export async function rawConnected(
  broker: TestBroker,
  version: ProtocolVersion,
  fields: Partial<ConnectPacket> = {},
): Promise<{ raw: RawClient; connack: ConnackPacket }> {
  const raw = await RawClient.connect(broker, version);
  const connack = await raw.connect({ protocolVersion: version, ...fields });
  if (connack?.type !== PacketType.CONNACK || connack.reasonCode !== 0)
    throw new Error(`CONNECT not accepted: ${JSON.stringify(connack)}`);
  return { raw, connack };
}

/** The next packet, which must be of `type`. */
export async function expectPacket<T extends Packet["type"]>(
  raw: RawClient,
  type: T,
  ms = 3000,
): Promise<Extract<Packet, { type: T }>> {
  const p = await raw.next(ms);
  if (p === null) throw new Error(`connection closed while waiting for packet type ${type}`);
  if (p.type !== type)
    throw new Error(`expected packet type ${type}, got ${JSON.stringify(p, replacer)}`);
  return p as Extract<Packet, { type: T }>;
}

function replacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? `<${value.length} bytes>` : value;
}

let nextSubscribeId = 1000;

/** SUBSCRIBE and wait for the SUBACK; returns its reason codes. */
export async function rawSubscribe(
  raw: RawClient,
  subscriptions: Subscription[],
  properties?: SubscribeProperties,
): Promise<number[]> {
  const packetId = nextSubscribeId++;
  raw.send({
    type: PacketType.SUBSCRIBE,
    packetId,
    subscriptions,
    ...(properties ? { properties } : {}),
  });
  const suback = await expectPacket(raw, PacketType.SUBACK);
  if (suback.packetId !== packetId) throw new Error("SUBACK for another packet id");
  return suback.reasonCodes;
}

/** A PUBLISH packet for the raw client. */
export function pub(
  topic: string,
  payload: string | Uint8Array,
  qos: QoS = 0,
  extra: Partial<PublishPacket> = {},
): PublishPacket {
  const packet: PublishPacket = {
    type: PacketType.PUBLISH,
    topic,
    payload: typeof payload === "string" ? bytes(payload) : payload,
    qos,
    retain: false,
    dup: false,
    ...extra,
  };
  if (qos > 0 && packet.packetId === undefined) packet.packetId = 1;
  return packet;
}

/** Waits `ms` and returns (removing them) the packets that arrived meanwhile. */
export async function drain(raw: RawClient, ms: number): Promise<Packet[]> {
  await sleep(ms);
  return raw.packets.splice(0);
}

/** The broker's connection of `clientId`, if it is connected. */
export function serverConn(broker: TestBroker, clientId: string): ServerConn | undefined {
  return getBroker(broker.ctx).connections.get(clientId);
}

/** Waits until the broker has accepted `clientId` (sessions are attached at CONNACK). */
export function untilConnected(broker: TestBroker, clientId: string): Promise<void> {
  return until(() => serverConn(broker, clientId) !== undefined, 3000, `${clientId} connected`);
}

/** Waits until the broker no longer has a live connection for `clientId`. */
export function untilGone(broker: TestBroker, clientId: string, ms = 3000): Promise<void> {
  return until(() => serverConn(broker, clientId) === undefined, ms, `${clientId} gone`);
}

/** Publishes from inside the broker, as the server itself would ($SYS and the like). */
export function serverPublish(
  broker: TestBroker,
  topic: string,
  payload: string,
  qos: QoS = 0,
  retain = false,
): number {
  const data = bytes(payload);
  const msg: BrokerMessage = {
    topic,
    payload: data,
    qos,
    retain,
    properties: undefined,
    expiresAt: 0,
    publisher: null,
    size: data.length + topic.length + 16,
  };
  return getBroker(broker.ctx).publish(msg);
}

/**
 * A subscriber on a raw socket that stops reading after its SUBACK: the broker's writes to it
 * pile up in the kernel buffers and then in the broker's own.
 */
export class FrozenSubscriber {
  readonly closed: Promise<void>;
  isClosed = false;
  /** PUBLISH packets read after thaw(). */
  readonly thawed: PublishPacket[] = [];

  private constructor(
    readonly socket: Socket,
    private readonly version: ProtocolVersion,
  ) {
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.isClosed = true;
        resolve();
      }),
    );
    socket.on("error", () => {});
  }

  static async connect(
    broker: TestBroker,
    clientId: string,
    filter: string,
    qos: QoS = 0,
    version: ProtocolVersion = 4,
  ): Promise<FrozenSubscriber> {
    const socket = tcpConnect(broker.port, "127.0.0.1");
    onCleanup(() => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const frozen = new FrozenSubscriber(socket, version);
    const seen: Packet[] = [];
    const decoder = new Decoder((p) => seen.push(p), { protocolVersion: version });
    const onData = (d: Buffer): void => {
      // Only CONNACK and SUBACK are read; whatever comes after them is left unread.
      if (seen.some((p) => p.type === PacketType.SUBACK)) return;
      decoder.push(d);
    };
    socket.on("data", onData);
    const options = { protocolVersion: version };
    socket.write(
      encode(
        { type: PacketType.CONNECT, protocolVersion: version, clean: true, keepAlive: 0, clientId },
        options,
      ),
    );
    socket.write(
      encode(
        { type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: [{ topicFilter: filter, qos }] },
        options,
      ),
    );
    await until(() => seen.some((p) => p.type === PacketType.SUBACK), 3000, "frozen SUBACK");
    socket.pause();
    socket.off("data", onData);
    return frozen;
  }

  /** Starts reading again: what the broker sent meanwhile is decoded into `thawed`. */
  thaw(): void {
    const decoder = new Decoder(
      (p) => {
        if (p.type === PacketType.PUBLISH) this.thawed.push(p);
      },
      { protocolVersion: this.version },
    );
    this.socket.on("data", (d) => decoder.push(d));
    this.socket.resume();
  }
}

/**
 * Reads `count` PUBLISH packets in wire order, acknowledging each (PUBACK, or PUBREC and then
 * PUBCOMP for the PUBREL); other packets are answered or skipped.
 */
export async function receivePublishes(
  raw: RawClient,
  count: number,
  ms = 3000,
): Promise<PublishPacket[]> {
  const out: PublishPacket[] = [];
  const deadline = Date.now() + ms;
  while (out.length < count) {
    const p = await raw.next(Math.max(1, deadline - Date.now()));
    if (p === null) throw new Error(`closed after ${out.length} of ${count} messages`);
    if (p.type === PacketType.PUBLISH) {
      out.push(p);
      if (p.qos === 1) raw.send({ type: PacketType.PUBACK, packetId: p.packetId! });
      if (p.qos === 2) raw.send({ type: PacketType.PUBREC, packetId: p.packetId! });
    } else if (p.type === PacketType.PUBREL) {
      raw.send({ type: PacketType.PUBCOMP, packetId: p.packetId });
    }
  }
  return out;
}
