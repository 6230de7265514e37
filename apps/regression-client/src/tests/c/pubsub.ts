// C suite, part 1: test_01 … test_09. Connect, subscribe, publish and receive, unsubscribe,
// ping, client ids, authentication, wills; all on clean sessions against the plain port.
import * as myqtt from "myqtt";
import { check, equal, sleep } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import {
  adminQuery,
  connect,
  connOpts,
  expectSilence,
  forbidMessages,
  inbox,
  KEEP_ALIVE,
  nextMsg,
  withCtx,
} from "./helpers.js";

test("c", "test_01", (env) =>
  withCtx(async (ctx) => {
    const conn = await connect(ctx, env, "test_01", true);
    await conn.close();
  }),
);

test("c", "test_02", (env) =>
  withCtx(async (ctx) => {
    const conn = await connect(ctx, env, "test_02", true);
    const [ok, granted] = await conn.sub("myqtt/test", myqtt.qos0, 10);
    check(ok, `subscribe to myqtt/test failed (result ${granted})`);
    await conn.close();
  }),
);

test("c", "test_02a", (env) =>
  withCtx(async (ctx) => {
    const conn = await connect(ctx, env, "test_02", true);
    for (const filter of ["myqtt/+", "test/#"]) {
      const [ok, granted] = await conn.sub(filter, myqtt.qos0, 10);
      check(ok, `subscribe to ${filter} failed (result ${granted})`);
    }
    await conn.close();
  }),
);

/** The C publishes only the first 24 bytes of this text (the size argument is 24). */
const TEST_03_TEXT = "This is test message........";
const TEST_03_PAYLOAD = new TextEncoder().encode(TEST_03_TEXT).subarray(0, 24);

/** test_03 / 03a / 03b: subscribe `filter`, publish to myqtt/test, receive own message. */
function test03(filter: string) {
  return (env: TestEnv) =>
    withCtx(async (ctx) => {
      const conn = await connect(ctx, env, "test_03", true);
      const conn2 = await connect(ctx, env, "test_03-2", true);
      const [ok, granted] = await conn.sub(filter, myqtt.qos0, 10);
      check(ok, `subscribe to ${filter} failed (result ${granted})`);
      const queue = inbox(conn);
      const silent = forbidMessages(conn2, "test_03-2 (no subscriptions)");
      check(
        await conn.pub("myqtt/test", TEST_03_PAYLOAD, myqtt.qos0, false, 0),
        "publish to myqtt/test failed",
      );
      const msg = await nextMsg(queue, 10_000, "test_03's own message");
      equal(msg.type, "PUBLISH", "message type");
      equal(msg.size, 24, "payload size");
      equal(msg.content, "This is test message....", "content");
      // The C fails the moment test_03-2's handler runs; give a stray delivery time to show.
      await sleep(300);
      silent.assertNone();
      await conn.close();
      await conn2.close();
    });
}

test("c", "test_03", test03("myqtt/test"));
test("c", "test_03a", test03("myqtt/+"));
test("c", "test_03b", test03("myqtt/#"));

/** test_04 / 04a / 04b: subscribe then unsubscribe `filter`; a publish then reaches nobody. */
function test04(filter: string) {
  return (env: TestEnv) =>
    withCtx(async (ctx) => {
      const conn = await connect(ctx, env, "test_03", true);
      const [ok, granted] = await conn.sub(filter, myqtt.qos0, 10);
      check(ok, `subscribe to ${filter} failed (result ${granted})`);
      check(await conn.unsub(filter, 10), `no UNSUBACK for ${filter} within 10 s`);
      const queue = inbox(conn);
      check(
        await conn.pub("myqtt/test", "This is test message....", myqtt.qos0, false, 0),
        "publish to myqtt/test failed",
      );
      await expectSilence(queue, 3000, `after unsubscribing ${filter}`);
      await conn.close();
    });
}

test("c", "test_04", test04("myqtt/test"));
test("c", "test_04a", test04("myqtt/+"));
test("c", "test_04b", test04("myqtt/#"));

test("c", "test_05", (env) =>
  withCtx(async (ctx) => {
    const started = performance.now();
    const conn = await connect(ctx, env, "test_05", true);
    env.log(`connected in ${(performance.now() - started).toFixed(2)} ms`);
    const pinged = performance.now();
    check(await conn.ping(10), "no PINGRESP within 10 s");
    env.log(`PINGRESP in ${(performance.now() - pinged).toFixed(2)} ms`);
    await conn.close();
  }),
);

test("c", "test_06", (env) =>
  withCtx(async (ctx) => {
    const conn = await connect(ctx, env, "test_06.identifier", true);
    const id = await adminQuery(conn, "myqtt/admin/get-client-identifier");
    equal(id.content, "test_06.identifier", "client id the listener reports");

    // A second connection with the id of a live one is refused (the regression listener runs
    // with MyQtt's duplicate-id rejection; the specification's default would take it over).
    const conn2 = await myqtt.Conn.connect(
      ctx,
      env.host,
      env.port,
      "test_06.identifier",
      true,
      KEEP_ALIVE,
      connOpts(),
    );
    check(!conn2.isOk(), "a second connection with the same client id was accepted");
    equal(conn2.lastErr, myqtt.CONNACK_IDENTIFIER_REJECTED, "lastErr of the duplicate");

    // No client id: one is made up, and the listener reports a non-empty one.
    const conn3 = await connect(ctx, env, null, true);
    const generated = await adminQuery(conn3, "myqtt/admin/get-client-identifier");
    check(generated.content.length > 0, "the listener reports an empty generated client id");
    env.log(`generated client id: ${generated.content}`);
    await conn3.close();
    await conn.close();
  }),
);

test("c", "test_07", (env) =>
  withCtx(async (ctx) => {
    const wrong = connOpts();
    wrong.setAuth("aspl", "wrong-password");
    const refused = await myqtt.Conn.connect(
      ctx,
      env.host,
      env.port,
      null,
      true,
      KEEP_ALIVE,
      wrong,
    );
    check(!refused.isOk(), "login with a wrong password was accepted");
    env.log(`refused: lastErr=${refused.lastErr} ${refused.errorMsg ?? ""}`);

    const right = connOpts();
    right.setAuth("aspl", "test");
    const conn = await connect(ctx, env, null, true, right);
    const user = await adminQuery(conn, "myqtt/admin/get-conn-user");
    equal(user.content, "aspl", "user name the listener reports");
    await conn.close();
  }),
);

const WILL_TOPIC = "I lost connection";
const WILL_MESSAGE = "Hey I lost connection, this is my status:....";

/** Three connections: one with a will, one subscribed to the will topic, one without. */
async function willSetup(ctx: myqtt.Ctx, env: TestEnv) {
  const opts = connOpts();
  opts.setWill(myqtt.qos2, WILL_TOPIC, WILL_MESSAGE, false);
  const withWill = await connect(ctx, env, null, true, opts);
  const watcher = await connect(ctx, env, null, true);
  const [ok, granted] = await watcher.sub(WILL_TOPIC, myqtt.qos0, 10);
  check(ok, `subscribe to "${WILL_TOPIC}" failed (result ${granted})`);
  return { withWill, watcher };
}

test("c", "test_08", (env) =>
  withCtx(async (ctx) => {
    const { withWill, watcher } = await willSetup(ctx, env);
    const bystander = await connect(ctx, env, null, true);
    const queue = inbox(watcher);
    const silent = forbidMessages(bystander, "the connection without subscriptions");
    // Dropped without DISCONNECT: the listener publishes the will.
    withWill.shutdown();
    const will = await nextMsg(queue, 3000, "the will");
    equal(will.topic, WILL_TOPIC, "will topic");
    equal(will.content, WILL_MESSAGE, "will message");
    await sleep(300);
    silent.assertNone();
    await watcher.close();
    await bystander.close();
  }),
);

test("c", "test_09", (env) =>
  withCtx(async (ctx) => {
    const { withWill, watcher } = await willSetup(ctx, env);
    const queue = inbox(watcher);
    // DISCONNECT first: the listener drops the will.
    await withWill.close();
    await expectSilence(queue, 3000, "after a clean DISCONNECT (no will expected)");
    await watcher.close();
  }),
);
