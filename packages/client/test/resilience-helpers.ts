// Helpers of the resilience tests: a scripted raw MQTT server, a fake clock, our broker
// and Mosquitto as child processes on a fixed port (so they can be killed and restarted).
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrokerOptions, createListener, type Listener } from "@myqtt/broker";
import {
  type ConnackProperties,
  type ConnectPacket,
  Decoder,
  encode,
  type Packet,
  PacketType,
  type ProtocolVersion,
} from "@myqtt/codec";
import { ConnackCode, Ctx, type ServerConnection } from "@myqtt/core";
import { freePort, startMosquittoOn } from "../../../tooling/services/mosquitto.mjs";
import type { MqttClient, Subscription, Timers } from "../src/index.js";
import { onCleanup, sleep, startBroker, until } from "./helpers.js";

export { freePort };

// --- a raw MQTT server ----------------------------------------------------------------------------

/** One connection accepted by a RawServer. */
export interface RawConn {
  /** 0 for the first connection, 1 for the next... */
  readonly index: number;
  readonly socket: Socket;
  /** Every packet received on this connection, in order. */
  readonly packets: Packet[];
  connect: ConnectPacket | null;
  closed: boolean;
  /** Epoch ms at which each packet of `packets` arrived. */
  readonly times: number[];
  send(packet: Packet): void;
  destroy(): void;
}

export interface RawServerOptions {
  /** A fixed port (default: a free one). */
  port?: number;
  /** Answer CONNECT with CONNACK by itself (default true). */
  autoConnack?: boolean;
  /** CONNACK fields for a connection (default: accepted, no session, no properties). */
  connack?: (
    conn: RawConn,
    connect: ConnectPacket,
  ) => { sessionPresent?: boolean; reasonCode?: number; properties?: ConnackProperties };
  /** Every packet, after the automatic CONNACK. */
  onPacket?: (conn: RawConn, packet: Packet) => void;
}

export interface RawServer {
  readonly port: number;
  readonly url: string;
  readonly conns: RawConn[];
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
  /** Listens again on the same port. */
  listen(): Promise<void>;
  /** Packets of one type received on every connection so far. */
  received<T extends Packet["type"]>(type: T): Array<Extract<Packet, { type: T }>>;
}

/** A TCP server speaking MQTT through @myqtt/codec, scripted by the test. */
export async function rawServer(options: RawServerOptions = {}): Promise<RawServer> {
  const conns: RawConn[] = [];
  const sockets = new Set<Socket>();
  const onSocket = (socket: Socket): void => {
    sockets.add(socket);
    let version: ProtocolVersion = 4;
    const conn: RawConn = {
      index: conns.length,
      socket,
      packets: [],
      times: [],
      connect: null,
      closed: false,
      send(packet) {
        if (!socket.destroyed) socket.write(encode(packet, { protocolVersion: version }));
      },
      destroy() {
        socket.destroy();
      },
    };
    conns.push(conn);
    const decoder = new Decoder((packet) => {
      conn.packets.push(packet);
      conn.times.push(Date.now());
      if (packet.type === PacketType.CONNECT) {
        version = packet.protocolVersion;
        conn.connect = packet;
        if (options.autoConnack !== false) {
          const reply = options.connack?.(conn, packet) ?? {};
          conn.send({
            type: PacketType.CONNACK,
            sessionPresent: reply.sessionPresent ?? false,
            reasonCode: reply.reasonCode ?? 0,
            ...(reply.properties !== undefined && version === 5
              ? { properties: reply.properties }
              : {}),
          });
        }
      }
      options.onPacket?.(conn, packet);
    });
    socket.on("data", (chunk) => {
      try {
        decoder.push(chunk);
      } catch {
        socket.destroy();
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      conn.closed = true;
      sockets.delete(socket);
    });
  };
  let server: Server | null = null;
  let port = options.port ?? 0;
  const listen = async (): Promise<void> => {
    const s = createServer(onSocket);
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => resolve());
    });
    const address = s.address();
    if (address !== null && typeof address === "object") port = address.port;
    server = s;
  };
  const close = async (): Promise<void> => {
    const s = server;
    server = null;
    for (const socket of sockets) socket.destroy();
    if (s !== null) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await listen();
  onCleanup(close);
  return {
    get port() {
      return port;
    },
    get url() {
      return `mqtt://127.0.0.1:${port}`;
    },
    conns,
    close,
    listen,
    received(type) {
      const out = [];
      for (const c of conns) for (const p of c.packets) if (p.type === type) out.push(p);
      return out as never;
    },
  };
}

// --- a fake clock ---------------------------------------------------------------------------------

interface FakeTimer {
  id: number;
  at: number;
  ms: number;
  fn: () => void;
}

/** Timers that only move when the test says so; every setTimeout asked for is recorded. */
export class FakeTimers implements Timers {
  current = 1_000_000;
  /** The delay of every setTimeout call, in order. */
  readonly requested: number[] = [];
  private readonly timers = new Map<number, FakeTimer>();
  private seq = 0;

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { id, at: this.current + ms, ms, fn });
    this.requested.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Pending timers' delays (as asked) in due order. */
  get pending(): number[] {
    return [...this.timers.values()].sort((a, b) => a.at - b.at).map((t) => t.ms);
  }

  /** Whether a timer asked with this delay is pending. */
  hasPending(ms: number): boolean {
    for (const t of this.timers.values()) if (t.ms === ms) return true;
    return false;
  }

  /** Moves the clock forward by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: FakeTimer | null = null;
      for (const t of this.timers.values())
        if (t.at <= target && (next === null || t.at < next.at)) next = t;
      if (next === null) break;
      this.timers.delete(next.id);
      this.current = Math.max(this.current, next.at);
      next.fn();
    }
    this.current = target;
  }
}

// --- child processes on a fixed port --------------------------------------------------------------

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function waitPort(port: number, child: ChildProcess, what: string, log: () => string) {
  const deadline = Date.now() + 8000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}): ${log()}`);
    if (await portOpen(port)) return;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${what} did not listen on port ${port}: ${log()}`);
    }
    await sleep(10);
  }
}

export interface Child {
  readonly port: number;
  readonly process: ChildProcess;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
}

function childOf(port: number, child: ChildProcess): Child {
  const gone = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await gone;
  };
  onCleanup(kill);
  return { port, process: child, kill };
}

const here = dirname(fileURLToPath(import.meta.url));
const BROKER_PROCESS = join(here, "fixtures", "broker-process.mjs");

/** Our broker (memory storage) as a child process on 127.0.0.1:port, killed after the test. */
export async function startBrokerProcess(port: number): Promise<Child> {
  const child = spawn(process.execPath, [BROKER_PROCESS, String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const handle = childOf(port, child);
  await waitPort(port, child, "our broker", () => stderr);
  return handle;
}

/** Mosquitto on a fixed port (the shared launcher), killed after the test. */
export async function startMosquittoAt(port: number): Promise<Child> {
  const mosquitto = await startMosquittoOn(port);
  onCleanup(() => mosquitto.stop());
  return childOf(port, mosquitto.process);
}

/** Resolves when `emitter` emitted `event` (with its arguments). */
export function once<T extends unknown[]>(
  emitter: { once(event: string, fn: (...args: T) => void): unknown },
  event: string,
): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: T) => resolve(args)));
}

/** Waits for a promise to settle without failing on rejection; returns its outcome. */
export async function settle<T>(
  p: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

export { until };

// --- our broker on a fixed port -------------------------------------------------------------------

/** Our broker in a fresh Ctx on 127.0.0.1:port (a restart on the same port), stopped after the test. */
export async function brokerAt(
  port: number,
  setup?: (ctx: Ctx) => void,
  options: BrokerOptions = {},
): Promise<{ ctx: Ctx; listener: Listener; port: number; url: string }> {
  const ctx = new Ctx();
  await ctx.init();
  setup?.(ctx);
  const listener = await createListener(ctx, "127.0.0.1", port, options);
  if (!listener.isOk()) throw new Error(`broker did not start: ${listener.errorMsg}`);
  onCleanup(() => ctx.exit());
  return { ctx, listener, port, url: `mqtt://127.0.0.1:${port}` };
}

// --- observing clients and our broker -------------------------------------------------------------

/** Short reconnect delays for real-socket tests. */
export const FAST = { initialDelayMs: 50, maxDelayMs: 200 };

/** Records the client's connection events by name. */
export function track(c: MqttClient): string[] {
  const events: string[] = [];
  c.on("offline", () => events.push("offline"));
  c.on("connect", () => events.push("connect"));
  c.on("reconnect", () => events.push("reconnect"));
  c.on("disconnect", (code) => events.push(`disconnect:0x${code.toString(16)}`));
  c.on("close", () => events.push("close"));
  c.on("error", () => {});
  return events;
}

/** The next message of a subscription (as text), or an error after `ms`. */
export async function nextContent(sub: Subscription, ms = 3000): Promise<string> {
  const next = sub.next();
  const timeout = sleep(ms).then(() => {
    throw new Error("no message arrived on the subscription");
  });
  const r = await Promise.race([next, timeout]);
  if (r.done) throw new Error("the subscription ended");
  return r.value.content;
}

/** Our broker whose connections and subscriptions the test sees; `refuse` holds clients off. */
export async function observedBroker(port?: number) {
  const conns: ServerConnection[] = [];
  const subscribes: string[] = [];
  const refuse = new Set<string>();
  const setup = (ctx: Ctx): void => {
    ctx.setOnConnect((_ctx, conn) => {
      if (refuse.has(conn.clientId)) return ConnackCode.SERVER_UNAVAILABLE;
      conns.push(conn);
      return ConnackCode.ACCEPTED;
    });
    ctx.setOnSubscribe((_ctx, conn, filter, qos) => {
      subscribes.push(`${conn.clientId} ${filter}`);
      return qos;
    });
  };
  const server = port === undefined ? await startBroker({}, setup) : await brokerAt(port, setup);
  const connOf = (clientId: string): ServerConnection => {
    const found = conns.filter((c) => c.clientId === clientId).at(-1);
    if (found === undefined) throw new Error(`${clientId} never connected`);
    return found;
  };
  return { server, conns, subscribes, refuse, connOf };
}
