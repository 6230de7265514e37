// Shared pieces of the C suite's port (part 1): contexts, connections to the regression
// listener, message inboxes (MyQtt's on_msg handler pushing into an async queue).
import * as myqtt from "myqtt";
import { check, sleep } from "../../check.js";
import type { TestEnv } from "../../registry.js";

/** Keep alive the C tests connect with (MyQtt neither sends nor enforces it). */
export const KEEP_ALIVE = 30;
/** How long a connect may take (ConnOpts defaults to PyMyQtt's 60 s; tests stay under 15 s). */
export const CONNECT_TIMEOUT_MS = 10_000;

/** Connection options with the tests' connect timeout. */
export function connOpts(): myqtt.ConnOpts {
  const opts = new myqtt.ConnOpts();
  opts.connectTimeoutMs = CONNECT_TIMEOUT_MS;
  return opts;
}

/** A ready context (MyQtt's init_ctx); fails the test when init() does. */
export async function newCtx(): Promise<myqtt.Ctx> {
  const ctx = new myqtt.Ctx();
  check(await ctx.init(), "ctx.init() failed");
  return ctx;
}

/**
 * Runs `body` with a fresh context and exits it afterwards, pass or fail: what the body left
 * open is shut down then (MyQtt's myqtt_exit_ctx at the end of each C test).
 */
export async function withCtx<T>(body: (ctx: myqtt.Ctx) => Promise<T>): Promise<T> {
  const ctx = await newCtx();
  try {
    return await body(ctx);
  } finally {
    await ctx.exit();
  }
}

/** Connects to the plain port of the listener; fails the test unless the connection is ok. */
export async function connect(
  ctx: myqtt.Ctx,
  env: TestEnv,
  clientId: string | null,
  cleanSession: boolean,
  opts: myqtt.ConnOpts = connOpts(),
): Promise<myqtt.Conn> {
  const conn = await myqtt.Conn.connect(
    ctx,
    env.host,
    env.port,
    clientId,
    cleanSession,
    KEEP_ALIVE,
    opts,
  );
  check(
    conn.isOk(),
    `cannot connect ${clientId ?? "(no client id)"} to ${env.host}:${env.port}: ` +
      `lastErr=${conn.lastErr} ${conn.errorMsg ?? ""}`,
  );
  return conn;
}

/**
 * Ends whatever session the listener still keeps for `clientId` (a clean connect, then
 * DISCONNECT), so state left by an earlier run or a failed test cannot leak into this one.
 */
export async function dropSession(ctx: myqtt.Ctx, env: TestEnv, clientId: string): Promise<void> {
  const conn = await connect(ctx, env, clientId, true);
  await conn.close();
}

/** Every message a connection receives, queued (MyQtt's test_03_on_message). */
export function inbox(conn: myqtt.Conn): myqtt.AsyncQueue<myqtt.Msg> {
  const queue = new myqtt.AsyncQueue<myqtt.Msg>();
  conn.setOnMsg((_ctx, _conn, msg) => queue.push(msg));
  return queue;
}

/** The next message of `queue`, waiting at most `ms`; fails the test with `what` otherwise. */
export async function nextMsg(
  queue: myqtt.AsyncQueue<myqtt.Msg>,
  ms: number,
  what: string,
): Promise<myqtt.Msg> {
  const msg = await queue.timedpop(ms * 1000);
  check(msg !== null, `${what}: no message within ${ms} ms`);
  return msg;
}

/**
 * Records messages that must never come (MyQtt's test_03_fail, which exits the process):
 * `assertNone()` fails the test if one did.
 */
export function forbidMessages(conn: myqtt.Conn, label: string): { assertNone(): void } {
  const got: string[] = [];
  conn.setOnMsg((_ctx, _conn, msg) => {
    got.push(`${msg.topic}: ${msg.content}`);
  });
  return {
    assertNone() {
      check(
        got.length === 0,
        `${label} received ${got.length} message(s) it must not get: ${got.join("; ")}`,
      );
    },
  };
}

/**
 * Publishes an admin request (QoS 0, no wait) and returns the listener's reply, which comes back
 * on the same connection as a PUBLISH to the same topic. The waiter is set up before publishing,
 * since getNext only sees messages that arrive after it is called.
 */
export async function adminQuery(
  conn: myqtt.Conn,
  topic: string,
  payload = "",
  timeoutMs = 5000,
): Promise<myqtt.Msg> {
  const reply = conn.getNext(timeoutMs);
  const sent = await conn.pub(topic, payload, myqtt.qos0, false, 0);
  check(sent, `cannot publish the admin request ${topic}`);
  const msg = await reply;
  check(msg !== null, `no reply to ${topic} within ${timeoutMs} ms`);
  return msg;
}

/** Waits `ms`, then fails when `queue` received anything meanwhile. */
export async function expectSilence(
  queue: myqtt.AsyncQueue<myqtt.Msg>,
  ms: number,
  what: string,
): Promise<void> {
  await sleep(ms);
  const msg = queue.tryPop();
  check(msg === undefined, `${what}: unexpected message on ${msg?.topic}: ${msg?.content}`);
}
