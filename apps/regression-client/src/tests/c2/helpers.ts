// Helpers shared by the second half of the C suite (c2/) and by the Python suite (py/): contexts
// that always exit, connections that must succeed, message inboxes with bounded waits, admin
// queries. Every wait is bounded so that a broken listener fails a test instead of hanging it.
import { createServer } from "node:net";
import * as myqtt from "myqtt";
import { check } from "../../check.js";
import type { TestEnv } from "../../registry.js";

export type Conn = myqtt.Conn;
export type Msg = myqtt.Msg;
export type Ctx = myqtt.Ctx;
/** MQTT QoS levels (the myqtt package exports the values qos0..qos2, not the type). */
export type QoS = 0 | 1 | 2;

/** Seconds MyQtt's tests give a publish, subscribe or unsubscribe (their `wait` argument). */
export const WAIT_S = 10;

/**
 * Runs `fn` with a fresh, initialised context and exits it afterwards whatever happened: the
 * exit shuts down every connection the test left open, so nothing leaks into the next test.
 */
export async function withCtx<T>(fn: (ctx: Ctx) => Promise<T>): Promise<T> {
  const ctx = new myqtt.Ctx();
  check(await ctx.init(), "cannot initialise a MyQtt context");
  try {
    return await fn(ctx);
  } finally {
    await ctx.exit();
  }
}

/** Connection options, already filled by `setup`. */
export function connOpts(setup?: (opts: myqtt.ConnOpts) => void): myqtt.ConnOpts {
  const opts = new myqtt.ConnOpts();
  setup?.(opts);
  return opts;
}

/** What the CONNACK code means, for failure messages. */
function why(conn: Conn): string {
  return `last_err=${conn.lastErr}${conn.errorMsg === null ? "" : ` (${conn.errorMsg})`}`;
}

/**
 * A connection that must work (myqtt_conn_new + myqtt_conn_is_ok). The regression listener
 * refuses a client id that is still connected (MyQtt's CONNACK 2, §3.2), and the previous test's
 * connection with the same fixed id may still be closing on the listener's side: a refusal
 * with code 2 is retried for up to 3 s before it counts as a failure.
 */
export async function connect(
  ctx: Ctx,
  env: TestEnv,
  clientId: string | null,
  clean: boolean,
  opts?: myqtt.ConnOpts,
  port: number = env.port,
): Promise<Conn> {
  const deadline = performance.now() + 3000;
  for (;;) {
    const conn = await myqtt.Conn.connect(ctx, env.host, port, clientId, clean, 30, opts);
    if (conn.isOk()) return conn;
    const retry =
      clientId !== null &&
      conn.lastErr === myqtt.CONNACK_IDENTIFIER_REJECTED &&
      performance.now() < deadline;
    check(
      retry,
      `cannot connect to ${env.host}:${port} as ${clientId ?? "(generated id)"}: ${why(conn)}`,
    );
    await sleep(100);
  }
}

/** A connection made by `open` (TLS, WebSocket...) that must work. */
export async function mustConnect(what: string, open: () => Promise<Conn>): Promise<Conn> {
  const conn = await open();
  check(conn.isOk(), `cannot connect (${what}): ${why(conn)}`);
  return conn;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The C tests' "queue + on_msg handler": every message the connection receives from now on is
 * pushed to the queue (those `keep` rejects are dropped and counted in `skipped`).
 */
export class Inbox {
  readonly queue = new myqtt.AsyncQueue<Msg>();
  skipped = 0;

  constructor(conn: Conn, keep?: (msg: Msg) => boolean) {
    conn.setOnMsg((_ctx, _conn, msg) => {
      if (keep !== undefined && !keep(msg)) {
        this.skipped++;
        return;
      }
      this.queue.push(msg);
    });
  }

  /** The next message within `ms` milliseconds; fails the test otherwise. */
  async next(ms: number, what: string): Promise<Msg> {
    const msg = await this.queue.timedpop(ms * 1000);
    check(msg !== null, `${what}: no message within ${ms} ms`);
    return msg;
  }

  /** Fails the test if a message arrives within `ms` milliseconds. */
  async nothing(ms: number, what: string): Promise<void> {
    const msg = await this.queue.timedpop(ms * 1000);
    check(
      msg === null,
      `${what}: expected no message within ${ms} ms, got ${msg?.topic} (${msg?.size} bytes)`,
    );
  }
}

/**
 * Publishes to an admin topic of the regression listener and returns its reply (a QoS 0
 * publish to this connection). getNext only sees messages that arrive after the call, so it is
 * started before the publish.
 */
export async function ask(conn: Conn, topic: string, payload = "", timeoutMs = 10_000) {
  const reply = conn.getNext(timeoutMs);
  check(await conn.pub(topic, payload, myqtt.qos0, false, 0), `cannot publish to ${topic}`);
  const msg = await reply;
  check(msg !== null, `no reply to ${topic} within ${timeoutMs} ms`);
  return msg;
}

/** Subscribes and fails the test if the SUBACK does not come or refuses. */
export async function subscribe(conn: Conn, filter: string, qos: QoS): Promise<number> {
  const [ok, granted] = await conn.sub(filter, qos, WAIT_S);
  check(ok, `cannot subscribe to ${filter} (result ${granted})`);
  return granted;
}

/** Unsubscribes and fails the test if the UNSUBACK does not come. */
export async function unsubscribe(conn: Conn, filter: string): Promise<void> {
  check(await conn.unsub(filter, WAIT_S), `cannot unsubscribe from ${filter}`);
}

/** Publishes and fails the test unless the QoS flow completes within WAIT_S seconds. */
export async function publish(
  conn: Conn,
  topic: string,
  payload: string | Uint8Array,
  qos: QoS,
  retain = false,
  wait = WAIT_S,
): Promise<void> {
  check(
    await conn.pub(topic, payload, qos, retain, wait),
    `cannot publish to ${topic} (QoS ${qos}, retain ${retain})`,
  );
}

/** Whether two payloads hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array | string): boolean {
  return Buffer.from(a).equals(typeof b === "string" ? Buffer.from(b, "utf8") : Buffer.from(b));
}

/** Waits until `condition` holds, checking every 20 ms, for at most `ms` milliseconds. */
export async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

/** A TCP port of 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The path of the WebSocket upgrade. MyQtt's client (noPoll) asks for "/"; its listener, like
 * apps/regression-listener, takes any path.
 */
export const WS_PATH = "/";

/**
 * WebSocket options as a MyQtt (noPoll) client connects: path "/", no subprotocol offered
 * (§2.10), wss when `tls` is given.
 */
export function wsOptions(tls?: myqtt.WebSocketClientTlsOptions): myqtt.WebSocketConnectOptions {
  return tls === undefined
    ? { path: WS_PATH, protocol: null }
    : { path: WS_PATH, protocol: null, tls };
}
