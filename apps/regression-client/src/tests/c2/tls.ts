// test_18 (TLS), test_19 (mutual TLS), test_19a (SNI: certificate and server name per name).
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import { ask, type Ctx, connOpts, mustConnect, publish, withCtx } from "./helpers.js";

/** A certificate file of the listener's directory. */
export function certFile(env: TestEnv, name: string): string {
  return join(env.certs, name);
}

/** A TLS connection (myqtt_tls_conn_new) without checking that it worked. */
export function tlsConnect(
  ctx: Ctx,
  env: TestEnv,
  port: number,
  clientId: string | null,
  clean: boolean,
  opts: myqtt.ConnOpts,
): Promise<myqtt.Conn> {
  return myqtt.tls.createConn(ctx, env.host, port, clientId, clean, 30, opts);
}

test("c", "test_18", async (env) => {
  await withCtx(async (ctx) => {
    const opts = connOpts((o) => myqtt.tls.sslPeerVerify(o, false));
    const conn = await mustConnect(`TLS ${env.host}:${env.tlsPort}`, () =>
      tlsConnect(ctx, env, env.tlsPort, null, false, opts),
    );
    const id = await ask(conn, "myqtt/admin/get-client-identifier");
    check(id.content.length > 0, "the listener reported an empty client identifier");
    await publish(conn, "this/is/a/test/18/tls", "Test message 1", myqtt.qos2, true);
    await publish(conn, "this/is/a/test/18/tls", "Test message 2", myqtt.qos2, true);
    check(conn.isOk(), "the connection broke after publishing");
    check(myqtt.tls.isOn(conn), "TLS is not on");
    await conn.close();
  });
});

/**
 * test_19, the C version: step 1 keeps verification of the server on (MyQtt's default) and
 * gives client.pem/client.key with root.pem as CA; the server name test19.skipsni.localhost
 * only makes the listener's SNI handlers keep the default certificate. Steps 2 and 3 must fail:
 * no client certificate, and one that root.pem did not sign.
 */
export async function mutualTls(env: TestEnv, verifyStep1: boolean): Promise<void> {
  await withCtx(async (ctx) => {
    const step1 = connOpts((o) => {
      if (!verifyStep1) myqtt.tls.sslPeerVerify(o, false);
      myqtt.tls.setSslCerts(
        o,
        certFile(env, "client.pem"),
        certFile(env, "client.key"),
        null,
        certFile(env, "root.pem"),
      );
      myqtt.tls.setServerName(o, "test19.skipsni.localhost");
    });
    const conn = await mustConnect(`step 1, mutual TLS ${env.host}:${env.mtlsPort}`, () =>
      tlsConnect(ctx, env, env.mtlsPort, null, false, step1),
    );
    await publish(conn, "this/is/a/test/19", "Test message 1", myqtt.qos2, true);
    await publish(conn, "this/is/a/test/19", "Test message 2", myqtt.qos2, true);
    check(conn.isOk(), "step 1: the connection broke after publishing");
    check(myqtt.tls.isOn(conn), "step 1: TLS is not on");
    await conn.close();

    const step2 = connOpts((o) => myqtt.tls.sslPeerVerify(o, false));
    const noCert = await tlsConnect(ctx, env, env.mtlsPort, null, false, step2);
    check(!noCert.isOk(), "step 2: connected to the mutual TLS port without a certificate");
    env.log(`step 2 failed as expected: ${noCert.errorMsg}`);

    const step3 = connOpts((o) =>
      myqtt.tls.setSslCerts(
        o,
        certFile(env, "test-certificate.crt"),
        certFile(env, "test-private.key"),
        null,
        certFile(env, "root.pem"),
      ),
    );
    const wrongCert = await tlsConnect(ctx, env, env.mtlsPort, null, false, step3);
    check(!wrongCert.isOk(), "step 3: connected with a certificate root.pem did not sign");
    env.log(`step 3 failed as expected: ${wrongCert.errorMsg}`);
  });
}

test("c", "test_19", (env) => mutualTls(env, true));

/** The SHA-1 fingerprint of a PEM certificate file, as MyQtt prints it ("5B:94:..."). */
function fingerprint(path: string): string {
  return new X509Certificate(readFileSync(path)).fingerprint;
}

/**
 * test_19a. The C test compares with the SHA-1 fingerprints of MyQtt's own (expired, SHA-1)
 * certificates; the listener's certificates are made anew (§5.6.1), so the expected
 * fingerprints are computed from its localhost-server.crt and test19a-localhost-server.crt.
 */
test("c", "test_19a", async (env) => {
  await withCtx(async (ctx) => {
    const expectedDefault = fingerprint(certFile(env, "localhost-server.crt"));
    const expected19a = fingerprint(certFile(env, "test19a-localhost-server.crt"));
    check(expectedDefault !== expected19a, "the two SNI certificates are the same");

    // The C test connects to "localhost", so "localhost" is the SNI name: say it explicitly
    // when --host is an address (no SNI is sent for an address).
    const opts = connOpts((o) => {
      myqtt.tls.sslPeerVerify(o, false);
      if (isIP(env.host) !== 0) myqtt.tls.setServerName(o, "localhost");
    });
    const conn = await mustConnect(`TLS ${env.host}:${env.tlsPort}`, () =>
      tlsConnect(ctx, env, env.tlsPort, null, false, opts),
    );
    equal(myqtt.tls.peerCertificateDigest(conn, "sha1"), expectedDefault, "SHA-1 for localhost");
    check(myqtt.tls.isOn(conn), "TLS is not on");
    equal((await ask(conn, "myqtt/admin/get-server-name")).content, "localhost", "server name");

    const opts2 = connOpts((o) => {
      myqtt.tls.sslPeerVerify(o, false);
      myqtt.tls.setServerName(o, "test19a.localhost");
    });
    const conn2 = await mustConnect(`TLS ${env.host}:${env.tlsPort} as test19a.localhost`, () =>
      tlsConnect(ctx, env, env.tlsPort, null, false, opts2),
    );
    equal(
      myqtt.tls.peerCertificateDigest(conn2, "sha1"),
      expected19a,
      "SHA-1 for test19a.localhost",
    );
    check(conn2.isOk(), "the test19a.localhost connection broke");
    check(myqtt.tls.isOn(conn2), "TLS is not on (test19a.localhost)");
    equal(
      (await ask(conn2, "myqtt/admin/get-server-name")).content,
      "test19a.localhost",
      "server name (test19a.localhost)",
    );
    await Promise.all([conn.close(), conn2.close()]);
  });
});
