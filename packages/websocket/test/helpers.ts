// Shared by the integration tests: our broker behind a WebSocket listener, MQTT.js and raw ws
// clients, certificates made with openssl, cleanup after each test.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrokerOptions, createListener, type Listener } from "@myqtt/broker";
import { Decoder, encode, type Packet, type ProtocolVersion } from "@myqtt/codec";
import { ConnackCode, Ctx, LogLevel, type ServerConnection } from "@myqtt/core";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import WebSocket from "ws";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import { type WebSocketListenOptions, webSocketListener } from "../src/index.js";

export { onCleanup } from "../../../tooling/testing/cleanup.mjs";
export { sleep, until } from "../../../tooling/testing/wait.mjs";

export interface WsBroker {
  ctx: Ctx;
  listener: Listener;
  port: number;
  /** ws://127.0.0.1:PORT (no path). */
  base: string;
  /** Connections the connect hook saw, in order. */
  conns: ServerConnection[];
  /** Log lines, "level file message". */
  logs: string[];
}

/**
 * Our broker in a fresh context behind a WebSocket listener on 127.0.0.1 (a free port unless
 * `port` is given); the connect hook records each connection. Stopped after the test.
 */
export async function startWsBroker(
  transportOptions: WebSocketListenOptions = {},
  options: BrokerOptions & { port?: number } = {},
  setup?: (ctx: Ctx) => void,
): Promise<WsBroker> {
  const { port = 0, ...brokerOptions } = options;
  const ctx = new Ctx();
  await ctx.init();
  const logs: string[] = [];
  ctx.setLogHandler((_c, file, _line, level, message) => {
    const tag =
      level === LogLevel.CRITICAL ? "critical" : level === LogLevel.WARNING ? "warning" : "debug";
    logs.push(`${tag} ${file} ${message}`);
  });
  const conns: ServerConnection[] = [];
  ctx.setOnConnect((_ctx, conn) => {
    conns.push(conn);
    return ConnackCode.ACCEPTED;
  });
  setup?.(ctx);
  const listener = await createListener(ctx, "127.0.0.1", port, {
    ...webSocketListener(transportOptions),
    ...brokerOptions,
  });
  if (!listener.isOk()) throw new Error(`broker did not start: ${listener.errorMsg}`);
  onCleanup(() => ctx.exit());
  const scheme = transportOptions.tls !== undefined ? "wss" : "ws";
  return {
    ctx,
    listener,
    port: listener.port,
    base: `${scheme}://127.0.0.1:${listener.port}`,
    conns,
    logs,
  };
}

/** An MQTT.js client over WebSocket, ended after the test. */
export async function mqttjs(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  onCleanup(() => c.endAsync(true));
  return c;
}

/** Waits for the next message of an MQTT.js client on `topic` (bounded). */
export function nextMessage(
  c: MqttClient,
  topic: string,
  ms = 5000,
): Promise<{ payload: Buffer; qos: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      c.off("message", on);
      reject(new Error(`no message on ${topic} within ${ms} ms`));
    }, ms);
    const on = (t: string, payload: Buffer, packet: { qos: number }): void => {
      if (t !== topic) return;
      clearTimeout(timer);
      c.off("message", on);
      resolve({ payload, qos: packet.qos });
    };
    c.on("message", on);
  });
}

/** A raw ws client that speaks MQTT packets through the codec, for the wire-level tests. */
export interface RawWs {
  ws: WebSocket;
  /** Every decoded packet received. */
  packets: Packet[];
  /** Each message received: its size and whether it was a binary frame. */
  frames: Array<{ size: number; binary: boolean }>;
  closed: boolean;
  closeCode: number | null;
  /** Sends a packet, as one binary (default) or text message. */
  send(packet: Packet, as?: "binary" | "text"): void;
  /** Sends raw bytes in one message. */
  sendBytes(bytes: Uint8Array, as?: "binary" | "text"): void;
}

/** Opens a raw ws connection; resolves once open (rejects on a refused upgrade). */
export function rawWs(
  url: string,
  protocols: string[] = ["mqtt"],
  options: WebSocket.ClientOptions = {},
  version: ProtocolVersion = 4,
): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
    const raw: RawWs = {
      ws,
      packets: [],
      frames: [],
      closed: false,
      closeCode: null,
      send(packet, as = "binary") {
        raw.sendBytes(encode(packet, { protocolVersion: version }), as);
      },
      sendBytes(bytes, as = "binary") {
        ws.send(bytes, { binary: as === "binary" });
      },
    };
    const decoder = new Decoder((p) => raw.packets.push(p), { protocolVersion: version });
    ws.on("message", (data, isBinary) => {
      const bytes = data as Buffer;
      raw.frames.push({ size: bytes.length, binary: isBinary });
      try {
        decoder.push(bytes);
      } catch {
        ws.terminate();
      }
    });
    ws.on("close", (code) => {
      raw.closed = true;
      raw.closeCode = code;
    });
    ws.once("open", () => {
      ws.on("error", () => {});
      resolve(raw);
    });
    ws.once("error", reject);
    onCleanup(() => ws.terminate());
  });
}

/** A certificate for localhost and 127.0.0.1 made by openssl, or the reason it cannot be. */
export interface TestCert {
  cert: Buffer;
  key: Buffer;
}

let certCache: TestCert | string | null = null;

/**
 * A self-signed certificate (RSA 2048, SHA-256, 2 days) made with the openssl CLI in a temp dir,
 * or a string saying why there is none.
 */
export function testCertificate(): TestCert | string {
  if (certCache !== null) return certCache;
  const dir = mkdtempSync(join(tmpdir(), "myqtt-ws-cert-"));
  try {
    const r = spawnSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-sha256",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-days",
        "2",
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    if (r.error !== undefined) {
      certCache = `the openssl CLI is not available (${r.error.message}); install the Debian package openssl`;
    } else if (r.status !== 0) {
      certCache = `openssl failed (${r.status}): ${r.stderr}`;
    } else {
      certCache = {
        cert: readFileSync(join(dir, "cert.pem")),
        key: readFileSync(join(dir, "key.pem")),
      };
    }
    return certCache;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** True when a missing service must fail the tests instead of skipping them (CI). */
export const servicesRequired = process.env.MYQTT_REQUIRE_SERVICES === "1";
