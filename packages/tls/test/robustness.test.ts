// What must not take the broker down: plain TCP on the TLS port, failed and stalled handshakes;
// and what must keep working: reconnection over TLS (test_22).
import { connect as netConnect, type Socket } from "node:net";
import { Conn, ConnOpts } from "@myqtt/client";
import { describe, expect, test } from "vitest";
import { isOn, setServerName, sslPeerVerify, TlsError } from "../src/index.js";
import {
  certs,
  newCtx,
  onCleanup,
  rejection,
  roundTrip,
  skipReason,
  tlsBroker,
  tlsClient,
  until,
} from "./helpers.js";

/** A raw TCP connection; resolves once connected. */
async function rawTcp(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = netConnect({ host: "127.0.0.1", port });
  socket.on("error", () => {});
  onCleanup(() => socket.destroy());
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, closed };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms),
    ),
  ]);
}

// MQTT 3.1.1 CONNECT, client id "plain", clean session, keep alive 30.
const CONNECT = Buffer.from([
  0x10, 0x11, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x1e, 0x00, 0x05, 0x70, 0x6c,
  0x61, 0x69, 0x6e,
]);

describe.skipIf(skipReason !== null)("a TLS listener under bad input", () => {
  test("a plain MQTT client on the TLS port: logged, closed; the broker goes on", async () => {
    const broker = await tlsBroker();
    const sub = await tlsClient(broker.port, {}, { clientId: "before" });
    const { socket, closed } = await rawTcp(broker.port);
    socket.write(CONNECT);
    await within(closed, 5000, "the plain connection closed");
    await until(
      () =>
        broker.logs.some(
          (l) => l.includes("TLS handshake with 127.0.0.1") && l.includes("(HANDSHAKE)"),
        ),
      5000,
      "the log line",
    );
    expect(broker.conns.map((conn) => conn.clientId)).toEqual(["before"]);
    // The broker still accepts TLS clients, and the one already there still works.
    const pub = await tlsClient(broker.port, {}, { clientId: "after" });
    expect(await roundTrip(sub, pub, "tls/still/up", "yes")).toBe("yes");
    expect(broker.listener.connections).toBe(2);
  });

  test("random bytes and a silent client are dropped (handshake timeout)", async () => {
    const broker = await tlsBroker({ handshakeTimeoutMs: 300 });
    const garbage = await rawTcp(broker.port);
    garbage.socket.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await within(garbage.closed, 5000, "the garbage connection closed");
    const silent = await rawTcp(broker.port);
    const started = Date.now();
    await within(silent.closed, 5000, "the silent connection closed");
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(broker.listener.connections).toBe(0);
    const client = await tlsClient(broker.port);
    expect(client.connected).toBe(true);
  });

  test("a failed handshake closes that connection only", async () => {
    const c = certs();
    const broker = await tlsBroker({
      cert: c.server.cert,
      key: c.server.key,
      ca: c.ca.cert,
      requireClientCert: true,
    });
    const good = { cert: c.client.cert, key: c.client.key };
    const sub = await tlsClient(broker.port, good, { clientId: "sub" });
    const pub = await tlsClient(broker.port, good, { clientId: "pub" });
    // A client refusing the server (wrong CA), one without certificate, one untrusted.
    const refused = await rejection(tlsClient(broker.port, { ...good, ca: c.selfSigned.cert }));
    expect(TlsError.is((refused as { cause?: unknown }).cause)).toBe(true);
    await rejection(tlsClient(broker.port, { verifyPeer: false }));
    await rejection(tlsClient(broker.port, { cert: c.selfSigned.cert, key: c.selfSigned.key }));
    expect(await roundTrip(sub, pub, "tls/after/failures", "fine")).toBe("fine");
    expect(broker.listener.connections).toBe(2);
    expect(broker.conns.map((conn) => conn.clientId)).toEqual(["sub", "pub"]);
  });
});

describe.skipIf(skipReason !== null)("test_22: reconnection over TLS", () => {
  test("the raw connection is closed twice; the Conn reconnects over TLS each time", async () => {
    const broker = await tlsBroker();
    const ctx = await newCtx();
    const opts = new ConnOpts();
    opts.setAuth("aspl", "test");
    opts.setReconnect(true);
    sslPeerVerify(opts, false);
    setServerName(opts, "localhost");
    const conn = await Conn.connect(ctx, "127.0.0.1", broker.port, null, true, 30, opts);
    expect(conn.errorMsg).toBeNull();
    let reconnects = 0;
    conn.setOnReconnect(() => {
      reconnects++;
    }, null);
    for (let round = 1; round <= 2; round++) {
      conn.client?.transport?.destroy();
      await until(() => reconnects === round && conn.isOk(), 10_000, `reconnect ${round}`);
      expect(isOn(conn)).toBe(true);
    }
    await until(() => broker.conns.length === 3);
    expect(broker.conns.every((c) => c.tls && c.serverName === "localhost")).toBe(true);
    expect(await conn.pub("myqtt/test/22", "after reconnects", 1, false, 10)).toBe(true);
    await conn.close();
  });
});
