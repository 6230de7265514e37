// Our TLS connector against a real Mosquitto TLS listener (a third-party OpenSSL server).
import { connect as netConnect } from "node:net";
import { describe, expect, test } from "vitest";
import {
  freePort,
  type RunningMosquitto,
  startMosquitto,
} from "../../../tooling/services/mosquitto.mjs";
import { peerCertificateDigest, tlsPeerOf, verifyCert } from "../src/index.js";
import {
  certs,
  onCleanup,
  rejection,
  roundTrip,
  skipReason,
  sleep,
  tlsClient,
  tlsErrorIn,
} from "./helpers.js";

/** Resolves once something accepts TCP connections on 127.0.0.1:`port` (5 s at most). */
async function accepting(port: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host: "127.0.0.1", port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await sleep(20);
  }
}

/** Mosquitto with a TLS listener (and its plain one); `extra` lines go to the TLS listener. */
async function mosquittoTls(extra: string[] = []): Promise<{ m: RunningMosquitto; port: number }> {
  const c = certs();
  // A free port can be taken before Mosquitto binds it: try again.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const m = await startMosquitto([
        `listener ${port} 127.0.0.1`,
        `cafile ${c.ca.cert}`,
        `certfile ${c.server.cert}`,
        `keyfile ${c.server.key}`,
        ...extra,
      ]);
      onCleanup(() => m.stop());
      await accepting(port);
      return { m, port };
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

describe.skipIf(skipReason !== null)("our client against Mosquitto over TLS", () => {
  test("verified connection, QoS 1 round trip, the certificate Mosquitto serves", async () => {
    const c = certs();
    const { port } = await mosquittoTls();
    const sub = await tlsClient(port, { serverName: "localhost" }, { clientId: "tls-sub" });
    const pub = await tlsClient(port, {}, { clientId: "tls-pub" });
    expect(verifyCert(sub)).toBe(true);
    expect(tlsPeerOf(pub)?.authorized).toBe(true);
    expect(peerCertificateDigest(sub, "sha256")).toBe(c.fingerprint(c.server.cert, "sha256"));
    expect(await roundTrip(sub, pub, "tls/mosquitto", "through mosquitto")).toBe(
      "through mosquitto",
    );
  });

  test("an untrusting client is refused with UNTRUSTED", async () => {
    const c = certs();
    const { port } = await mosquittoTls();
    const error = await rejection(tlsClient(port, { ca: c.selfSigned.cert }));
    expect(tlsErrorIn(error)?.code).toBe("UNTRUSTED");
  });

  test("require_certificate: with the client certificate in, without it out", async () => {
    const c = certs();
    const { port } = await mosquittoTls(["require_certificate true"]);
    const client = await tlsClient(port, { cert: c.client.cert, key: c.client.key });
    expect(client.connected).toBe(true);
    const error = await rejection(tlsClient(port, {}));
    // TLS 1.3: Mosquitto's "certificate required" alert arrives after the client's handshake,
    // so the connect fails before CONNACK. Usually the alert is read (a TlsError NO_CLIENT_CERT
    // as the cause); on a loaded machine Mosquitto's close can win the race and the alert is
    // lost with the connection. Either way the client without a certificate is out.
    expect(error).toBeInstanceOf(Error);
    const tlsError = tlsErrorIn(error);
    if (tlsError !== null) expect(tlsError.code).toBe("NO_CLIENT_CERT");
    else
      expect(String((error as Error).message)).toMatch(/before CONNACK|closed|reset|ECONNRESET/i);
  });
});
