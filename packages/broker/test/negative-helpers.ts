// Helpers of the negative-path tests (malformed input, protocol errors, limits, fuzz): raw byte
// builders, a control client that proves the rest of the broker is unaffected, expectations on
// how an offending connection is closed, and a raw client that can stop reading.
import { type Socket, connect as tcpConnect } from "node:net";
import {
  type ConnectPacket,
  Decoder,
  encode,
  match,
  type Packet,
  PacketType,
  type ProtocolVersion,
} from "@myqtt/codec";
import type { MqttClient } from "mqtt";
import { expect } from "vitest";
import { type Broker, getBroker } from "../src/index.js";
import { client, onCleanup, RawClient, type TestBroker, until } from "./helpers.js";

export type Version = 4 | 5;

// --- raw bytes -----------------------------------------------------------------------------------

/** A variable byte integer, minimally encoded. */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A whole packet: first byte, remaining length, body. */
export function frame(first: number, body: readonly number[]): number[] {
  return [first, ...varint(body.length), ...body];
}

/** A length-prefixed string field from text (UTF-8) or from raw bytes. */
export function str(s: string | readonly number[]): number[] {
  const bytes = typeof s === "string" ? [...Buffer.from(s, "utf8")] : [...s];
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

/** A property block for 5.0 (length + content); nothing for 3.1.1. */
export function props(v: Version, content: readonly number[] = []): number[] {
  return v === 5 ? [...varint(content.length), ...content] : [];
}

/** A CONNECT built byte by byte, for the CONNECTs the codec refuses to encode. */
export function connectBytes(
  options: {
    name?: string;
    level?: number;
    flags?: number;
    keepAlive?: number;
    clientId?: string;
    properties?: readonly number[];
    rest?: readonly number[];
  } = {},
): number[] {
  const level = options.level ?? 4;
  const keepAlive = options.keepAlive ?? 60;
  const properties = options.properties ?? (level === 5 ? [0] : []);
  return frame(0x10, [
    ...str(options.name ?? "MQTT"),
    level,
    options.flags ?? 0x02,
    keepAlive >> 8,
    keepAlive & 0xff,
    ...properties,
    ...str(options.clientId ?? `raw-${Math.random().toString(36).slice(2)}`),
    ...(options.rest ?? []),
  ]);
}

// --- waiting -------------------------------------------------------------------------------------

/** Resolves with `promise`, or fails after `ms` saying what was awaited. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A small seeded PRNG (mulberry32), so a failing fuzz run can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- the broker ----------------------------------------------------------------------------------

/** The broker object behind a TestBroker (stats, sessions, open connections). */
export function brokerOf(broker: TestBroker): Broker {
  return getBroker(broker.ctx);
}

/** Log lines at the critical level (a handler threw, an internal error). */
export function criticalLogs(broker: TestBroker): string[] {
  return broker.logs.filter((l) => l.startsWith("critical"));
}

/** Expects a log line matching `pattern`. */
export function expectLog(broker: TestBroker, pattern: RegExp): void {
  expect(
    broker.logs.some((l) => pattern.test(l)),
    `a log line matching ${pattern}; the broker logged:\n${broker.logs.join("\n")}`,
  ).toBe(true);
}

// --- the control client --------------------------------------------------------------------------

/**
 * An MQTT.js client on the same broker as the offending one: `check()` proves it still publishes,
 * subscribes and receives, and that the broker logged nothing critical (no handler threw).
 */
export class Control {
  private n = 0;

  private constructor(
    readonly broker: TestBroker,
    readonly mqtt: MqttClient,
    readonly tag: string,
  ) {}

  static async start(broker: TestBroker, protocolVersion: Version = 4): Promise<Control> {
    // Short topics (3 levels, ~10 bytes), so tests can set small topic limits.
    const tag = Math.random().toString(36).slice(2, 8).padEnd(6, "0");
    const mqtt = await client(broker, { clientId: `control-${tag}`, protocolVersion });
    return new Control(broker, mqtt, tag);
  }

  /** Subscribes to `filter`; the returned array fills with [topic, payload] as messages come. */
  async collect(filter: string, qos: 0 | 1 | 2 = 1): Promise<[string, string][]> {
    const got: [string, string][] = [];
    this.mqtt.on("message", (topic, payload) => {
      if (match(filter, topic)) got.push([topic, payload.toString()]);
    });
    await this.mqtt.subscribeAsync(filter, { qos });
    return got;
  }

  async publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2 = 1): Promise<void> {
    await this.mqtt.publishAsync(topic, payload, { qos });
  }

  /** The control client still works end to end, and nothing critical was logged. */
  async check(): Promise<void> {
    expect(this.mqtt.connected, "the control client is still connected").toBe(true);
    const topic = `c/${this.tag}/${this.n++}`;
    const payload = `alive ${this.n}`;
    const got = new Promise<string>((resolve) => {
      const on = (t: string, p: Buffer): void => {
        if (t !== topic) return;
        this.mqtt.off("message", on);
        resolve(p.toString());
      };
      this.mqtt.on("message", on);
    });
    await within(this.mqtt.subscribeAsync(topic, { qos: 1 }), 2000, "the control SUBACK");
    await within(this.mqtt.publishAsync(topic, payload, { qos: 1 }), 2000, "the control PUBACK");
    expect(await within(got, 2000, "the control client's own message")).toBe(payload);
    expect(criticalLogs(this.broker), "critical log lines").toEqual([]);
  }
}

// --- expectations on the offending connection ------------------------------------------------------

/** A RawClient that sent CONNECT and got CONNACK 0. */
export async function rawConnected(
  broker: TestBroker,
  version: Version = 4,
  fields: Partial<ConnectPacket> = {},
): Promise<RawClient> {
  const raw = await RawClient.connect(broker, version);
  const ack = await raw.connect(fields);
  expect(ack).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0 });
  return raw;
}

/** The broker closes the connection within `ms`. */
export async function expectClosed(raw: RawClient, ms = 3000): Promise<void> {
  await within(raw.closed, ms, "the broker to close the connection");
  expect(raw.isOpen).toBe(false);
}

/** The broker closes the connection without sending anything (first). */
export async function expectClosedSilently(raw: RawClient): Promise<void> {
  const p = await raw.next();
  expect(p, "no packet before the close").toBeNull();
  expect(raw.isOpen).toBe(false);
}

/** The broker sends DISCONNECT `reasonCode`, then closes, with nothing after it. */
export async function expectDisconnect(raw: RawClient, reasonCode: number): Promise<void> {
  const p = await raw.next();
  expect(p, "a DISCONNECT before the close").toMatchObject({
    type: PacketType.DISCONNECT,
    reasonCode,
  });
  await expectClosed(raw);
  expect(raw.packets, "nothing after the DISCONNECT").toEqual([]);
}

/** 5.0: DISCONNECT `reasonCode` then the close; 3.1.1: just the close. */
export async function expectRejected(
  raw: RawClient,
  version: Version,
  reasonCode: number,
): Promise<void> {
  if (version === 5) await expectDisconnect(raw, reasonCode);
  else await expectClosedSilently(raw);
}

/** The connection is open and served: PINGREQ is answered with PINGRESP. */
export async function expectServed(raw: RawClient): Promise<void> {
  raw.send({ type: PacketType.PINGREQ });
  expect(await raw.next()).toEqual({ type: PacketType.PINGRESP });
  expect(raw.isOpen).toBe(true);
}

// --- a raw client that can stop reading --------------------------------------------------------------

/**
 * A raw MQTT client whose reading can be paused, so the broker's writes back up. Unlike
 * RawClient it keeps every packet it decodes and counts the bytes it read.
 */
export class SlowReader {
  readonly packets: Packet[] = [];
  readonly closed: Promise<void>;
  bytesRead = 0;
  private done = false;
  private readonly decoder: Decoder;

  private constructor(
    readonly socket: Socket,
    readonly version: ProtocolVersion,
  ) {
    this.decoder = new Decoder((p) => this.packets.push(p), { protocolVersion: version });
    socket.on("data", (d) => {
      this.bytesRead += d.length;
      try {
        this.decoder.push(d);
      } catch {
        socket.destroy();
      }
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.done = true;
        resolve();
      }),
    );
  }

  static async connect(
    broker: TestBroker,
    version: ProtocolVersion,
    connect: Partial<ConnectPacket> = {},
  ): Promise<SlowReader> {
    const socket = tcpConnect(broker.port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    onCleanup(() => socket.destroy());
    const reader = new SlowReader(socket, version);
    reader.send({
      type: PacketType.CONNECT,
      protocolVersion: version,
      clean: true,
      keepAlive: 0,
      clientId: `slow-${Math.random().toString(36).slice(2)}`,
      ...connect,
    });
    await until(() => reader.packets.length > 0, 3000, "CONNACK");
    expect(reader.packets.shift()).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0 });
    return reader;
  }

  get isOpen(): boolean {
    return !this.done;
  }

  send(packet: Packet): void {
    this.socket.write(encode(packet, { protocolVersion: this.version }));
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }
}
