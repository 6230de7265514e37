// test_21 (the listener closes the publisher), test_22 (automatic reconnect over TCP, TLS and
// WebSocket), test_23 (deferred CONNACK), test_24 (subscriptions of clean and persistent
// sessions, as the listener sees them).
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import {
  ask,
  type Conn,
  connect,
  connOpts,
  Inbox,
  mustConnect,
  sameBytes,
  subscribe,
  withCtx,
  wsOptions,
} from "./helpers.js";

test("c", "test_21", async (env) => {
  await withCtx(async (ctx) => {
    const conn = await connect(ctx, env, "test_01", true);
    // The listener shuts the connection down on close/conn without acknowledging: each
    // publish fails, and fast (the first one when the connection drops, the others at once).
    for (const qos of [myqtt.qos2, myqtt.qos1, myqtt.qos0] as const) {
      const started = performance.now();
      const ok = await conn.pub("close/conn", "Test message 1", qos, true, 10);
      const took = performance.now() - started;
      env.log(`QoS ${qos}: pub returned ${ok} after ${Math.round(took)} ms`);
      check(!ok, `the QoS ${qos} publish to close/conn succeeded`);
      check(took < 2000, `the QoS ${qos} publish took ${Math.round(took)} ms to fail (> 2 s)`);
    }
  });
});

/**
 * The C test closes the connection's socket behind the library's back. The port destroys the
 * connection's transport (TCP, TLS or WebSocket), the nearest a Node.js program gets to
 * close(fd): the library sees the connection lost, not closed by the application.
 */
function dropTransport(conn: Conn): void {
  const transport = myqtt.tls.transportOf(conn);
  check(transport !== null, "the connection has no transport to close");
  transport.destroy();
}

/** test_22_close_recover_and_send: two losses, two reconnects, then a request/reply. */
export async function closeRecoverAndSend(
  conn: Conn,
  beacons: myqtt.AsyncQueue<number>,
  label: string,
): Promise<void> {
  for (const round of [1, 2]) {
    const before = myqtt.tls.transportOf(conn);
    dropTransport(conn);
    const beacon = await beacons.timedpop(10_000_000);
    check(beacon === 4, `${label}: no reconnect within 10 s (round ${round})`);
    check(conn.isOk(), `${label}: the connection is not ok after reconnecting (round ${round})`);
    const after = myqtt.tls.transportOf(conn);
    check(
      after !== null && !after.closed && after !== before,
      `${label}: no new transport after reconnecting (round ${round})`,
    );
  }
  const reply = await ask(conn, "myqtt/admin/get-server-name");
  equal(reply.type, "PUBLISH", `${label}: reply type`);
}

/** Options of an auto-reconnecting connection with the listener's test user. */
export function reconnectOpts(setup?: (opts: myqtt.ConnOpts) => void): myqtt.ConnOpts {
  return connOpts((opts) => {
    opts.setReconnect();
    opts.setAuth("aspl", "test");
    setup?.(opts);
  });
}

/** Runs the reconnect checks on `conn`, then closes it. */
export async function reconnectChecks(conn: Conn, label: string): Promise<void> {
  const beacons = new myqtt.AsyncQueue<number>();
  conn.setOnReconnect((_conn, queue) => queue.push(4), beacons);
  await closeRecoverAndSend(conn, beacons, label);
  await conn.close();
}

/**
 * test_22. The C test needs an init-session factory to reopen a WebSocket (noPoll) connection;
 * our client's reconnect reopens any transport itself, WebSocket included.
 */
test("c", "test_22", async (env) => {
  await withCtx(async (ctx) => {
    const plain = await connect(ctx, env, "test_01", true, reconnectOpts());
    await reconnectChecks(plain, "plain-mqtt");

    const tlsOpts = reconnectOpts((o) => myqtt.tls.sslPeerVerify(o, false));
    const tls = await mustConnect(`TLS ${env.host}:${env.tlsPort}`, () =>
      myqtt.tls.createConn(ctx, env.host, env.tlsPort, null, false, 30, tlsOpts),
    );
    await reconnectChecks(tls, "mqtt-tls");

    const ws = await mustConnect(`ws://${env.host}:${env.wsPort}`, () =>
      myqtt.websocket.createConn(
        ctx,
        env.host,
        env.wsPort,
        null,
        false,
        30,
        reconnectOpts(),
        wsOptions(),
      ),
    );
    await reconnectChecks(ws, "mqtt-ws");
  });
});

test("c", "test_23", async (env) => {
  await withCtx(async (ctx) => {
    const started = performance.now();
    const conn = await connect(ctx, env, "test_23", true);
    const took = performance.now() - started;
    env.log(`CONNACK after ${Math.round(took)} ms`);
    // The listener answers test_23's CONNECT from a 2 s timer (CONNACK_DEFERRED): a CONNACK
    // much sooner means the deferral was not exercised.
    check(took >= 1500, `the CONNACK came after ${Math.round(took)} ms, not deferred by ~2 s`);
    await subscribe(conn, "myqtt/test/deferred", myqtt.qos0);
    const inbox = new Inbox(conn);
    const message = "This is test message........".slice(0, 24);
    check(
      await conn.pub("myqtt/test/deferred", message, myqtt.qos0, false, 0),
      "cannot publish to myqtt/test/deferred",
    );
    // The C test waits without a limit; 10 s here.
    const msg = await inbox.next(10_000, "the message on myqtt/test/deferred");
    check(sameBytes(msg.payload, message), `unexpected content: ${msg.content}`);
    await conn.close();
  });
});

/** The listener's view of this connection's subscriptions and of the context's. */
async function subscriptions(conn: Conn): Promise<[string, string]> {
  const own = await ask(conn, "get-subscriptions");
  equal(own.topic, "get-subscriptions", "reply topic");
  const all = await ask(conn, "get-subscriptions-ctx");
  equal(all.topic, "get-subscriptions-ctx", "reply topic");
  return [own.content, all.content];
}

test("c", "test_24", async (env: TestEnv) => {
  await withCtx(async (ctx) => {
    let conn = await connect(ctx, env, "test_24", true);
    equal(await subscriptions(conn), ["", ""], "subscriptions of a clean session");
    await conn.close();

    conn = await connect(ctx, env, "test_24", false);
    for (const filter of ["myqtt/test/a", "myqtt/test/b", "myqtt/test/b/+", "myqtt/test/b/#"])
      await subscribe(conn, filter, myqtt.qos0);
    equal(
      await subscriptions(conn),
      [
        "myqtt/test/a.0,myqtt/test/b.0,myqtt/test/b/#.0,myqtt/test/b/+.0",
        "myqtt/test/a.num-conns=1,myqtt/test/b.num-conns=1,myqtt/test/b/#.num-conns=1,myqtt/test/b/+.num-conns=1",
      ],
      "subscriptions of the persistent session",
    );
    await conn.close();

    conn = await connect(ctx, env, "test_24", true);
    equal(await subscriptions(conn), ["", ""], "subscriptions after a clean reconnect");
    await conn.close();

    // The clean session deleted the stored one: a persistent reconnect finds nothing.
    conn = await connect(ctx, env, "test_24", false);
    equal(await subscriptions(conn), ["", ""], "subscriptions after a persistent reconnect");
    await conn.close();
  });
});
