// TLS (1910: default certificate and SNI handlers), mutual TLS (1911), WebSocket (1918) and
// secure WebSocket (1919), as test_18, 19, 19a, 20 and 20b use them (reference §5.1, §5.2).
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { type ConnectionOptions, connect as tlsConnect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hasOpenssl, removeTempDirs, tempDir } from "./env.js";
import { killAllListeners, type Listener, startListener } from "./listener.js";
import { ask, closeAllClients, connect, refusal, waitFor } from "./mqtt.js";

/** server.pem names localhost; test_19 connects with another SNI name, the chain is checked. */
const skipNameCheck: Pick<ConnectionOptions, "checkServerIdentity"> = {
  checkServerIdentity: () => undefined,
};

/** The SHA-256 fingerprint the server shows for `servername` (none: no SNI). */
function peerFingerprint(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port,
      rejectUnauthorized: false,
      ...(servername === undefined ? {} : { servername }),
    });
    socket.setTimeout(5000, () => socket.destroy(new Error("TLS handshake timed out")));
    socket.once("secureConnect", () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

describe.skipIf(!hasOpenssl)("TLS, mutual TLS, WebSocket and secure WebSocket listeners", () => {
  let certs = "";
  let l: Listener;
  const file = (name: string): Buffer => readFileSync(`${certs}/${name}`);
  const fingerprint = (name: string): string => new X509Certificate(file(name)).fingerprint256;
  beforeAll(async () => {
    certs = tempDir();
    l = await startListener(certs, tempDir());
  });
  afterEach(closeAllClients);
  afterAll(async () => {
    await killAllListeners();
    removeTempDirs();
  });

  it("serves test-certificate.crt on 1910 without SNI or with an unknown name", async () => {
    expect(await peerFingerprint(l.ports.tls)).toBe(fingerprint("test-certificate.crt"));
    expect(await peerFingerprint(l.ports.tls, "other.localhost")).toBe(
      fingerprint("test-certificate.crt"),
    );
  });

  it("serves the SNI certificates for localhost and test19a.localhost (test_19a)", async () => {
    expect(await peerFingerprint(l.ports.tls, "localhost")).toBe(
      fingerprint("localhost-server.crt"),
    );
    expect(await peerFingerprint(l.ports.tls, "test19a.localhost")).toBe(
      fingerprint("test19a-localhost-server.crt"),
    );
    // Six certificates, six different fingerprints.
    const names = ["root.pem", "server.pem", "client.pem", "test-certificate.crt"];
    names.push("localhost-server.crt", "test19a-localhost-server.crt");
    expect(new Set(names.map(fingerprint)).size).toBe(6);
  });

  it("echoes the SNI name with get-server-name and says TLS is on", async () => {
    const url = `mqtts://127.0.0.1:${l.ports.tls}`;
    for (const [servername, expected] of [
      ["test19a.localhost", "test19a.localhost"],
      ["localhost", "localhost"],
    ] as const) {
      const c = await connect(url, {
        clientId: `sni-${servername}`,
        servername,
        rejectUnauthorized: false,
      });
      expect((await ask(c, "myqtt/admin/get-server-name")).payload).toBe(expected);
      expect((await ask(c, "myqtt/admin/get-tls-status")).payload).toBe("tls-on-bro!");
    }
    const bare = await connect(url, { clientId: "no-sni", rejectUnauthorized: false });
    expect((await ask(bare, "myqtt/admin/get-server-name")).payload).toBe("");
  });

  it("lets a client verify the SNI certificate against root.pem", async () => {
    const c = await connect(`mqtts://127.0.0.1:${l.ports.tls}`, {
      clientId: "verified",
      servername: "localhost",
      ca: file("root.pem"),
      rejectUnauthorized: true,
    });
    expect((await ask(c, "myqtt/admin/get-tls-status")).payload).toBe("tls-on-bro!");
  });

  it("accepts client.pem on the mutual TLS port and refuses the rest (test_19)", async () => {
    const url = `mqtts://127.0.0.1:${l.ports.mtls}`;
    const c = await connect(url, {
      clientId: "test_19",
      cert: file("client.pem"),
      key: file("client.key"),
      ca: file("root.pem"),
      servername: "test19.skipsni.localhost",
      ...skipNameCheck,
    });
    await c.client.publishAsync("this/is/a/test/19", "retained", { qos: 2, retain: true });
    expect((await ask(c, "myqtt/admin/get-tls-status")).payload).toBe("tls-on-bro!");

    expect(await refusal(url, { clientId: "no-cert", rejectUnauthorized: false })).toBeInstanceOf(
      Error,
    );
    const selfSigned = await refusal(url, {
      clientId: "self-signed",
      cert: file("test-certificate.crt"),
      key: file("test-private.key"),
      rejectUnauthorized: false,
    });
    expect(selfSigned).toBeInstanceOf(Error);
  });

  it("keeps requiring client.pem when SNI picks another certificate on the mutual TLS port", async () => {
    const url = `mqtts://127.0.0.1:${l.ports.mtls}`;
    const c = await connect(url, {
      clientId: "mtls-sni",
      cert: file("client.pem"),
      key: file("client.key"),
      ca: file("root.pem"),
      servername: "localhost",
    });
    expect((await ask(c, "myqtt/admin/get-server-name")).payload).toBe("localhost");
    const anonymous = await refusal(url, {
      clientId: "x",
      servername: "localhost",
      rejectUnauthorized: false,
    });
    expect(anonymous).toBeInstanceOf(Error);
  });

  it("serves MQTT over WebSocket on any path, without TLS (test_20)", async () => {
    for (const path of ["/mqtt", "/"]) {
      const c = await connect(`ws://127.0.0.1:${l.ports.ws}${path}`, { clientId: `ws${path}` });
      expect((await ask(c, "myqtt/admin/get-tls-status")).payload).toBe(
        "tls is not enabled brother",
      );
      expect((await ask(c, "myqtt/admin/get-server-name")).payload).toBe("127.0.0.1");
    }
  });

  it("serves MQTT over secure WebSocket with test-certificate.crt (test_20b)", async () => {
    const c = await connect(`wss://127.0.0.1:${l.ports.wss}/mqtt`, {
      clientId: "test_20b",
      rejectUnauthorized: false,
    });
    expect((await ask(c, "myqtt/admin/get-tls-status")).payload).toBe("tls-on-bro!");
    await c.client.publishAsync("this/is/a/test/19", "over wss", { qos: 2, retain: true });
    expect(await peerFingerprint(l.ports.wss)).toBe(fingerprint("test-certificate.crt"));
  });

  it("routes between transports: one broker behind the five listeners", async () => {
    const sub = await connect(`ws://127.0.0.1:${l.ports.ws}/mqtt`, { clientId: "ws-sub" });
    await sub.client.subscribeAsync("cross/#", { qos: 1 });
    const urls = [
      `mqtt://127.0.0.1:${l.ports.plain}`,
      `mqtts://127.0.0.1:${l.ports.tls}`,
      `wss://127.0.0.1:${l.ports.wss}/mqtt`,
    ];
    for (const [i, url] of urls.entries()) {
      const pub = await connect(url, { clientId: `pub${i}`, rejectUnauthorized: false });
      await pub.client.publishAsync(`cross/${i}`, url, { qos: 1 });
    }
    await waitFor("three messages", () => sub.messages.length === 3);
    expect(sub.messages.map((m) => m.payload).sort()).toEqual([...urls].sort());
  });
});
