// wss: the listener on https with a self-signed certificate made by openssl at test time, MQTT.js
// and our client over it, what the transports know of TLS, and certificates that fail.
import { X509Certificate } from "node:crypto";
import { connect } from "@myqtt/client";
import { describe, expect, it, type TestContext } from "vitest";
import { connectWebSocket, useWebSocket, type WebSocketTransport } from "../src/index.js";
import {
  mqttjs,
  nextMessage,
  onCleanup,
  servicesRequired,
  startWsBroker,
  type TestCert,
  testCertificate,
  until,
} from "./helpers.js";

/** The certificate, or the test is skipped with the reason (failed where services are required). */
function certOr(t: TestContext): TestCert {
  const cert = testCertificate();
  if (typeof cert === "string") {
    if (servicesRequired) throw new Error(`MYQTT_REQUIRE_SERVICES=1 and ${cert}`);
    t.skip(cert);
    throw new Error("unreachable");
  }
  return cert;
}

const der = (pem: Buffer): Buffer => Buffer.from(new X509Certificate(pem).raw);

describe("wss", () => {
  it("MQTT.js over wss (trusting the certificate) publishes and receives; ServerConnection.tls is true", async (t) => {
    const { cert, key } = certOr(t);
    const b = await startWsBroker({ tls: { cert, key } });
    expect(b.base).toMatch(/^wss:/);
    expect(b.logs.some((l) => l.includes(`listening on wss://127.0.0.1:${b.port}`))).toBe(true);
    const c = await mqttjs(`${b.base}/mqtt`, {
      ca: cert,
      rejectUnauthorized: true,
      clientId: "js-wss",
    });
    await c.subscribeAsync("wss/#", { qos: 1 });
    const got = nextMessage(c, "wss/1");
    await c.publishAsync("wss/1", "encrypted", { qos: 1 });
    expect((await got).payload.toString()).toBe("encrypted");
    expect(b.conns[0]?.tls).toBe(true);
    expect(b.conns[0]?.serverName).toBe("127.0.0.1");
    // Not trusting it fails.
    await expect(
      mqttjs(`${b.base}/mqtt`, { rejectUnauthorized: true, clientId: "js-untrusting" }),
    ).rejects.toThrow(/self[- ]signed/i);
  });

  it("our client over wss: TLS details on both sides, verification on by default", async (t) => {
    const { cert, key } = certOr(t);
    const b = await startWsBroker({ tls: { cert, key } });
    const c = await connect(
      useWebSocket(
        { host: "localhost", port: b.port, clientId: "ours-wss", reconnect: false },
        { tls: { ca: cert }, connectTimeoutMs: 5000 },
      ),
    );
    onCleanup(() => c.destroy());
    const subscription = await c.subscribe("wss/#", { qos: 2 });
    await c.publish("wss/ours", "over wss", { qos: 2 });
    const r = await subscription.next();
    expect(!r.done && r.value.content).toBe("over wss");

    const client = c.transport as WebSocketTransport;
    expect(client.tls).toBe(true);
    const peer = client.tlsPeer();
    expect(peer?.authorized).toBe(true);
    expect(peer?.authorizationError).toBeNull();
    expect(Buffer.from(peer!.certificate!)).toEqual(der(cert));
    expect(peer?.protocol).toMatch(/^TLSv1\.[23]$/);

    expect(b.conns[0]?.tls).toBe(true);
    expect(b.conns[0]?.serverName).toBe("localhost");
    const server = (b.conns[0] as unknown as { transport: WebSocketTransport }).transport;
    const serverPeer = server.tlsPeer();
    expect(serverPeer?.certificate).toBeNull(); // the client sent none
    expect(serverPeer?.protocol).toBe(peer?.protocol);

    // Verification is on unless turned off.
    await expect(connectWebSocket("127.0.0.1", b.port, { tls: true })).rejects.toThrow(
      /self[- ]signed/i,
    );
    const unverified = await connectWebSocket("127.0.0.1", b.port, {
      tls: { verifyPeer: false },
    });
    onCleanup(() => unverified.destroy());
    expect(unverified.tlsPeer?.()?.authorized).toBe(false);
    expect(unverified.tlsPeer?.()?.authorizationError).toMatch(/SELF_SIGNED/);
    // The name must match unless told which one to expect.
    await expect(
      connectWebSocket("127.0.0.1", b.port, { tls: { ca: cert, serverName: "other.example" } }),
    ).rejects.toThrow(/other\.example|altnames/i);
  });

  it("mutual TLS: a client certificate is required and seen by the server", async (t) => {
    const { cert, key } = certOr(t);
    const b = await startWsBroker({ tls: { cert, key, ca: cert, requestCert: true } });
    const transport = await connectWebSocket("localhost", b.port, {
      tls: { ca: cert, cert, key },
      connectTimeoutMs: 5000,
    });
    onCleanup(() => transport.destroy());
    transport.start({ onData() {}, onDrain() {}, onClose() {} });
    const { encode, PacketType } = await import("@myqtt/codec");
    transport.write(
      encode(
        {
          type: PacketType.CONNECT,
          protocolVersion: 4,
          clean: true,
          keepAlive: 0,
          clientId: "mtls",
        },
        { protocolVersion: 4 },
      ),
    );
    await until(() => b.conns.length === 1, 3000, "the CONNECT");
    const server = (b.conns[0] as unknown as { transport: WebSocketTransport }).transport;
    const peer = server.tlsPeer();
    expect(peer?.authorized).toBe(true);
    expect(Buffer.from(peer!.certificate!)).toEqual(der(cert));
    // Without a certificate the handshake fails.
    await expect(
      connectWebSocket("localhost", b.port, { tls: { ca: cert }, connectTimeoutMs: 5000 }),
    ).rejects.toThrow();
  });
});
