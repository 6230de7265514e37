// test_15 / 15a / 15b (messages queued for a persistent session while it is away) and test_16
// (the storage API for retained messages).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import {
  ask,
  connect,
  Inbox,
  type Msg,
  publish,
  sameBytes,
  subscribe,
  unsubscribe,
  withCtx,
} from "./helpers.js";

const TEST15_ID = "test15@identifier.com";
const TEST15_TOPICS = ["test/message/1", "test/message/2", "test/message/3"];

/** The filters of test_15 (exact topics), 15a (`+`) and 15b (`#`). */
function test15Filters(wildcard: 0 | 1 | 2): string[] {
  if (wildcard === 1) return ["test/message/+"];
  if (wildcard === 2) return ["test/message/#"];
  return TEST15_TOPICS;
}

async function test15Common(env: TestEnv, wildcard: 0 | 1 | 2): Promise<void> {
  const filters = test15Filters(wildcard);
  await withCtx(async (ctx) => {
    // The C test first deletes the listener's stored messages of test15@identifier.com
    // (§5.5). The port cannot reach the listener's files: a clean-session connect with that
    // id deletes the whole stored session (subscriptions and queued messages) instead, so a
    // run that failed half-way does not leave messages or subscriptions behind.
    await (await connect(ctx, env, TEST15_ID, true)).close();

    let conn = await connect(ctx, env, TEST15_ID, false);
    for (const filter of filters) await subscribe(conn, filter, myqtt.qos2);
    // close() sends DISCONNECT: the session stays and collects what is published meanwhile.
    await conn.close();

    const publisher = await connect(ctx, env, null, true);
    for (let i = 0; i < 10; i++) {
      const payload = `This is a test message: ${i}..`;
      await publish(publisher, "test/message/1", payload, myqtt.qos0);
      await publish(publisher, "test/message/2", payload, myqtt.qos1);
      await publish(publisher, "test/message/3", payload, myqtt.qos2);
    }
    const queued = await ask(publisher, "myqtt/admin/get-queued-msgs", TEST15_ID, 5000);
    equal(queued.content, "30", `messages queued for ${TEST15_ID}`);
    await publisher.close();

    // The C test installs a ctx-wide on_msg before connecting, so that the queued messages the
    // listener flushes right after the CONNACK have a handler. Conn has no ctx-wide handler:
    // the inbox is installed on the connection as soon as it exists (the same turn).
    conn = await connect(ctx, env, TEST15_ID, false);
    const inbox = new Inbox(conn);
    const counts = [0, 0, 0];
    const received: Msg[] = [];
    for (let i = 0; i < 30; i++) {
      const msg = await inbox.next(3000, `queued message ${i + 1} of 30`);
      equal(msg.type, "PUBLISH", "message type");
      counts[msg.qos] = (counts[msg.qos] ?? 0) + 1;
      received.push(msg);
    }
    // Subscribed at QoS 2, each message comes at the QoS it was published with (no upgrade).
    equal(counts, [10, 10, 10], "messages received at QoS 0, 1 and 2");
    for (const msg of received) {
      const expectedQos = TEST15_TOPICS.indexOf(msg.topic);
      check(expectedQos >= 0, `unexpected topic ${msg.topic}`);
      equal(msg.qos, expectedQos, `QoS of the message on ${msg.topic}`);
    }
    await conn.close();

    // Nothing new was published: a new connection of the session gets nothing.
    conn = await connect(ctx, env, TEST15_ID, false);
    const again = new Inbox(conn);
    await again.nothing(3000, "reconnecting after the queue was flushed");
    for (const filter of filters) await unsubscribe(conn, filter);
    await conn.close();
  });
}

test("c", "test_15", (env) => test15Common(env, 0));
test("c", "test_15a", (env) => test15Common(env, 1));
test("c", "test_15b", (env) => test15Common(env, 2));

const RETAINED_1 = "This is a application message test that will act as retained message..";
const RETAINED_2 = "This is a application message test that will act as retained message (2)..";
const RETAINED_3 = "This is a application message test that will act as retained message (3)..";
const RETAINED_4 = "This is a application message test that will act as retained message (4)..";

async function retainedTopics(storage: myqtt.FileStorage): Promise<string[]> {
  return (await storage.getRetainedTopics("#")).sort();
}

/**
 * test_16. MyQtt counts the files under its storage directory (two per retained message). Our
 * FileStorage keeps a write-ahead log and per-bucket files, not MyQtt's layout, so the port
 * checks the API-level outcome each file count stood for: which topics are retained (also
 * after reopening the directory, which the file counts implied), and what recovering returns.
 * The directory is a fresh temporary one rather than ./myqtt-test-16 (the C test emptied that
 * first), hash size 128 as in the C test.
 */
test("c", "test_16", async () => {
  const path = await mkdtemp(join(tmpdir(), "myqtt-test-16-"));
  let storage = new myqtt.FileStorage({ path, hashSize: 128 });
  try {
    await storage.open();
    // Set three times: only the last one stays ("2 files").
    await storage.retainMsgSet("this/is/a/test", myqtt.qos2, RETAINED_1);
    await storage.retainMsgSet("this/is/a/test", myqtt.qos1, RETAINED_2);
    await storage.retainMsgSet("this/is/a/test", myqtt.qos2, RETAINED_3);
    equal(await retainedTopics(storage), ["this/is/a/test"], "retained topics after 3 sets");
    const last = await storage.retainMsgRecover("this/is/a/test");
    check(last !== null && sameBytes(last.payload, RETAINED_3), "the last set replaces the others");
    equal(last.qos, myqtt.qos2, "QoS of the last set");

    await storage.retainMsgSet("this/is/a/test/b", myqtt.qos2, RETAINED_4);
    equal(
      await retainedTopics(storage),
      ["this/is/a/test", "this/is/a/test/b"],
      "get_retained_topics(#)",
    );

    // What the file counts showed: the messages are on disk. Reopen and look again.
    await storage.close();
    storage = new myqtt.FileStorage({ path, hashSize: 128 });
    await storage.open();
    equal(
      await retainedTopics(storage),
      ["this/is/a/test", "this/is/a/test/b"],
      "retained topics after reopening the storage",
    );

    // Releasing an unknown topic changes nothing ("still 4 files").
    equal(await storage.retainMsgRelease("test/value/different"), false, "release of unknown");
    equal((await retainedTopics(storage)).length, 2, "retained topics after releasing unknown");

    const b = await storage.retainMsgRecover("this/is/a/test/b");
    check(b !== null, "recover this/is/a/test/b: nothing found");
    equal(b.payload.length, 74, "size of the recovered message");
    check(sameBytes(b.payload, RETAINED_4), "content of the recovered message");
    equal(b.qos, myqtt.qos2, "QoS of the recovered message");
    // MyQtt's recover also deleted the message (consume-once, §3.5); the specification keeps
    // a retained message until it is replaced or cleared, and so does our storage.
    equal((await retainedTopics(storage)).length, 2, "retained topics after recovering");

    check(await storage.retainMsgRelease("this/is/a/test/b"), "release this/is/a/test/b");
    equal(await retainedTopics(storage), ["this/is/a/test"], "after releasing this/is/a/test/b");
    check(await storage.retainMsgRelease("this/is/a/test"), "release this/is/a/test");
    equal(await retainedTopics(storage), [], "after releasing both (0 files)");
    equal(await storage.retainMsgRecover("this/is/a/test/b"), null, "recover after release");
  } finally {
    await storage.close();
    await rm(path, { recursive: true, force: true });
  }
});
