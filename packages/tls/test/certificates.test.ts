// Which certificate a client gets: digests (test_19a), SNI certificate handlers, the SNI hook,
// and certificates replaced while the listener runs.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Conn, ConnOpts } from "@myqtt/client";
import type { Ctx, Transport } from "@myqtt/core";
import { describe, expect, test } from "vitest";
import {
  connectTls,
  listenTls,
  peerCertificateDigest,
  setCertificate,
  setCertificateHandlers,
  setServerName,
  sslPeerVerify,
  TlsContext,
  TlsError,
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
  until,
} from "./helpers.js";

/** SNI handlers as the regression listener's: other.test gets its own certificate. */
function otherTestHandlers(ctx: Ctx, calls: string[] = []): void {
  const c = certs();
  setCertificateHandlers(
    ctx,
    (_ctx, serverName, data: { tag: string }) => {
      calls.push(`${data.tag}:${serverName}`);
      return serverName === "other.test" ? c.other.cert : null;
    },
    (_ctx, serverName) => (serverName === "other.test" ? c.other.key : null),
    null,
    { tag: "cert" },
  );
}

/** A TLS connection with verification off, closed after the test. */
async function peek(port: number, serverName?: string): Promise<Transport> {
  const transport = await connectTls("127.0.0.1", port, {
    verifyPeer: false,
    ...(serverName !== undefined ? { serverName } : {}),
  });
  onCleanup(() => transport.destroy());
  return transport;
}

describe.skipIf(skipReason !== null)("test_19a: peer certificate digests and SNI", () => {
  test("digests match openssl's fingerprints (sha1, md5, sha256)", async () => {
    const c = certs();
    const broker = await tlsBroker();
    const client = await tlsClient(broker.port);
    for (const method of ["sha1", "md5", "sha256"] as const) {
      const digest = peerCertificateDigest(client, method);
      expect(digest).toBe(c.fingerprint(c.server.cert, method));
      expect(digest).toMatch(/^([0-9A-F]{2}:)+[0-9A-F]{2}$/);
    }
    // MyQtt's default method is SHA-1.
    expect(peerCertificateDigest(client)).toBe(c.fingerprint(c.server.cert, "sha1"));
    // No client certificate: the broker's side has no digest; a non-TLS object has none.
    await until(() => broker.conns.length === 1);
    expect(peerCertificateDigest(broker.conns[0])).toBeNull();
    expect(peerCertificateDigest({ transport: null })).toBeNull();
  });

  test("certificate handlers: other.test gets its certificate; others the default", async () => {
    const c = certs();
    const calls: string[] = [];
    const broker = await tlsBroker({}, (ctx) => otherTestHandlers(ctx, calls));
    const ctx = await newCtx();

    // The default connect, as test_19a (verify off, SNI localhost).
    const first = new ConnOpts();
    sslPeerVerify(first, false);
    setServerName(first, "localhost");
    const conn1 = await Conn.connect(ctx, "127.0.0.1", broker.port, null, true, 30, first);
    expect(conn1.errorMsg).toBeNull();
    expect(peerCertificateDigest(conn1, "sha1")).toBe(c.fingerprint(c.server.cert, "sha1"));

    // With serverName other.test: the handlers' certificate, and the broker records the name.
    const second = new ConnOpts();
    sslPeerVerify(second, false);
    setServerName(second, "other.test");
    const conn2 = await Conn.connect(ctx, "127.0.0.1", broker.port, null, true, 30, second);
    expect(conn2.errorMsg).toBeNull();
    expect(peerCertificateDigest(conn2, "sha1")).toBe(c.fingerprint(c.other.cert, "sha1"));
    await until(() => broker.conns.length === 2);
    expect(broker.conns.map((conn) => conn.serverName)).toEqual(["localhost", "other.test"]);
    expect(calls).toEqual(["cert:localhost", "cert:other.test"]);

    // With verification on and the CA, other.test verifies.
    const verified = await tlsClient(broker.port, { serverName: "other.test" });
    expect(verifyCert(verified)).toBe(true);
    // The handlers are asked on every handshake; the loaded certificate is reused.
    const again = await peek(broker.port, "other.test");
    expect(peerCertificateDigest(again, "sha256")).toBe(c.fingerprint(c.other.cert, "sha256"));
    expect(calls.filter((call) => call === "cert:other.test")).toHaveLength(3);
    await conn1.close();
    await conn2.close();
  });

  test("handlers may be async; removing them restores the default", async () => {
    const c = certs();
    const broker = await tlsBroker({}, (ctx) =>
      setCertificateHandlers(
        ctx,
        async (_ctx, name) => (name === "other.test" ? c.other.cert : null),
        async (_ctx, name) => (name === "other.test" ? c.other.key : null),
        async () => null,
        null,
      ),
    );
    const t1 = await peek(broker.port, "other.test");
    expect(peerCertificateDigest(t1)).toBe(c.fingerprint(c.other.cert, "sha1"));
    setCertificateHandlers(broker.ctx, null, null, null, null);
    const t2 = await peek(broker.port, "other.test");
    expect(peerCertificateDigest(t2)).toBe(c.fingerprint(c.server.cert, "sha1"));
  });

  test("a handler that throws or names a missing file: logged, default certificate", async () => {
    const c = certs();
    const broker = await tlsBroker({}, (ctx) =>
      setCertificateHandlers(
        ctx,
        (_ctx, name) => {
          if (name === "boom.test") throw new Error("handler bug");
          return join(c.dir, "missing.crt");
        },
        () => join(c.dir, "missing.key"),
        null,
        null,
      ),
    );
    const t1 = await peek(broker.port, "boom.test");
    expect(peerCertificateDigest(t1)).toBe(c.fingerprint(c.server.cert, "sha1"));
    const t2 = await peek(broker.port, "missing.test");
    expect(peerCertificateDigest(t2)).toBe(c.fingerprint(c.server.cert, "sha1"));
    expect(broker.logs.some((l) => l.includes("boom.test") && l.includes("handler bug"))).toBe(
      true,
    );
    // Certificate and key are read together: either may be the one reported.
    expect(broker.logs.some((l) => /missing\.(crt|key)/.test(l))).toBe(true);
  });

  test("the SNI hook of the listener options comes before the handlers", async () => {
    const c = certs();
    const broker = await tlsBroker(
      {
        sni: (name) =>
          name === "hook.test" ? { cert: c.other.pem, key: { path: c.other.key } } : null,
      },
      (ctx) =>
        setCertificateHandlers(
          ctx,
          () => c.renewed.cert,
          () => c.renewed.key,
          null,
          null,
        ),
    );
    const byHook = await peek(broker.port, "hook.test");
    expect(peerCertificateDigest(byHook)).toBe(c.fingerprint(c.other.cert, "sha1"));
    const byHandlers = await peek(broker.port, "any.test");
    expect(peerCertificateDigest(byHandlers)).toBe(c.fingerprint(c.renewed.cert, "sha1"));
    // No SNI at all (connected by IP address): the default certificate.
    const noSni = await peek(broker.port);
    expect(peerCertificateDigest(noSni)).toBe(c.fingerprint(c.server.cert, "sha1"));
  });
});

describe.skipIf(skipReason !== null)("certificates replaced while running", () => {
  test("setCertificate on listenTls's listener: new connections get it, open ones go on", async () => {
    const c = certs();
    const accepted: Transport[] = [];
    const listener = await listenTls(
      "127.0.0.1",
      0,
      (t) => {
        accepted.push(t);
        // An echo server: what a connection sends comes back.
        t.start({ onData: (chunk) => t.write(chunk), onDrain: () => {}, onClose: () => {} });
      },
      { cert: c.server.cert, key: c.server.key },
    );
    onCleanup(() => listener.close());
    expect(listener.scheme).toBe("mqtts");
    const before = await peek(listener.port, "localhost");
    expect(peerCertificateDigest(before)).toBe(c.fingerprint(c.server.cert, "sha1"));

    setCertificate(listener, c.renewed.cert, c.renewed.key);
    const after = await peek(listener.port, "localhost");
    expect(peerCertificateDigest(after)).toBe(c.fingerprint(c.renewed.cert, "sha1"));

    // The first connection still has its certificate and still carries bytes.
    expect(peerCertificateDigest(before)).toBe(c.fingerprint(c.server.cert, "sha1"));
    const echoed = new Promise<string>((resolve) =>
      before.start({
        onData: (chunk) => resolve(Buffer.from(chunk).toString()),
        onDrain: () => {},
        onClose: () => {},
      }),
    );
    before.write(Buffer.from("still here"));
    expect(await echoed).toBe("still here");
    await until(() => listener.connections === 2);
    expect(accepted).toHaveLength(2);
  });

  test("a broker's certificate through a TlsContext; MQTT connections survive it", async () => {
    const c = certs();
    const context = new TlsContext({ cert: c.server.cert, key: c.server.key });
    const broker = await tlsBroker({ context });
    expect(context.listeners).toBe(1);
    const sub = await tlsClient(broker.port, {}, { clientId: "sub" });
    const pub = await tlsClient(broker.port, {}, { clientId: "pub" });
    expect(peerCertificateDigest(sub)).toBe(c.fingerprint(c.server.cert, "sha1"));

    context.setCertificate(c.renewed.cert, c.renewed.key);
    const late = await tlsClient(broker.port, {}, { clientId: "late" });
    expect(peerCertificateDigest(late)).toBe(c.fingerprint(c.renewed.cert, "sha1"));
    expect(verifyCert(late)).toBe(true);
    // Connections made before the change are unaffected.
    expect(await roundTrip(sub, pub, "tls/renewed", "after renewal")).toBe("after renewal");
    expect(await roundTrip(late, sub, "tls/renewed/2", "both ways")).toBe("both ways");
    expect(peerCertificateDigest(sub)).toBe(c.fingerprint(c.server.cert, "sha1"));
    // MyQtt's function form takes the context too.
    setCertificate(context, c.server.cert, c.server.key);
    const last = await peek(broker.port);
    expect(peerCertificateDigest(last)).toBe(c.fingerprint(c.server.cert, "sha1"));
  });

  test("a TlsContext given a certificate before the listener starts", async () => {
    const c = certs();
    const context = new TlsContext();
    context.setCertificate(c.renewed.cert, c.renewed.key);
    const broker = await tlsBroker({ context });
    expect(peerCertificateDigest(await peek(broker.port))).toBe(
      c.fingerprint(c.renewed.cert, "sha1"),
    );
    await broker.listener.close();
    expect(context.listeners).toBe(0);
  });

  test("setCertificate also renews certificates chosen by SNI (the cache is dropped)", async () => {
    const c = certs();
    // Files whose content is replaced on disk, as a certificate renewal does.
    const certPath = join(c.dir, "sni-renewal.crt");
    const keyPath = join(c.dir, "sni-renewal.key");
    writeFileSync(certPath, c.other.pem);
    writeFileSync(keyPath, readFileSync(c.other.key));
    const context = new TlsContext();
    const broker = await tlsBroker({
      cert: c.server.cert,
      key: c.server.key,
      context,
      sni: () => ({ cert: certPath, key: keyPath }),
    });
    expect(peerCertificateDigest(await peek(broker.port, "x.test"))).toBe(
      c.fingerprint(c.other.cert, "sha1"),
    );
    writeFileSync(certPath, c.renewed.pem);
    writeFileSync(keyPath, readFileSync(c.renewed.key));
    // Same paths: the certificate loaded for x.test is reused...
    expect(peerCertificateDigest(await peek(broker.port, "x.test"))).toBe(
      c.fingerprint(c.other.cert, "sha1"),
    );
    // ... until the default certificate is set: then the files are read again.
    context.setCertificate(c.server.cert, c.server.key);
    expect(peerCertificateDigest(await peek(broker.port, "x.test"))).toBe(
      c.fingerprint(c.renewed.cert, "sha1"),
    );
  });

  test("the SNI cache is bounded: the least recently used name is loaded again", async () => {
    const c = certs();
    const certPath = join(c.dir, "sni-bounded.crt");
    const keyPath = join(c.dir, "sni-bounded.key");
    writeFileSync(certPath, c.other.pem);
    writeFileSync(keyPath, readFileSync(c.other.key));
    const broker = await tlsBroker({
      sniCacheSize: 1,
      sni: () => ({ cert: certPath, key: keyPath }),
    });
    const other = c.fingerprint(c.other.cert, "sha1");
    expect(peerCertificateDigest(await peek(broker.port, "a.test"))).toBe(other);
    expect(peerCertificateDigest(await peek(broker.port, "b.test"))).toBe(other);
    writeFileSync(certPath, c.renewed.pem);
    writeFileSync(keyPath, readFileSync(c.renewed.key));
    // b.test is still cached; a.test was dropped for it and is read again.
    expect(peerCertificateDigest(await peek(broker.port, "b.test"))).toBe(other);
    expect(peerCertificateDigest(await peek(broker.port, "a.test"))).toBe(
      c.fingerprint(c.renewed.cert, "sha1"),
    );
  });

  test("an unusable certificate is refused and the old one stays", async () => {
    const c = certs();
    const context = new TlsContext();
    const broker = await tlsBroker({ cert: c.server.cert, key: c.server.key, context });
    // A key that does not belong to the certificate.
    expect(() => context.setCertificate(c.renewed.cert, c.other.key)).toThrow(TlsError);
    let missing: unknown = null;
    try {
      context.setCertificate(c.renewed.cert, join(c.dir, "nope.key"));
    } catch (error) {
      missing = error;
    }
    expect((missing as TlsError).code).toBe("BAD_CERTIFICATE");
    expect((missing as TlsError).message).toContain("nope.key");
    expect(peerCertificateDigest(await peek(broker.port))).toBe(
      c.fingerprint(c.server.cert, "sha1"),
    );
    // A broker Listener is not a TLS listener: the error says what to do instead.
    expect(() => setCertificate(broker.listener as never, c.renewed.cert, c.renewed.key)).toThrow(
      /TlsContext/,
    );
  });

  test("listenTls refuses a bad certificate up front", async () => {
    const c = certs();
    const error = await rejection(
      listenTls("127.0.0.1", 0, () => {}, { cert: c.server.cert, key: c.other.key }),
    );
    expect((error as TlsError).code).toBe("BAD_CERTIFICATE");
    const missing = await rejection(
      listenTls("127.0.0.1", 0, () => {}, { cert: join(c.dir, "none.crt"), key: c.server.key }),
    );
    expect((missing as TlsError).code).toBe("BAD_CERTIFICATE");
  });

  test("without any certificate a client's handshake fails; SNI can still serve it", async () => {
    const c = certs();
    const listener = await listenTls("127.0.0.1", 0, (t) => t.destroy(), {
      sni: (name) => (name === "other.test" ? { cert: c.other.cert, key: c.other.key } : null),
    });
    onCleanup(() => listener.close());
    const error = await rejection(connectTls("127.0.0.1", listener.port, { verifyPeer: false }));
    expect((error as TlsError).code).toBe("HANDSHAKE");
    const served = await peek(listener.port, "other.test");
    expect(peerCertificateDigest(served)).toBe(c.fingerprint(c.other.cert, "sha1"));
  });
});
