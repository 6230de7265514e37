// test_17e and test_17f: MyQtt's fault-injection tests. The C versions use hooks compiled into
// the library (reads that fail with EWOULDBLOCK; a connection shut down while routing). The
// port injects the same faults from outside the library: a TCP proxy that hands the bytes over
// in tiny pieces with pauses, and an in-process broker whose publish hook kills the publisher.
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import {
  type Ctx,
  connect,
  Inbox,
  publish,
  sameBytes,
  subscribe,
  until,
  withCtx,
} from "./helpers.js";

/** The first 24 bytes of MyQtt's "This is test message........" (test_03). */
const TEST03_MESSAGE = "This is test message....";

/** Sizes of the pieces the proxy cuts the stream into, in turn, and the pauses between them. */
const PIECES = [1, 2, 3, 1, 5, 2, 7, 1];
const PAUSES_MS = [0, 1, 3, 0, 2, 5, 1, 0];

/**
 * Copies `from` to `to` a few bytes at a time with pauses in between, so that the reader gets
 * every packet in fragments and often finds nothing to read (what MyQtt's "next 10 reads return
 * EWOULDBLOCK" produced). Reading from `from` pauses while pieces are waiting.
 */
function trickle(from: Socket, to: Socket, stats: { pieces: number }): void {
  const pending: Buffer[] = [];
  let step = 0;
  let busy = false;
  const pump = (): void => {
    const head = pending[0];
    if (head === undefined || to.destroyed) {
      busy = false;
      from.resume();
      return;
    }
    busy = true;
    const size = PIECES[step % PIECES.length]!;
    const pause = PAUSES_MS[step % PAUSES_MS.length]!;
    step++;
    const piece = head.subarray(0, size);
    if (piece.length === head.length) pending.shift();
    else pending[0] = head.subarray(size);
    stats.pieces++;
    to.write(piece);
    setTimeout(pump, pause);
  };
  from.on("data", (chunk: Buffer) => {
    pending.push(chunk);
    from.pause();
    if (!busy) pump();
  });
  from.on("end", () => {
    const finish = (): void => {
      if (pending.length > 0 || busy) setTimeout(finish, 5);
      else to.end();
    };
    finish();
  });
}

/** A proxy on 127.0.0.1 to host:port that trickles both directions. */
async function trickleProxy(
  host: string,
  port: number,
): Promise<{ port: number; stats: { pieces: number }; close(): Promise<void> }> {
  const stats = { pieces: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = netConnect({ host, port });
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
    trickle(client, upstream, stats);
    trickle(upstream, client, stats);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  check(typeof address === "object" && address !== null, "the proxy has no address");
  return {
    port: address.port,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * The test_03 scenario with `host:port` as the broker: test_03 subscribes to myqtt/test and
 * publishes 24 bytes at QoS 0; it gets them back, test_03-2 gets nothing.
 */
async function test03Scenario(ctx: Ctx, env: TestEnv, port: number): Promise<void> {
  const conn = await connect(ctx, env, "test_03", true, undefined, port);
  const conn2 = await connect(ctx, env, "test_03-2", true, undefined, port);
  await subscribe(conn, "myqtt/test", myqtt.qos0);
  const inbox = new Inbox(conn);
  let wrong = 0;
  conn2.setOnMsg(() => {
    wrong++;
  });
  check(
    await conn.pub("myqtt/test", TEST03_MESSAGE, myqtt.qos0, false, 0),
    "cannot publish the test message",
  );
  const msg = await inbox.next(10_000, "the test_03 message");
  equal(msg.type, "PUBLISH", "message type");
  equal(msg.size, 24, "message size");
  check(sameBytes(msg.payload, TEST03_MESSAGE), `unexpected content: ${msg.content}`);
  await inbox.nothing(300, "a second copy");
  equal(wrong, 0, "messages received by test_03-2 (not subscribed)");
  await Promise.all([conn.close(), conn2.close()]);
}

test("c", "test_17e", async (env) => {
  const proxy = await trickleProxy(env.host, env.port);
  try {
    await withCtx((ctx) =>
      test03Scenario(ctx, { ...env, host: "127.0.0.1", port: proxy.port }, proxy.port),
    );
    env.log(`the proxy forwarded ${proxy.stats.pieces} pieces`);
    check(proxy.stats.pieces >= 20, `only ${proxy.stats.pieces} pieces went through the proxy`);
  } finally {
    await proxy.close();
  }
});

/**
 * test_17f: the C test makes its in-process listener shut the publisher's connection down while
 * preparing the onward delivery. Here the in-process broker's on_publish hook shuts the publisher
 * down and answers PUBLISH_OK: the message must still reach the subscriber within 5 s.
 */
test("c", "test_17f", async (env) => {
  const brokerCtx = new myqtt.Ctx();
  check(await brokerCtx.init(), "cannot initialise the broker's context");
  try {
    let killed = 0;
    brokerCtx.setOnPublish((_ctx, conn, msg) => {
      if (conn.clientId === "test_17f-publisher" && msg.topic === "myqtt/test") {
        killed++;
        conn.shutdown();
      }
      return myqtt.PUBLISH_OK;
    });
    const listener = await myqtt.createListener(brokerCtx, "127.0.0.1", 0);
    check(listener.isOk(), `cannot start the in-process listener: ${listener.errorMsg}`);
    const local = { ...env, host: "127.0.0.1", port: listener.port };
    await withCtx(async (ctx) => {
      const subscriber = await connect(ctx, local, "test_17f-subscriber", true);
      await subscribe(subscriber, "myqtt/test", myqtt.qos0);
      const inbox = new Inbox(subscriber);
      const publisher = await connect(ctx, local, "test_17f-publisher", true);
      await publish(publisher, "myqtt/test", TEST03_MESSAGE, myqtt.qos0, false, 0);
      const msg = await inbox.next(5000, "the message of the killed publisher");
      equal(msg.size, 24, "message size");
      check(sameBytes(msg.payload, TEST03_MESSAGE), `unexpected content: ${msg.content}`);
      equal(killed, 1, "publishers shut down by the hook");
      check(await until(() => !publisher.isOk(), 2000), "the publisher's connection stayed up");
      await subscriber.close();
    });
  } finally {
    await brokerCtx.exit();
  }
});
