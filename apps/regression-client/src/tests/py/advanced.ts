// The Python suite (reference §5.4), test_17c to test_22.
import { createHash } from "node:crypto";
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import { message17d, PY_17C_CASES } from "../c2/fixtures.js";
import {
  type Conn,
  type Ctx,
  connect,
  connOpts,
  Inbox,
  mustConnect,
  publish,
  sameBytes,
  sleep,
  subscribe,
  withCtx,
} from "../c2/helpers.js";
import { reconnectChecks } from "../c2/misc.js";
import { bigMessageCase } from "../c2/retained.js";
import { mutualTls } from "../c2/tls.js";

/** test_17c: the C cases without the 4 MB one, never retained (see bigMessageCase). */
test("python", "test_17c", async (env) => {
  await withCtx(async (ctx) => {
    for (const qos of [myqtt.qos0, myqtt.qos1, myqtt.qos2] as const) {
      for (const c of PY_17C_CASES) await bigMessageCase(ctx, env, c, qos, false);
    }
  });
});

/** Python's test_01 connection of test_17d tries up to 10 times (its id may still be in use). */
async function connectWithRetries(ctx: Ctx, env: TestEnv, clientId: string): Promise<Conn> {
  let last: Conn | null = null;
  for (let attempt = 1; attempt <= 10; attempt++) {
    last = await myqtt.Conn.connect(ctx, env.host, env.port, clientId, true, 30);
    if (last.isOk()) return last;
    await sleep(200);
  }
  throw new Error(`cannot connect as ${clientId} after 10 attempts: ${last?.errorMsg}`);
}

/**
 * test_17d as the Python suite has it. Its handler replies with
 * `conn.pub(topic, content, len(content), False, 10)`: qos=False and retain=10, i.e. a QoS 0
 * publish with retain set. The port does the same. That leaves a retained message on the
 * (unique) reply topic, which the test clears at the end with an empty retained publish so that
 * runs do not pile 21 KB messages up in the listener.
 */
test("python", "test_17d", async (env) => {
  await withCtx(async (ctx) => {
    const content = message17d();
    const conn = await connectWithRetries(ctx, env, "test_01");
    const topic = `my/product/reply/${createHash("md5").update(`${process.pid}-${conn.id}-${Date.now()}`).digest("hex")}`;
    await subscribe(conn, topic, myqtt.qos2);
    const inbox = new Inbox(conn);

    const conn2 = await connect(ctx, env, "test_02", true);
    await subscribe(conn2, "get/my/products", myqtt.qos2);
    const replies: Promise<boolean>[] = [];
    conn2.setOnMsg((_ctx, c, msg) => {
      replies.push(c.pub(msg.content, content, myqtt.qos0, true, 10));
    });

    const conn3 = await connect(ctx, env, "test_03", true);
    await publish(conn3, "get/my/products", topic, myqtt.qos2);

    const msg = await inbox.next(10_000, "the reply");
    check(sameBytes(msg.payload, content), "the reply differs from message-test-17-d.txt");
    equal(msg.size, content.length, "reply size");
    equal(await Promise.all(replies), [true], "the handler's publish");

    await publish(conn3, topic, "", myqtt.qos0, true);
    await Promise.all([conn.close(), conn2.close(), conn3.close()]);
  });
});

test("python", "test_18", async (env) => {
  await withCtx(async (ctx) => {
    const opts = connOpts((o) => myqtt.tls.sslPeerVerify(o, false));
    const conn = await mustConnect(`TLS ${env.host}:${env.tlsPort}`, () =>
      myqtt.tls.createConn(ctx, env.host, env.tlsPort, null, true, 30, opts),
    );
    await publish(conn, "this/is/a/test/18", "Test message 1", myqtt.qos2, true);
    await publish(conn, "this/is/a/test/18", "Test message 2", myqtt.qos2, true);
    check(conn.isOk(), `Expected being able to connect to ${env.host}:${env.tlsPort}`);
    check(myqtt.tls.isOn(conn), "Expected to find TLS enabled connection but found it is not");
    await conn.close();
  });
});

/** test_19: as the C one, except that step 1 turns verification of the server off. */
test("python", "test_19", (env) => mutualTls(env, false));

/** test_22: plain (test_01, clean) and TLS (no id) reconnects; Python has no WebSocket. */
test("python", "test_22", async (env) => {
  await withCtx(async (ctx) => {
    const plain = await connect(
      ctx,
      env,
      "test_01",
      true,
      connOpts((o) => o.setReconnect()),
    );
    await reconnectChecks(plain, "plain-mqtt");

    const tlsOpts = connOpts((o) => {
      myqtt.tls.sslPeerVerify(o, false);
      o.setReconnect();
    });
    const tls = await mustConnect(`TLS ${env.host}:${env.tlsPort}`, () =>
      myqtt.tls.createConn(ctx, env.host, env.tlsPort, null, false, 30, tlsOpts),
    );
    await reconnectChecks(tls, "mqtt-tls");
  });
});
