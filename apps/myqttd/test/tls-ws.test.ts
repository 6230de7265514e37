// The daemon's TLS, WebSocket and secure WebSocket listeners (--tls-port, --ws-port,
// --wss-port) with a certificate made by openssl for the test: MQTT.js on each transport
// reaches subscribers on the others, since they share one broker.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { killAllDaemons, run, sleep, startDaemon } from "./daemon.js";

const hasOpenssl = !spawnSync("openssl", ["version"]).error;
if (!hasOpenssl && process.env.MYQTT_REQUIRE_SERVICES === "1")
  throw new Error("MYQTT_REQUIRE_SERVICES=1 but openssl is missing: apt-get install openssl");

const clients: MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  await killAllDaemons();
});

describe.skipIf(!hasOpenssl)("myqttd TLS and WebSocket listeners", () => {
  let dir = "";
  let cert = "";
  let key = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "myqttd-tls-"));
    cert = join(dir, "cert.pem");
    key = join(dir, "key.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert,
      ],
      { stdio: "ignore" },
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function ports(): Promise<{ mqtt: number; mqtts: number; ws: number; wss: number }> {
    const d = await startDaemon([
      "--storage",
      "memory",
      "--tls-port",
      "0",
      "--ws-port",
      "0",
      "--wss-port",
      "0",
      "--cert",
      cert,
      "--key",
      key,
    ]);
    for (let i = 0; i < 200 && !/wss:\/\/[\d.]+:\d+/.test(d.stdout); i++) await sleep(10);
    const port = (scheme: string): number =>
      Number(new RegExp(`listening on ${scheme}://[\\d.]+:(\\d+)`).exec(d.stdout)?.[1]);
    return { mqtt: d.port, mqtts: port("mqtts"), ws: port("ws"), wss: port("wss") };
  }

  function open(url: string): Promise<MqttClient> {
    const client = mqtt.connect(url, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ca: readFileSync(cert),
    });
    clients.push(client);
    return new Promise((resolve, reject) => {
      client.once("connect", () => resolve(client));
      client.once("error", reject);
    });
  }

  it("serves mqtts, ws and wss beside mqtt, all on one broker", async () => {
    const p = await ports();
    expect(p.mqtts).toBeGreaterThan(0);
    expect(p.ws).toBeGreaterThan(0);
    expect(p.wss).toBeGreaterThan(0);
    const sub = await open(`mqtt://127.0.0.1:${p.mqtt}`);
    const got: string[] = [];
    sub.on("message", (_t, payload) => got.push(payload.toString()));
    await sub.subscribeAsync("t/#", { qos: 1 });
    for (const url of [
      `mqtts://localhost:${p.mqtts}`,
      `ws://127.0.0.1:${p.ws}/mqtt`,
      `wss://localhost:${p.wss}/mqtt`,
    ]) {
      const pub = await open(url);
      await pub.publishAsync("t/x", url.split(":")[0]!, { qos: 1 });
    }
    for (let i = 0; i < 200 && got.length < 3; i++) await sleep(10);
    expect(got.sort()).toEqual(["mqtts", "ws", "wss"]);
  });

  it("refuses a TLS client that does not trust the certificate", async () => {
    const p = await ports();
    const client = mqtt.connect(`mqtts://localhost:${p.mqtts}`, {
      reconnectPeriod: 0,
      connectTimeout: 3000,
    });
    clients.push(client);
    const error = await new Promise<Error>((resolve) => client.once("error", resolve));
    expect(error.message).toMatch(/self[- ]signed|unable to verify/i);
  });

  it("refuses --tls-port without --cert and --key, and --require-client-cert without --ca", async () => {
    const a = run(["--tls-port", "0", "--storage", "memory"]);
    expect(await a.exit).toBe(2);
    expect(a.stderr).toMatch(/need --cert and --key/);
    const b = run(["--tls-port", "0", "--cert", cert, "--key", key, "--require-client-cert"]);
    expect(await b.exit).toBe(2);
    expect(b.stderr).toMatch(/--require-client-cert needs --ca/);
  });
});
