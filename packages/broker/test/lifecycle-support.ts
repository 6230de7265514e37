// Helpers shared by the connection lifecycle, hook and authentication tests: MQTT.js connect
// attempts that report the CONNACK whatever it says, message collectors, and raw CONNECT bytes.
import type { ConnackPacket, Packet } from "@myqtt/codec";
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from "mqtt";
import { expect } from "vitest";
import { onCleanup, sleep, type TestBroker, until } from "./helpers.js";

/** How an MQTT.js connect attempt ended. */
export interface Attempt {
  client: MqttClient;
  /** The CONNACK received, if any. */
  connack: IConnackPacket | null;
  /** The error MQTT.js raised (a refusing CONNACK gives one with `code` = the return/reason code). */
  error: (Error & { code?: number }) | null;
  /** True when the client saw `connect` (CONNACK accepted). */
  connected: boolean;
}

/**
 * Connects an MQTT.js client and resolves once it is connected, refused or closed: unlike
 * `client()`, a refusal is a result, not an exception. `prepare` runs before the socket opens
 * (to install `handleAuth` and the like).
 */
export function attempt(
  broker: TestBroker,
  options: IClientOptions = {},
  prepare?: (c: MqttClient) => void,
): Promise<Attempt> {
  const c = mqtt.connect(broker.url, { reconnectPeriod: 0, connectTimeout: 4000, ...options });
  onCleanup(() => c.endAsync(true));
  prepare?.(c);
  const result: Attempt = { client: c, connack: null, error: null, connected: false };
  return new Promise((resolve) => {
    c.on("packetreceive", (p) => {
      if (p.cmd === "connack") result.connack = p;
    });
    c.on("error", (e: Error & { code?: number }) => {
      result.error ??= e;
      resolve(result);
    });
    c.once("connect", () => {
      result.connected = true;
      resolve(result);
    });
    c.once("close", () => resolve(result));
  });
}

/** Messages received by an MQTT.js client. */
export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

/** Collects every message `c` receives. */
export function collect(c: MqttClient): Received[] {
  const got: Received[] = [];
  c.on("message", (topic, payload, packet) =>
    got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }),
  );
  return got;
}

/** Ignores MQTT.js errors (a client the broker is expected to cut off). */
export function quiet(c: MqttClient): MqttClient {
  c.on("error", () => {});
  return c;
}

/** Resolves when an MQTT.js client's connection is closed. */
export function closedEvent(c: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (c.stream?.destroyed) resolve();
    c.once("close", () => resolve());
  });
}

/** Resolves with the next DISCONNECT an MQTT.js client receives. */
export function disconnectEvent(
  c: MqttClient,
): Promise<{ reasonCode?: number; properties?: unknown }> {
  return new Promise((resolve) => c.once("disconnect", (p) => resolve(p)));
}

/** Expects the next raw packet to be a CONNACK and returns it. */
export function asConnack(p: Packet | null): ConnackPacket {
  expect(p).not.toBeNull();
  expect(p!.type).toBe(2);
  return p as ConnackPacket;
}

/**
 * The bytes of a minimal CONNECT with any protocol name and level (the codec refuses to encode
 * levels it does not speak): clean session, keep alive 60, client id "x".
 */
export function rawConnectBytes(name: string, level: number): number[] {
  const nameBytes = [...Buffer.from(name, "utf8")];
  const body = [0, nameBytes.length, ...nameBytes, level, 0x02, 0, 60, 0, 1, 0x78];
  return [0x10, body.length, ...body];
}

/** Waits until `arr` has `n` entries, then a little more to catch extra ones. */
export async function expectCount<T>(
  arr: T[],
  n: number,
  what: string,
  settleMs = 100,
): Promise<void> {
  await until(() => arr.length >= n, 3000, what);
  await sleep(settleMs);
  expect(arr.length).toBe(n);
}

/** A unique-enough id for clients and topics of one test. */
export function uid(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

/** An MQTT.js 3.1.1 client subscribed to `filter` (QoS 1), collecting what it receives. */
export async function watch(broker: TestBroker, filter: string): Promise<Received[]> {
  const c = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0, connectTimeout: 4000 });
  onCleanup(() => c.endAsync(true));
  const got = collect(c);
  await c.subscribeAsync(filter, { qos: 1 });
  return got;
}

/** The CONNACK an MQTT.js client was accepted with (MQTT.js keeps it in a private field). */
export function connackOf(c: MqttClient): IConnackPacket | undefined {
  return (c as unknown as { connackPacket?: IConnackPacket }).connackPacket;
}

/**
 * An MQTT.js client whose `message` listener is installed before it connects: messages a
 * resumed session sends right after CONNACK are not missed.
 */
export async function collecting(
  broker: TestBroker,
  options: IClientOptions = {},
): Promise<{ client: MqttClient; got: Received[] }> {
  let got: Received[] = [];
  const a = await attempt(broker, options, (c) => {
    got = collect(c);
  });
  if (!a.connected) throw new Error(`connect failed: ${a.error?.message ?? "closed"}`);
  return { client: a.client, got };
}
