// Verification of the server by the client, and of the client by the server (mutual TLS):
// the MyQtt regression tests test_18 and test_19, and the typed errors of every refusal.
import { Conn, ConnOpts } from "@myqtt/client";
import { describe, expect, test } from "vitest";
import {
  connectTls,
  isOn,
  peerCertificateDigest,
  setServerName,
  setSslCerts,
  sslPeerVerify,
  TlsError,
  tlsPeerOf,
  verifyCert,
} from "../src/index.js";
import {
  certs,
  newCtx,
  onCleanup,
  rejection,
  roundTrip,
  skipReason,
  tlsBroker,
  tlsClient,
  tlsErrorIn,
  until,
} from "./helpers.js";

describe.skipIf(skipReason !== null)("server verification by the client", () => {
  test("the right CA: connected, verified, authorized", async () => {
    const broker = await tlsBroker();
    const client = await tlsClient(broker.port);
    expect(isOn(client)).toBe(true);
    expect(verifyCert(client)).toBe(true);
    const peer = tlsPeerOf(client);
    expect(peer?.authorized).toBe(true);
    expect(peer?.authorizationError).toBeNull();
    expect(peer?.protocol).toMatch(/^TLSv1\.[23]$/);
    // No SNI to an IP address (RFC 6066); the certificate holds IP:127.0.0.1.
    await until(() => broker.conns.length === 1);
    expect(broker.conns[0]?.serverName).toBeNull();
    expect(broker.conns[0]?.tls).toBe(true);
  });

  test("test_18: verification off to an untrusted (self-signed) certificate works", async () => {
    const c = certs();
    const broker = await tlsBroker({ cert: c.selfSigned.cert, key: c.selfSigned.key });
    const ctx = await newCtx();
    const opts = new ConnOpts();
    sslPeerVerify(opts, false);
    const conn = await Conn.connect(ctx, "127.0.0.1", broker.port, null, false, 30, opts);
    expect(conn.errorMsg).toBeNull();
    expect(conn.isOk()).toBe(true);
    expect(await conn.pub("this/is/a/test/18/tls", "retained 1", 2, true, 10)).toBe(true);
    expect(await conn.pub("this/is/a/test/18/tls", "retained 2", 2, true, 10)).toBe(true);
    expect(conn.isOk()).toBe(true);
    expect(isOn(conn)).toBe(true);
    // Connected, but not verified: verifyCert says so.
    expect(verifyCert(conn)).toBe(false);
    expect(tlsPeerOf(conn)?.authorizationError).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
    await conn.close();
  });

  test("untrusted (self-signed) with verification on: TlsError UNTRUSTED naming the host", async () => {
    const c = certs();
    const broker = await tlsBroker({ cert: c.selfSigned.cert, key: c.selfSigned.key });
    const error = await rejection(
      connectTls("127.0.0.1", broker.port, { ca: c.ca.cert, serverName: "localhost" }),
    );
    expect(error).toBeInstanceOf(TlsError);
    expect((error as TlsError).code).toBe("UNTRUSTED");
    expect((error as TlsError).host).toBe("localhost");
    expect((error as TlsError).message).toContain(`localhost (127.0.0.1:${broker.port})`);
    expect((error as TlsError).message).toContain("not trusted");
    // The same through the client: the connect fails, the TlsError is its cause.
    const viaClient = await rejection(tlsClient(broker.port));
    expect(tlsErrorIn(viaClient)?.code).toBe("UNTRUSTED");
    // ... and it works with verification off.
    const client = await tlsClient(broker.port, { verifyPeer: false });
    expect(client.connected).toBe(true);
    expect(verifyCert(client)).toBe(false);
  });

  test("expired certificate: TlsError CERT_HAS_EXPIRED", async () => {
    const c = certs();
    const broker = await tlsBroker({ cert: c.expired.cert, key: c.expired.key });
    const error = await rejection(connectTls("127.0.0.1", broker.port, { ca: c.ca.cert }));
    expect((error as TlsError).code).toBe("CERT_HAS_EXPIRED");
    expect((error as TlsError).message).toContain("expired");
    expect((error as TlsError).message).toContain(`127.0.0.1:${broker.port}`);
    const ctx = await newCtx();
    const opts = new ConnOpts();
    setSslCerts(opts, null, null, null, c.ca.cert);
    const conn = await Conn.connect(ctx, "127.0.0.1", broker.port, "expired", true, 30, opts);
    expect(conn.isOk()).toBe(false);
    expect(conn.errorMsg).toContain("CERT_HAS_EXPIRED");
  });

  test("certificate for another name: TlsError HOSTNAME_MISMATCH", async () => {
    const c = certs();
    const broker = await tlsBroker();
    const error = await rejection(
      connectTls("127.0.0.1", broker.port, { ca: c.ca.cert, serverName: "wrong.test" }),
    );
    expect((error as TlsError).code).toBe("HOSTNAME_MISMATCH");
    expect((error as TlsError).host).toBe("wrong.test");
    expect((error as TlsError).message).toContain("wrong.test");
    // The other.test certificate served to a client that connects to 127.0.0.1 by address.
    const other = await tlsBroker({ cert: c.other.cert, key: c.other.key });
    const byIp = await rejection(connectTls("127.0.0.1", other.port, { ca: c.ca.cert }));
    expect((byIp as TlsError).code).toBe("HOSTNAME_MISMATCH");
  });

  test("a CA that did not sign the server certificate: UNTRUSTED", async () => {
    const c = certs();
    const broker = await tlsBroker();
    const error = await rejection(
      connectTls("127.0.0.1", broker.port, { ca: c.selfSigned.cert, serverName: "localhost" }),
    );
    expect((error as TlsError).code).toBe("UNTRUSTED");
  });

  test("a refused TCP connection stays a plain error, not a TlsError", async () => {
    const broker = await tlsBroker();
    const port = broker.port;
    await broker.listener.close();
    const error = await rejection(connectTls("127.0.0.1", port, { ca: certs().ca.cert }));
    expect(TlsError.is(error)).toBe(false);
    expect((error as { code?: string }).code).toBe("ECONNREFUSED");
  });

  test("a server that never answers the handshake: TlsError TIMEOUT", async () => {
    const { createServer } = await import("node:net");
    const sockets = new Set<import("node:net").Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      // Reads (and drops) the ClientHello, so that the client's close is seen.
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    onCleanup(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => silent.close(resolve));
    });
    const address = silent.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    const started = Date.now();
    const error = await rejection(connectTls("127.0.0.1", port, { timeoutMs: 200 }));
    expect((error as TlsError).code).toBe("TIMEOUT");
    expect((error as TlsError).message).toContain("timed out");
    expect(Date.now() - started).toBeLessThan(3000);
    await until(
      () => [...sockets].every((socket) => socket.destroyed || socket.readableEnded),
      3000,
      "the client gone",
    );
  });

  test("MyQtt helpers: verify on, CA from a file, SNI name: connected and verified", async () => {
    const c = certs();
    const broker = await tlsBroker();
    const ctx = await newCtx();
    const opts = new ConnOpts();
    sslPeerVerify(opts, true);
    setSslCerts(opts, null, null, null, c.ca.cert);
    setServerName(opts, "localhost");
    const conn = await Conn.connect(ctx, "127.0.0.1", broker.port, "helpers", true, 30, opts);
    expect(conn.errorMsg).toBeNull();
    expect(isOn(conn)).toBe(true);
    expect(verifyCert(conn)).toBe(true);
    expect(peerCertificateDigest(conn, "sha1")).toBe(c.fingerprint(c.server.cert, "sha1"));
    await until(() => broker.conns.length === 1);
    expect(broker.conns[0]?.serverName).toBe("localhost");
    await conn.close();
  });
});

describe.skipIf(skipReason !== null)("test_19: mutual TLS", () => {
  const mutual = () => {
    const c = certs();
    return { cert: c.server.cert, key: c.server.key, ca: c.ca.cert, requireClientCert: true };
  };

  test("a client certificate signed by the CA is accepted; the broker sees it verified", async () => {
    const c = certs();
    const broker = await tlsBroker(mutual());
    const ctx = await newCtx();
    const opts = new ConnOpts();
    // As test_19 step 1: client.pem, root.pem, a server name the SNI handlers do not know.
    setSslCerts(opts, c.client.cert, c.client.key, null, c.ca.cert);
    setServerName(opts, "localhost");
    const conn = await Conn.connect(ctx, "127.0.0.1", broker.port, null, false, 30, opts);
    expect(conn.errorMsg).toBeNull();
    expect(await conn.pub("this/is/a/test/19", "first", 2, true, 10)).toBe(true);
    expect(await conn.pub("this/is/a/test/19", "second", 2, true, 10)).toBe(true);
    expect(isOn(conn)).toBe(true);
    await until(() => broker.conns.length === 1);
    const serverConn = broker.conns[0]!;
    const peer = tlsPeerOf(serverConn);
    expect(peer?.authorized).toBe(true);
    expect(verifyCert(serverConn)).toBe(true);
    expect(peerCertificateDigest(serverConn, "sha256")).toBe(
      c.fingerprint(c.client.cert, "sha256"),
    );
    await conn.close();

    // test_19 itself sends the SNI name test19.skipsni.localhost, which the certificate does not
    // hold: MyQtt checks only the chain. Here that takes verification off (the client still
    // presents its certificate); with it on, the name check would refuse the server.
    const skipSni = new ConnOpts();
    setSslCerts(skipSni, c.client.cert, c.client.key, null, c.ca.cert);
    setServerName(skipSni, "test19.skipsni.localhost");
    const refused = await Conn.connect(ctx, "127.0.0.1", broker.port, null, false, 30, skipSni);
    expect(refused.errorMsg).toContain("HOSTNAME_MISMATCH");
    sslPeerVerify(skipSni, false);
    const conn2 = await Conn.connect(ctx, "127.0.0.1", broker.port, null, false, 30, skipSni);
    expect(conn2.errorMsg).toBeNull();
    expect(isOn(conn2)).toBe(true);
    await until(() => broker.conns.length === 2);
    expect(broker.conns[1]?.serverName).toBe("test19.skipsni.localhost");
    expect(verifyCert(broker.conns[1])).toBe(true);
    await conn2.close();
  });

  test("no client certificate: refused (NO_CLIENT_CERT), logged by the broker", async () => {
    const broker = await tlsBroker(mutual());
    const error = await rejection(tlsClient(broker.port, { verifyPeer: false }));
    // TLS 1.3 refuses after the client finished its handshake: the connection closes before
    // CONNACK, usually with the TlsError as the cause. When the client's CONNECT is still
    // unread as the server closes, the close becomes a reset that can overtake the alert; the
    // broker's log line below names the reason either way.
    const tlsError = tlsErrorIn(error);
    if (tlsError !== null) expect(tlsError.code).toBe("NO_CLIENT_CERT");
    else
      expect(String((error as Error).message)).toMatch(/before CONNACK|closed|reset|ECONNRESET/i);
    expect(broker.conns).toHaveLength(0);
    await until(() => broker.logs.some((l) => l.includes("NO_CLIENT_CERT")), 5000, "a log line");
    // And MyQtt's way: verify off, no certificate: the connect fails.
    const ctx = await newCtx();
    const opts = new ConnOpts();
    sslPeerVerify(opts, false);
    const conn = await Conn.connect(ctx, "127.0.0.1", broker.port, null, false, 30, opts);
    expect(conn.isOk()).toBe(false);
  });

  test("at the transport level the refusal is the close reason of the transport", async () => {
    const broker = await tlsBroker(mutual());
    // TLS 1.3: the client's side of the handshake ends before the server checks its certificate.
    const transport = await connectTls("127.0.0.1", broker.port, { verifyPeer: false });
    onCleanup(() => transport.destroy());
    const closed = new Promise<Error | null>((resolve) =>
      transport.start({ onData: () => {}, onDrain: () => {}, onClose: resolve }),
    );
    const reason = await closed;
    expect(TlsError.is(reason)).toBe(true);
    expect((reason as TlsError).code).toBe("NO_CLIENT_CERT");
  });

  test("a client certificate the CA did not sign: refused", async () => {
    const c = certs();
    const broker = await tlsBroker(mutual());
    const error = await rejection(
      tlsClient(broker.port, { cert: c.selfSigned.cert, key: c.selfSigned.key }),
    );
    // Node.js refuses an unverified client certificate by closing, without an alert: the
    // client sees the connection close before CONNACK; the broker logs why.
    expect((error as { code?: string }).code).toBe("CONNECTION_CLOSED");
    expect(broker.conns).toHaveLength(0);
    await until(() => broker.logs.some((l) => l.includes("UNTRUSTED")), 5000, "a log line");
    const ctx = await newCtx();
    const opts = new ConnOpts();
    setSslCerts(opts, c.selfSigned.cert, c.selfSigned.key, null, c.ca.cert);
    const conn = await Conn.connect(ctx, "127.0.0.1", broker.port, null, false, 30, opts);
    expect(conn.isOk()).toBe(false);
  });

  test("requireClientCert without a CA is refused when the listener is created", async () => {
    const c = certs();
    const ctx = await newCtx();
    const { createListener } = await import("@myqtt/broker");
    const { listenTls } = await import("../src/index.js");
    const listener = await createListener(ctx, "127.0.0.1", 0, {
      transport: listenTls,
      transportOptions: { cert: c.server.cert, key: c.server.key, requireClientCert: true },
    });
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toContain("requireClientCert needs `ca`");
  });

  test("requestCert: clients with and without a certificate are let in, tlsPeer tells", async () => {
    const c = certs();
    const broker = await tlsBroker({ ca: c.ca.cert, requestCert: true });
    await tlsClient(broker.port, { cert: c.client.cert, key: c.client.key }, { clientId: "with" });
    await tlsClient(broker.port, {}, { clientId: "without" });
    await tlsClient(
      broker.port,
      { cert: c.selfSigned.cert, key: c.selfSigned.key },
      { clientId: "untrusted" },
    );
    await until(() => broker.conns.length === 3);
    const byId = new Map(broker.conns.map((conn) => [conn.clientId, tlsPeerOf(conn)]));
    expect(byId.get("with")?.authorized).toBe(true);
    expect(byId.get("without")?.authorized).toBe(false);
    expect(byId.get("without")?.certificate).toBeNull();
    expect(byId.get("untrusted")?.authorized).toBe(false);
    expect(byId.get("untrusted")?.certificate).not.toBeNull();
  });
});

describe.skipIf(skipReason !== null)("interop over TLS", () => {
  test("MQTT.js (mqtts://) against our broker: connect, QoS 1 publish and subscribe", async () => {
    const mqtt = await import("mqtt");
    const c = certs();
    const broker = await tlsBroker();
    const options = {
      ca: c.ca.pem,
      servername: "localhost",
      rejectUnauthorized: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    };
    const sub = await mqtt.connectAsync(`mqtts://127.0.0.1:${broker.port}`, options);
    onCleanup(() => sub.endAsync(true));
    const pub = await mqtt.connectAsync(`mqtts://127.0.0.1:${broker.port}`, options);
    onCleanup(() => pub.endAsync(true));
    await sub.subscribeAsync("tls/mqttjs", { qos: 1 });
    const received = new Promise<{ payload: string; qos: number }>((resolve) =>
      sub.once("message", (_t, payload, packet) =>
        resolve({ payload: payload.toString(), qos: packet.qos }),
      ),
    );
    await pub.publishAsync("tls/mqttjs", "over mqtts", { qos: 1 });
    expect(await received).toEqual({ payload: "over mqtts", qos: 1 });
    await until(() => broker.conns.length === 2);
    expect(broker.conns.every((conn) => conn.tls && conn.serverName === "localhost")).toBe(true);
  });

  test("our client against our broker: QoS 1 round trip", async () => {
    const broker = await tlsBroker();
    const sub = await tlsClient(broker.port, { serverName: "localhost" }, { clientId: "s" });
    const pub = await tlsClient(broker.port, { serverName: "localhost" }, { clientId: "p" });
    expect(await roundTrip(sub, pub, "tls/ours", "hello")).toBe("hello");
    expect(broker.listener.connections).toBe(2);
    pub.destroy();
    await until(() => broker.listener.connections === 1, 5000, "the count to drop");
  });

  test("test_20b (TLS status): the broker's connection knows it is TLS", async () => {
    const broker = await tlsBroker();
    const client = await tlsClient(broker.port);
    await until(() => broker.conns.length === 1);
    expect(broker.conns[0]?.tls).toBe(true);
    expect(isOn(broker.conns[0])).toBe(true);
    expect(isOn(client)).toBe(true);
    expect(isOn({})).toBe(false);
  });

  test("the listener's chain lets clients that trust only the root verify", async () => {
    const c = certs();
    const withChain = await tlsBroker({
      cert: c.viaIntermediate.cert,
      key: c.viaIntermediate.key,
      chain: c.intermediate.cert,
    });
    const client = await tlsClient(withChain.port, { serverName: "localhost" });
    expect(verifyCert(client)).toBe(true);
    const withoutChain = await tlsBroker({
      cert: c.viaIntermediate.cert,
      key: c.viaIntermediate.key,
    });
    const error = await rejection(
      connectTls("127.0.0.1", withoutChain.port, { ca: c.ca.cert, serverName: "localhost" }),
    );
    expect((error as TlsError).code).toBe("UNTRUSTED");
  });
});
