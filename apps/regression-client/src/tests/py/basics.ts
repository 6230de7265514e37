// The Python suite (py-myqtt/test/myqtt-regression-client.py, reference §5.4), test_00_a to
// test_11. Its ports 34010/34011 are the C listener's plain and TLS ports here (env.port,
// env.tlsPort): the same regression listener serves both suites.
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import {
  ask,
  type Conn,
  type Ctx,
  connect,
  connOpts,
  freePort,
  Inbox,
  sameBytes,
  sleep,
  withCtx,
} from "../c2/helpers.js";

/** Python's Conn(ctx, host, port) with its defaults (no client id, clean, keep alive 0). */
async function pyConn(ctx: Ctx, env: TestEnv): Promise<Conn> {
  // Python passes the port as a string.
  const conn = await myqtt.Conn.connect(ctx, env.host, String(env.port));
  check(
    conn.isOk(),
    `Expected to find proper connection result, but found error. Error code was: ${conn.status}, message: ${conn.errorMsg}`,
  );
  return conn;
}

type Item = number | string | [number, number] | number[];

function checkMixed(queue: myqtt.AsyncQueue<Item>): void {
  const tuple = queue.tryPop();
  check(Array.isArray(tuple) && tuple[0] === 2 && tuple[1] === 3, `expected (2, 3), got ${tuple}`);
  const text = queue.tryPop();
  equal(text, "This is an string", "the string item");
  const list = queue.tryPop();
  check(Array.isArray(list) && list.length === 4, `expected a 4-element list, got ${list}`);
}

test("python", "test_00_a", async () => {
  let queue = new myqtt.AsyncQueue<Item>();
  queue.push(1);
  queue.push(2);
  queue.push(3);
  equal(await queue.pop(), 1, "first item");
  equal(await queue.pop(), 2, "second item");
  equal(await queue.pop(), 3, "third item");

  queue = new myqtt.AsyncQueue<Item>();
  for (let i = 0; i < 1000; i++) queue.push(i);
  for (let i = 0; i < 1000; i++) equal(await queue.pop(), i, `item ${i}`);

  queue = new myqtt.AsyncQueue<Item>();
  queue.push([2, 3]);
  queue.push("This is an string");
  queue.push([1, 2, 3, 4]);
  checkMixed(queue);

  queue = new myqtt.AsyncQueue<Item>();
  for (let i = 0; i < 1000; i++) {
    queue.push([2, 3]);
    queue.push("This is an string");
    queue.push([1, 2, 3, 4]);
  }
  for (let i = 0; i < 1000; i++) checkMixed(queue);
  equal(queue.length, 0, "items left");
});

test("python", "test_01", async () => {
  const ctx = new myqtt.Ctx();
  check(await ctx.init(), "Failed to init MyQtt context");
  await ctx.exit();
});

test("python", "test_02", async (env) => {
  await withCtx(async (ctx) => {
    const conn = await pyConn(ctx, env);
    equal(conn.host, env.host, "conn.host");
    equal(conn.port, env.port, "conn.port");
    env.log(`MQTT connection created to: ${conn.host}:${conn.port}`);
    await conn.close();
  });
});

test("python", "test_03", async (env) => {
  await withCtx(async (ctx) => {
    const conn = await pyConn(ctx, env);
    equal(await conn.sub("topic", myqtt.qos0, 10), [true, 0], "sub(topic, qos0, 10)");
    await conn.close();
  });
});

test("python", "test_04", async (env) => {
  await withCtx(async (ctx) => {
    const conn = await connect(ctx, env, "test_03", true);
    const conn2 = await connect(ctx, env, "test_03-2", true);
    equal(await conn.sub("topic", myqtt.qos0, 10), [true, 0], "sub(topic, qos0, 10)");
    const inbox = new Inbox(conn);
    let wrong = 0;
    conn2.setOnMsg(() => {
      wrong++;
    });
    // pub("topic", "This is a test message....", 24, ...): the first 24 bytes.
    const message = "This is a test message....".slice(0, 24);
    check(await conn.pub("topic", message, myqtt.qos0, false, 0), "Failed to publish message..");
    // Python pops without a limit; 10 s here.
    const msg = await inbox.next(10_000, "the message on topic");
    equal(msg.size, 24, "msg.size");
    equal(msg.type, "PUBLISH", "msg.type");
    equal(msg.content, "This is a test message..", "msg.content");
    await sleep(200);
    equal(wrong, 0, "calls of the second connection's handler");
    await Promise.all([conn.close(), conn2.close()]);
  });
});

test("python", "test_05", async (env) => {
  await withCtx(async (ctx) => {
    const conn = await connect(ctx, env, "test_05", true);
    check(await conn.ping(10), "Expected to ping server without error, but found failure");
    await conn.close();
  });
});

test("python", "test_06", async (env) => {
  await withCtx(async (ctx) => {
    const conn = await connect(ctx, env, "test_06.identifier", true);
    const msg = await ask(conn, "myqtt/admin/get-client-identifier");
    equal(msg.content, "test_06.identifier", "client identifier seen by the listener");

    const conn2 = await myqtt.Conn.connect(ctx, env.host, env.port, "test_06.identifier", true, 30);
    check(!conn2.isOk(), "Expected to find connection failure but found it worked");
    equal(conn2.lastErr, myqtt.CONNACK_IDENTIFIER_REJECTED, "conn2.last_err");

    const conn3 = await connect(ctx, env, null, true);
    const generated = await ask(conn3, "myqtt/admin/get-client-identifier");
    check(generated.content.length > 0, "the automatic client identifier is empty");
    env.log(`Automatic identifier assigned to the connection was: ${generated.content}`);
    await Promise.all([conn.close(), conn3.close()]);
  });
});

test("python", "test_07", async (env) => {
  await withCtx(async (ctx) => {
    const wrong = await myqtt.Conn.connect(
      ctx,
      env.host,
      env.port,
      null,
      true,
      30,
      connOpts((o) => o.setAuth("aspl", "wrong-password")),
    );
    check(!wrong.isOk(), "Expected to find connection ERROR for wrong auth but found it working");

    const conn = await connect(
      ctx,
      env,
      null,
      true,
      connOpts((o) => o.setAuth("aspl", "test")),
    );
    equal((await ask(conn, "myqtt/admin/get-conn-user")).content, "aspl", "connecting user");
    await conn.close();
  });
});

const WILL_TOPIC = "I lost connection";
const WILL_MESSAGE = "Hey I lost connection, this is my status:....";

/** test_08 and test_09: conn has a will; conn2 subscribes to it; conn3 must get nothing. */
async function willCase(
  env: TestEnv,
  lose: (conn: Conn) => Promise<void> | void,
  expectWill: boolean,
) {
  await withCtx(async (ctx) => {
    const opts = connOpts((o) => o.setWill(myqtt.qos2, WILL_TOPIC, WILL_MESSAGE, false));
    const conn = await connect(ctx, env, null, true, opts);
    const conn2 = await connect(ctx, env, null, true);
    check((await conn2.sub(WILL_TOPIC, myqtt.qos0))[0], "Failed to subscribe..");
    const conn3 = await connect(ctx, env, null, true);
    const inbox = new Inbox(conn2);
    let wrong = 0;
    conn3.setOnMsg(() => {
      wrong++;
    });
    await lose(conn);
    if (expectWill) {
      const msg = await inbox.next(3000, "the will");
      equal(msg.topic, WILL_TOPIC, "will topic");
      check(sameBytes(msg.payload, WILL_MESSAGE), `unexpected will content: ${msg.content}`);
    } else {
      await inbox.nothing(3000, "a will after close()");
    }
    equal(wrong, 0, "messages received by the connection without subscription");
    await Promise.all([conn2.close(), conn3.close()]);
  });
}

test("python", "test_08", (env) => willCase(env, (conn) => conn.shutdown(), true));
test("python", "test_09", (env) => willCase(env, (conn) => conn.close(), false));

/**
 * test_10 checks Python reference counting: a context or connection created in a helper
 * function survives the helper's return. In JavaScript an object lives while it is referenced,
 * so the port checks the observable part: what helpers return stays usable.
 */
async function test10Ctx(): Promise<Ctx> {
  const ctx = new myqtt.Ctx();
  check(await ctx.init(), "Failed to init MyQtt context");
  return ctx;
}

async function test10Conn(ctx: Ctx, env: TestEnv): Promise<Conn> {
  return pyConn(ctx, env);
}

async function test10ConnAux(env: TestEnv): Promise<Conn> {
  const ctx = await test10Ctx();
  return pyConn(ctx, env);
}

test("python", "test_10", async (env) => {
  const ctx = await test10Ctx();
  let auxCtx: Ctx | null = null;
  try {
    const conn = await test10Conn(ctx, env);
    check(conn.isOk(), "the connection from the helper is not ok");
    check(await conn.ping(10), "the connection from the helper does not answer a ping");
    await conn.close();

    // The helper's context is reachable only through the connection.
    const conn2 = await test10ConnAux(env);
    auxCtx = conn2.ctx;
    check(conn2.isOk(), "the connection whose context was made in a helper is not ok");
    check(
      await conn2.ping(10),
      "the connection whose context was made in a helper does not answer",
    );
    await conn2.close();
  } finally {
    await ctx.exit();
    await auxCtx?.exit();
  }
});

/**
 * test_10a: Python's gc(True) on the context and the connection inside a helper, which then
 * returns; the handler must still deliver the admin reply. Here the helper keeps no reference
 * to them either: only the handler (through the queue it fills) and the returned clean-up
 * closure see them. (A connection with an open socket is never collected in Node.js.)
 */
async function test10aHelper(
  env: TestEnv,
): Promise<{ queue: myqtt.AsyncQueue<myqtt.Msg>; exit(): Promise<void> }> {
  const ctx = await test10Ctx();
  const conn = await pyConn(ctx, env);
  const queue = new myqtt.AsyncQueue<myqtt.Msg>();
  conn.setOnMsg((_ctx, _conn, msg, q) => q.push(msg), queue);
  check(
    await conn.pub("myqtt/admin/get-client-identifier", "", myqtt.qos0, false, 0),
    "cannot publish to myqtt/admin/get-client-identifier",
  );
  return { queue, exit: () => ctx.exit() };
}

test("python", "test_10a", async (env) => {
  const { queue, exit } = await test10aHelper(env);
  try {
    const msg = await queue.timedpop(10_000_000);
    check(msg !== null, "no reply after the helper returned");
    check(msg.content.length > 0, "the reply (client identifier) is empty");
  } finally {
    await exit();
  }
});

test("python", "test_11", async (env) => {
  await withCtx(async (ctx) => {
    const data = { calls: [] as [string, number, number, string][] };
    let sawCtx = true;
    ctx.setLogHandler((hctx, file, line, level, message, d) => {
      if (hctx !== ctx || d !== data) sawCtx = false;
      d.calls.push([file, line, level, message]);
    }, data);
    const conn = await pyConn(ctx, env);
    await conn.close();
    const afterGood = data.calls.length;
    check(afterGood > 0, "no log line for a successful connection");

    // Python connects to the host "kdkjg-dgkjdg", which fails at name resolution. To keep the
    // test on this machine (no DNS query), the failing connection goes to a port of 127.0.0.1
    // that nothing listens on: what matters is that a failed connect is logged.
    const port = await freePort();
    const bad = await myqtt.Conn.connect(
      ctx,
      "127.0.0.1",
      port,
      null,
      true,
      0,
      connOpts((o) => {
        o.connectTimeoutMs = 10_000;
      }),
    );
    check(!bad.isOk(), `connected to 127.0.0.1:${port}, where nothing should listen`);
    check(data.calls.length > afterGood, "no log line for a failed connection");
    check(sawCtx, "the log handler got another context or data than it was set with");
    for (const [file, line, level] of data.calls) {
      check(typeof file === "string" && file.length > 0, "a log line without a file");
      check(Number.isInteger(line), "a log line without a line number");
      check(
        level === myqtt.level_debug ||
          level === myqtt.level_warning ||
          level === myqtt.level_critical,
        `a log line with level ${level}`,
      );
    }
    env.log(`${data.calls.length} log lines`);
  });
});
