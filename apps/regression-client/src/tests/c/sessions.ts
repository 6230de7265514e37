// C suite, part 1: test_10 … test_14a. Storage and persistent sessions (clean session off):
// stored subscriptions, recovery on reconnect, QoS 1/2 delivery, offline publishing, and a
// broker rebuilding offline sessions from storage.
import { rm } from "node:fs/promises";
import type { QoS } from "@myqtt/codec";
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import { adminQuery, connect, connOpts, dropSession, inbox, nextMsg, withCtx } from "./helpers.js";

/** A FileStorage at `path`, emptied first (the C tests delete the files with find/rm). */
async function freshStorage(path: string): Promise<myqtt.FileStorage> {
  await rm(path, { recursive: true, force: true });
  const storage = new myqtt.FileStorage({ path });
  await storage.open();
  return storage;
}

/** Runs `body` with `storage` and closes it afterwards (a FileStorage locks its directory). */
async function using<T>(storage: myqtt.Storage, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } finally {
    await storage.close();
  }
}

const TEST10_ID = "test10@identifier.com";
const TEST10_PATH = ".myqtt-test-10";
const TEST10_FILTERS = Array.from({ length: 100 }, (_, n) => `this/is/a/test/${n}`);

// Adapted: the C first checks the parsing of MyQtt's on-disk file names ("14-…" → 14 and so
// on); that format is not ours (FileStorage keeps a log and per-client record files), so that
// part is not ported. The storage operations are, on a FileStorage of their own. The C then
// checks MyQtt internals (conn->subs and ctx->subs have 100 entries after session_recover);
// here the storage is reopened from disk (load, sessionRecover), and the listener's side is
// checked through the admin topic myqtt/admin/get-conn-subs after a persistent reconnect.
test("c", "test_10", (env) =>
  withCtx(async (ctx) => {
    const storage = await freshStorage(TEST10_PATH);
    await using(storage, async () => {
      const filter = "this/is/a/test";
      check(!(await storage.subExists(TEST10_ID, filter)), "(1) subscription found before sub");
      await storage.sub(TEST10_ID, filter, myqtt.qos2);
      check(await storage.subExists(TEST10_ID, filter), "(3) subscription not found after sub");
      // Subscribing again (another QoS) replaces it.
      await storage.sub(TEST10_ID, filter, myqtt.qos1);
      check(await storage.unsub(TEST10_ID, filter), "(5) unsub found no subscription");
      check(!(await storage.subExists(TEST10_ID, filter)), "(6) subscription found after unsub");
      equal(await storage.subCount(TEST10_ID), 0, "(7) subscription count");
      await Promise.all(TEST10_FILTERS.map((f) => storage.sub(TEST10_ID, f, myqtt.qos1)));
      equal(await storage.subCount(TEST10_ID), 100, "(8) subscription count");
      check(await storage.subExists(TEST10_ID, "this/is/a/test/49"), "(9) …/49 not found");
      check(await storage.subExists(TEST10_ID, "this/is/a/test/99"), "(9) …/99 not found");
      check(!(await storage.subExists(TEST10_ID, "this/is/a/test/149")), "(9) …/149 found");
    });

    // What a restart finds: the same directory opened again.
    const reopened = new myqtt.FileStorage({ path: TEST10_PATH });
    await reopened.open();
    await using(reopened, async () => {
      equal(await reopened.load(), 100, "subscriptions load() finds");
      const session = await reopened.sessionRecover(TEST10_ID);
      check(session !== null, `(10) sessionRecover found nothing for ${TEST10_ID}`);
      equal(
        session.subscriptions.map((s) => `${s.qos}: ${s.filter}`).sort(),
        TEST10_FILTERS.map((f) => `1: ${f}`).sort(),
        "recovered subscriptions",
      );
    });

    // The listener's side: 100 subscriptions of a persistent session, recovered on reconnect.
    await dropSession(ctx, env, TEST10_ID);
    const conn = await connect(ctx, env, TEST10_ID, false);
    const results = await Promise.all(TEST10_FILTERS.map((f) => conn.sub(f, myqtt.qos1, 10)));
    const failed = TEST10_FILTERS.filter((_, i) => !results[i]![0]);
    check(failed.length === 0, `subscribe failed for ${failed.length} filters: ${failed[0]}`);
    await conn.close();
    const again = await connect(ctx, env, TEST10_ID, false);
    const reply = await adminQuery(again, "myqtt/admin/get-conn-subs");
    const lines = reply.content.split("\n").filter((l) => l.length > 0);
    equal(lines.length, 100, "exact subscriptions of the recovered session");
    equal(lines.sort(), TEST10_FILTERS.map((f) => `1: ${f}`).sort(), "get-conn-subs reply");
    await again.close();
  }),
);

const TEST11_ID = "test11@identifier.com";

test("c", "test_11", (env) =>
  withCtx(async (ctx) => {
    // No client id with clean session off: the client forces a clean session, so it connects.
    const anonymous = await connect(ctx, env, null, false);
    await anonymous.close();

    // Not in the C (it relies on a fresh listener): a session left by an earlier run is ended
    // first, so the recovered subscriptions are the ones made here.
    await dropSession(ctx, env, TEST11_ID);
    let conn = await connect(ctx, env, TEST11_ID, false);
    for (const filter of ["a/subs/1", "a/subs/2", "a/subs/3"]) {
      const [ok, granted] = await conn.sub(filter, myqtt.qos0, 10);
      check(ok, `subscribe to ${filter} failed (result ${granted})`);
    }
    await conn.close();

    conn = await connect(ctx, env, TEST11_ID, false);
    const subs = await adminQuery(conn, "myqtt/admin/get-conn-subs");
    equal(subs.content, "0: a/subs/1\n0: a/subs/2\n0: a/subs/3\n", "recovered subscriptions");
    await conn.close();

    // Once more, and the recovered subscriptions route messages.
    conn = await connect(ctx, env, TEST11_ID, false);
    const queue = inbox(conn);
    const expected = new Map<string, string>();
    for (const n of [1, 2, 3]) {
      const topic = `a/subs/${n}`;
      const content = `this is a test on sub${n}`;
      expected.set(topic, content);
      check(await conn.pub(topic, content, myqtt.qos0, false, 0), `publish to ${topic} failed`);
    }
    for (let i = 0; i < 3; i++) {
      const msg = await nextMsg(queue, 3000, `message ${i + 1} of 3`);
      const content = expected.get(msg.topic);
      check(content !== undefined, `unexpected or repeated message on ${msg.topic}`);
      equal(msg.content, content, `content on ${msg.topic}`);
      expected.delete(msg.topic);
    }
    await conn.close();
  }),
);

/**
 * test_12 / 13 (and their a/b variants): a persistent session subscribes `filter` at QoS 2,
 * publishes at `qos` to a/subs/1 and receives its own message at that QoS: no upgrade to the
 * subscription's QoS, no DUP, nothing left in flight.
 */
function qosRoundTrip(clientId: string, filter: string, qos: 1 | 2) {
  return (env: TestEnv) =>
    withCtx(async (ctx) => {
      // Subscriptions left by an earlier failed run would deliver duplicates: start clean.
      await dropSession(ctx, env, clientId);
      const conn = await connect(ctx, env, clientId, false);
      const [ok, granted] = await conn.sub(filter, myqtt.qos2, 10);
      check(ok, `subscribe to ${filter} failed (result ${granted})`);
      env.log(`granted QoS ${granted}`);
      const queue = inbox(conn);
      check(
        await conn.pub("a/subs/1", "This is a test message", qos, false, 10),
        `QoS ${qos} publish not acknowledged within 10 s`,
      );
      const msg = await nextMsg(queue, 3000, `the QoS ${qos} message`);
      equal(msg.content, "This is a test message", "content");
      equal(msg.qos, qos, "QoS of the delivered message");
      equal(msg.dup, false, "DUP flag");
      // The C's conn->sent_pkgids: packet ids of our publishes not yet acknowledged.
      equal(conn.client?.pendingPublishes, 0, "publishes still in flight");
      check(await conn.unsub(filter, 10), `no UNSUBACK for ${filter} within 10 s`);
      await conn.close();
    });
}

test("c", "test_12", qosRoundTrip("test12@identifier.com", "a/subs/1", 1));
test("c", "test_12a", qosRoundTrip("test12@identifier.com", "a/subs/+", 1));
test("c", "test_12b", qosRoundTrip("test12@identifier.com", "a/subs/#", 1));
test("c", "test_13", qosRoundTrip("test13@identifier.com", "a/subs/1", 2));
test("c", "test_13a", qosRoundTrip("test13@identifier.com", "a/subs/+", 2));
test("c", "test_13b", qosRoundTrip("test13@identifier.com", "a/subs/#", 2));

const TEST14_ID = "test14@identifier.com";
const TEST14_SUBSCRIBER = "test14-2@identifier.com";
const test14Content = (n: number): string =>
  `This is a test message ${n} for offline publication..`;

/**
 * test_14 / 14b / 14c: three messages published offline for test14@identifier.com reach a
 * subscriber of `filters` once that client connects.
 *
 * As in MyQtt, the messages go into the client's storage (offlinePub on the FileStorage that
 * StorageInflightStore keeps the client's state in; count and quota as MyQtt's) and the client
 * publishes them by itself when it connects with that id.
 */
function test14(filters: readonly string[]) {
  return (env: TestEnv) =>
    withCtx(async (ctx) => {
      const storage = new myqtt.FileStorage({ path: env.storagePath });
      await storage.open();
      await using(storage, async () => {
        // The C deletes .myqtt-regression-client/test14@identifier.com/msgs/* first.
        await storage.clear(TEST14_ID);
        for (const n of [1, 2, 3]) {
          await storage.offlinePub(TEST14_ID, `test/message/${n}`, test14Content(n), myqtt.qos0);
        }
        equal(await storage.queuedMessages(TEST14_ID), 3, "queued offline messages");
        // 3 QoS 0 PUBLISH packets of a 14-character topic and 50 bytes: 3 × 68.
        equal(await storage.queuedMessagesQuota(TEST14_ID), 204, "quota of the queued messages");

        await dropSession(ctx, env, TEST14_SUBSCRIBER);
        const subscriber = await connect(ctx, env, TEST14_SUBSCRIBER, false);
        for (const filter of filters) {
          const [ok, granted] = await subscriber.sub(filter, myqtt.qos2, 10);
          check(ok, `subscribe to ${filter} failed (result ${granted})`);
        }
        const queue = inbox(subscriber);

        const opts = connOpts();
        opts.inflightStore = new myqtt.StorageInflightStore(storage);
        const conn = await connect(ctx, env, TEST14_ID, false, opts);

        const expected = new Map([1, 2, 3].map((n) => [`test/message/${n}`, test14Content(n)]));
        for (let i = 0; i < 3; i++) {
          const msg = await nextMsg(queue, 3000, `queued message ${i + 1} of 3`);
          equal(msg.type, "PUBLISH", "message type");
          const content = expected.get(msg.topic);
          check(content !== undefined, `unexpected or repeated message on ${msg.topic}`);
          equal(msg.content, content, `content on ${msg.topic}`);
          equal(msg.size, 50, `size on ${msg.topic}`);
          expected.delete(msg.topic);
        }
        // The client forgets each one once it is sent (QoS 0): bounded wait for the last write.
        let left = await storage.queuedMessages(TEST14_ID);
        for (let i = 0; i < 50 && left !== 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
          left = await storage.queuedMessages(TEST14_ID);
        }
        equal(left, 0, "messages still queued after the flush");

        await conn.close();
        for (const filter of filters) {
          check(await subscriber.unsub(filter, 10), `no UNSUBACK for ${filter} within 10 s`);
        }
        await subscriber.close();
      });
    });
}

test("c", "test_14", test14(["test/message/1", "test/message/2", "test/message/3"]));
test("c", "test_14b", test14(["test/message/+"]));
test("c", "test_14c", test14(["test/message/#"]));

const TEST14A_PATH = ".myqtt-listener-test14a";
const TEST14A_CLIENTS = [1, 2, 3, 4, 5].map((n) => `test14aclient${n}`);
const TEST14A_SUBS: [string, QoS][] = [
  ["test/sub/1", 0],
  ["test/sub/2", 1],
  ["test/sub/3", 2],
];

// Adapted: the C loads the storage into its ctx's offline tables and inspects them
// (ctx->offline_subs: 3 filters × 5 client ids; ctx->subs: empty). Here load() counts what a
// broker rebuilds, and an in-process broker started on that storage shows the rebuilt
// sessions: 5 offline sessions with 3 subscriptions each, 5 subscribers per filter, nobody
// connected.
test("c", "test_14a", async () => {
  const storage = await freshStorage(TEST14A_PATH);
  try {
    for (const clientId of TEST14A_CLIENTS) {
      for (const [filter, qos] of TEST14A_SUBS) await storage.sub(clientId, filter, qos);
    }
    equal(await storage.load(), 15, "subscriptions load() finds");

    // The broker closes the storage when its context exits (closing twice is harmless).
    await withCtx(async (ctx) => {
      const listener = await myqtt.createListener(ctx, "127.0.0.1", 0, { storage });
      check(listener.isOk(), `in-process broker did not start: ${listener.errorMsg}`);
      const broker = myqtt.getBroker(ctx);
      equal([...broker.sessions.keys()].sort(), TEST14A_CLIENTS, "sessions rebuilt");
      for (const session of broker.sessions.values()) {
        const subs = [...session.subscriptions.values()]
          .map((s) => [s.filter, s.qos] as [string, number])
          .sort();
        equal(subs, TEST14A_SUBS, `subscriptions of ${session.clientId}`);
        check(session.output === null, `${session.clientId} is online`);
      }
      for (const [filter] of TEST14A_SUBS) {
        equal(broker.subscriptions.get(filter)?.size, 5, `subscribers of ${filter}`);
      }
      equal(broker.subscriptions.filterCount, 3, "filters in the subscription table");
      equal(broker.connections.size, 0, "connections online");
    });
  } finally {
    await storage.close();
  }
});
