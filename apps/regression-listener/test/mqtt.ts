// MQTT.js helpers: connect without reconnecting, collect messages, ask admin topics.
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { sleep } from "./listener.js";

const clients: MqttClient[] = [];

/** A connected client and every message it received, in order. */
export interface Client {
  client: MqttClient;
  sessionPresent: boolean;
  messages: { topic: string; payload: string; qos: number; at: number }[];
  /** Milliseconds from the connect call to the CONNACK. */
  connackMs: number;
}

function open(url: string, options: IClientOptions): MqttClient {
  const client = mqtt.connect(url, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    protocolVersion: 4,
    ...options,
  });
  clients.push(client);
  return client;
}

/** Connects (no reconnect), with the message listener in place before any packet arrives. */
export function connect(url: string, options: IClientOptions = {}): Promise<Client> {
  const started = performance.now();
  const client = open(url, options);
  const messages: Client["messages"] = [];
  client.on("message", (topic, payload, packet) =>
    messages.push({ topic, payload: payload.toString(), qos: packet.qos, at: performance.now() }),
  );
  return new Promise((resolve, reject) => {
    client.once("connect", (connack) =>
      resolve({
        client,
        sessionPresent: connack.sessionPresent,
        messages,
        connackMs: performance.now() - started,
      }),
    );
    client.once("error", reject);
    client.once("close", () => reject(new Error("closed before CONNACK")));
  });
}

/** The CONNACK return code of a refused connection, or the transport error when none came. */
export function refusal(url: string, options: IClientOptions = {}): Promise<number | Error> {
  const client = open(url, options);
  return new Promise((resolve) => {
    client.once("connect", () => resolve(new Error("connection was accepted")));
    client.once("error", (error) => {
      const code = (error as { code?: unknown }).code;
      resolve(typeof code === "number" ? code : error);
    });
    client.once("close", () => resolve(new Error("closed without CONNACK")));
  });
}

/** Waits (bounded) until `ok()` holds. */
export async function waitFor(what: string, ok: () => boolean, withinMs = 5000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Publishes `topic` (QoS 0) and waits for the next message on it: the admin reply, with how
 * long it took.
 */
export async function ask(
  c: Client,
  topic: string,
  payload = "",
  withinMs = 5000,
): Promise<{ payload: string; ms: number }> {
  const seen = c.messages.length;
  const started = performance.now();
  await c.client.publishAsync(topic, payload, { qos: 0 });
  let reply: Client["messages"][number] | undefined;
  await waitFor(
    `a reply on ${topic}`,
    () => (reply = c.messages.slice(seen).find((m) => m.topic === topic)) !== undefined,
    withinMs,
  );
  return { payload: reply!.payload, ms: reply!.at - started };
}

/** Disconnects cleanly and waits for it, then a moment for the broker to see it. */
export async function end(c: Client): Promise<void> {
  await c.client.endAsync();
  await sleep(50);
}

/** Closes every client opened by these helpers. */
export function closeAllClients(): void {
  for (const c of clients.splice(0)) c.end(true);
}
