// Helpers of the API, 5.0 and Conn tests: client contexts, odd servers, a recording relay.
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import type { Msg } from "@myqtt/core";
import { Ctx } from "@myqtt/core";
import { freePort } from "../../../tooling/services/mosquitto.mjs";
import type { MqttClient, Subscription } from "../src/index.js";
import { mosquitto, onCleanup, startBroker, type TestServer, until } from "./helpers.js";

/** The two servers every core flow runs against. */
export const SERVERS = [
  ["our broker", (): Promise<TestServer> => startBroker()],
  ["Mosquitto", (): Promise<TestServer> => mosquitto()],
] as const;

/** A client-side MyQtt context (for Conn), exited after the test (its Conns shut down). */
export async function clientCtx(): Promise<Ctx> {
  const ctx = new Ctx();
  if (!(await ctx.init())) throw new Error("ctx.init() failed");
  onCleanup(() => ctx.exit());
  return ctx;
}

/** A port of 127.0.0.1 where nothing listens. */
export function closedPort(): Promise<number> {
  return freePort();
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A TCP server that accepts connections and never sends a byte (connect timeouts). */
export async function silentServer(): Promise<{ port: number; accepted: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onCleanup(() => closeServer(server, sockets));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { port: address.port, accepted: () => accepted };
}

/**
 * A server that accepts the CONNECT (3.1.1 CONNACK 0) and then never answers anything: no
 * PINGRESP, no SUBACK, no PUBACK (operations that wait for the server time out).
 */
export async function muteServer(): Promise<{ port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let answered = false;
    socket.on("data", (d: Buffer) => {
      if (!answered && d[0] === 0x10) {
        answered = true;
        socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onCleanup(() => closeServer(server, sockets));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { port: address.port };
}

/** A relay to 127.0.0.1:`port` that records every byte in both directions. */
export interface RecordingProxy extends TestServer {
  /**
   * From now on what the server sends is dropped, not passed on (no FIN, no RST: the clients'
   * bytes still reach the server, nothing comes back).
   */
  silence(): void;
  /** Bytes the clients sent to the server. */
  toServer(): Buffer;
  /** Bytes the server sent to the clients. */
  toClient(): Buffer;
}

export async function recordingProxy(port: number): Promise<RecordingProxy> {
  const up: Buffer[] = [];
  const down: Buffer[] = [];
  let silent = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = netConnect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (d: Buffer) => {
      up.push(d);
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (silent) return;
      down.push(d);
      client.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onCleanup(() => closeServer(server, sockets));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return {
    port: address.port,
    url: `mqtt://127.0.0.1:${address.port}`,
    toServer: () => Buffer.concat(up),
    toClient: () => Buffer.concat(down),
    silence: () => {
      silent = true;
    },
  };
}

/** How many times `needle` occurs in `haystack`. */
export function occurrences(haystack: Buffer, needle: string): number {
  const bytes = Buffer.from(needle);
  let count = 0;
  for (let at = haystack.indexOf(bytes); at >= 0; at = haystack.indexOf(bytes, at + 1)) count++;
  return count;
}

/** The next `n` messages of a subscription (fails after `ms`). */
export async function take(sub: Subscription, n: number, ms = 3000): Promise<Msg[]> {
  const out: Msg[] = [];
  const deadline = Date.now() + ms;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} messages within ${ms} ms`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      sub.next(),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), left);
      }),
    ]);
    clearTimeout(timer);
    if (r === "timeout") throw new Error(`got ${out.length} of ${n} messages within ${ms} ms`);
    if (r.done) throw new Error(`the subscription ended after ${out.length} of ${n} messages`);
    out.push(r.value);
  }
  return out;
}

/**
 * Records every message a client receives, so a test can prove that something did NOT arrive:
 * `barrier()` publishes a marker to a topic the client subscribes to and waits for it; whatever
 * the server would have sent before the marker has arrived by then.
 */
export async function recorder(
  c: MqttClient,
  markerTopic = `marker/${Math.random().toString(36).slice(2)}`,
): Promise<{ topics: string[]; contents: string[]; barrier: () => Promise<void> }> {
  const topics: string[] = [];
  const contents: string[] = [];
  await c.subscribe(markerTopic, { qos: 1, iterate: false });
  c.on("message", (topic, _payload, msg) => {
    if (topic === markerTopic) return;
    topics.push(topic);
    contents.push(msg.content);
  });
  let seq = 0;
  return {
    topics,
    contents,
    async barrier() {
      const mine = `m${++seq}`;
      let seen = false;
      const onMessage = (topic: string, _payload: Uint8Array, msg: Msg): void => {
        if (topic === markerTopic && msg.content === mine) seen = true;
      };
      c.on("message", onMessage);
      await c.publish(markerTopic, mine, { qos: 1 });
      await until(() => seen, 3000, `marker ${mine}`);
      c.off("message", onMessage);
    },
  };
}

/** A promise that settles in `ms` with "pending" unless `p` settles first. */
export async function settledWithin<T>(
  p: Promise<T>,
  ms: number,
): Promise<
  { status: "fulfilled"; value: T } | { status: "rejected"; reason: unknown } | "pending"
> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    p.then(
      (value) => ({ status: "fulfilled" as const, value }),
      (reason: unknown) => ({ status: "rejected" as const, reason }),
    ),
    new Promise<"pending">((resolve) => {
      timer = setTimeout(() => resolve("pending"), ms);
    }),
  ]);
  clearTimeout(timer);
  return result;
}
