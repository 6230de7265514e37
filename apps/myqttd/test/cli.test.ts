import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_OPTIONS } from "@myqtt/broker";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type RunningRedis,
  redisUnavailable,
  startRedis,
} from "../../../tooling/services/redis.mjs";
import { FLAGS } from "../src/config.js";
import { killAllDaemons, run, sleep, startDaemon } from "./daemon.js";

const clients: MqttClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  await killAllDaemons();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "myqttd-"));
  dirs.push(dir);
  return dir;
}

/** Connects (no reconnect), with the message listener in place before any packet arrives. */
function connect(
  port: number,
  options: IClientOptions = {},
): Promise<{ client: MqttClient; sessionPresent: boolean; messages: string[] }> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
  clients.push(client);
  const messages: string[] = [];
  client.on("message", (topic, payload) => messages.push(`${topic}=${payload.toString()}`));
  return new Promise((resolve, reject) => {
    client.once("connect", (connack) =>
      resolve({ client, sessionPresent: connack.sessionPresent, messages }),
    );
    client.once("error", reject);
  });
}

async function waitFor(what: string, ok: () => boolean, withinMs = 5000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * A persistent subscriber goes away, messages are published for it, the daemon is stopped with
 * SIGTERM and started again on the same storage: the subscriber gets its session back
 * (session present, subscription kept) and the messages, and the retained message is still there.
 */
async function sessionSurvivesRestart(storage: string[]): Promise<void> {
  const first = await startDaemon(storage);
  const sub = await connect(first.port, { clientId: "keeper", clean: false, resubscribe: false });
  expect(sub.sessionPresent).toBe(false);
  await sub.client.subscribeAsync("keep/+", { qos: 1 });
  await sub.client.endAsync();

  const pub = await connect(first.port, { protocolVersion: 5 });
  for (const text of ["one", "two", "three"]) {
    await pub.client.publishAsync("keep/a", text, { qos: 1 });
  }
  await pub.client.publishAsync("keep/r", "retained", { qos: 1, retain: true });
  await pub.client.endAsync();
  first.child.kill("SIGTERM");
  expect(await first.exit).toBe(0);

  const second = await startDaemon(storage);
  const back = await connect(second.port, {
    clientId: "keeper",
    clean: false,
    resubscribe: false,
  });
  expect(back.sessionPresent).toBe(true);
  await waitFor("the queued messages", () => back.messages.length >= 4);
  expect(back.messages).toEqual(["keep/a=one", "keep/a=two", "keep/a=three", "keep/r=retained"]);
  // The subscription itself came back: a new message reaches it.
  const pub2 = await connect(second.port);
  await pub2.client.publishAsync("keep/b", "after", { qos: 1 });
  await waitFor("the new message", () => back.messages.length >= 5);
  expect(back.messages[4]).toBe("keep/b=after");
  // And the retained message is still retained.
  const fresh = await connect(second.port);
  await fresh.client.subscribeAsync("keep/r", { qos: 1 });
  await waitFor("the retained message", () => fresh.messages.length >= 1);
  expect(fresh.messages).toEqual(["keep/r=retained"]);
  await Promise.all([back.client.endAsync(), pub2.client.endAsync(), fresh.client.endAsync()]);
  second.child.kill("SIGTERM");
  expect(await second.exit).toBe(0);
}

describe("myqttd", () => {
  it("--help lists every option and exits 0", async () => {
    const r = run(["--help"]);
    expect(await r.exit).toBe(0);
    // Every flag the parser accepts.
    for (const flag of Object.keys(FLAGS)) expect(r.stdout).toMatch(new RegExp(`\\s--${flag}\\b`));
    // The config file's broker options, each with its default.
    for (const option of Object.keys(DEFAULT_OPTIONS)) expect(r.stdout).toContain(`${option} (`);
  });

  it("refuses an unknown flag with the usage and exit status 2", async () => {
    const r = run(["--bogus"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr).toMatch(/bogus/);
    expect(r.stderr).toContain("Usage: myqttd");
  });

  it("refuses a bad --durability with a clear message and exit status 2", async () => {
    const r = run(["--storage", `file:${tempDir()}`, "--durability", "sometimes"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr).toContain('--durability must be "fsync", "async" or "none", got "sometimes"');
    expect(r.stderr).toContain("Usage: myqttd");
  });

  it("refuses a bad --storage with exit status 2", async () => {
    const r = run(["--storage", "sqlite:x"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr).toMatch(/--storage must be .*"sqlite:x"/);
  });

  it("serves MQTT on the port it logs, and stops cleanly on SIGTERM and SIGINT", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const d = await startDaemon(["--storage", "memory"]);
      expect(d.stdout).toMatch(/listening on mqtt:\/\/127\.0\.0\.1:\d+ \(storage: memory\)/);
      const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.port}`, { reconnectPeriod: 0 });
      const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.port}`, {
        reconnectPeriod: 0,
        protocolVersion: 5,
      });
      const got = new Promise<string>((resolve) =>
        sub.on("message", (_t, p) => resolve(p.toString())),
      );
      await sub.subscribeAsync("daemon/test", { qos: 1 });
      await pub.publishAsync("daemon/test", "hello", { qos: 1 });
      expect(await got).toBe("hello");
      await Promise.all([sub.endAsync(), pub.endAsync()]);
      d.child.kill(signal);
      expect(await d.exit).toBe(0);
      expect(d.stdout).toContain(`${signal}, stopping`);
    }
  });

  it("logs each connection at --log-level debug, and not at info (the default)", async () => {
    for (const level of ["debug", "info"]) {
      const d = await startDaemon(["--storage", "memory", "--log-level", level]);
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.port}`, {
        reconnectPeriod: 0,
        clientId: `log-${level}`,
      });
      await c.endAsync();
      // The DISCONNECT line is the connection's last: once it is there (or could be), stop.
      const deadline = Date.now() + 3000;
      while (level === "debug" && !d.stderr.includes("DISCONNECT") && Date.now() < deadline)
        await sleep(20);
      d.child.kill("SIGTERM");
      expect(await d.exit).toBe(0);
      const accepted =
        /debug \[broker\/conn\] connection \d+ from 127\.0\.0\.1:\d+ accepted as log-/;
      if (level === "debug") expect(d.stderr).toMatch(accepted);
      else expect(d.stderr).not.toMatch(/ debug /);
    }
  });

  it("keeps its storage in ./.myqtt-storage (file, fsync) by default", async () => {
    const cwd = tempDir();
    const d = await startDaemon([], { cwd });
    expect(d.stdout).toMatch(
      /listening on mqtt:\/\/127\.0\.0\.1:\d+ \(storage: file \.\/\.myqtt-storage, fsync\)/,
    );
    const store = join(cwd, ".myqtt-storage");
    expect(existsSync(store)).toBe(true);
    expect(readFileSync(join(store, "LOCK"), "utf8").trim()).toBe(String(d.child.pid));
    d.child.kill("SIGTERM");
    expect(await d.exit).toBe(0);
    // A clean stop releases the directory.
    expect(existsSync(join(store, "LOCK"))).toBe(false);
  });

  it("keeps sessions in file storage across a restart (SIGTERM)", async () => {
    const dir = join(tempDir(), "store");
    await sessionSurvivesRestart(["--storage", `file:${dir}`, "--durability", "fsync"]);
    expect(existsSync(dir)).toBe(true);
  });

  it("refuses a second daemon on a storage directory in use (exit 1)", async () => {
    const dir = join(tempDir(), "store");
    const first = await startDaemon(["--storage", `file:${dir}`]);
    const second = run(["--host", "127.0.0.1", "--port", "0", "--storage", `file:${dir}`]);
    expect(await second.exit).toBe(1);
    expect(second.stderr).toMatch(/in use/);
    expect(second.stderr).toContain(dir);
    expect(second.stderr).toContain(String(first.child.pid));
    // The first one is untouched and still serves.
    const c = await connect(first.port);
    await c.client.endAsync();
    expect(readFileSync(join(dir, "LOCK"), "utf8").trim()).toBe(String(first.child.pid));
    first.child.kill("SIGTERM");
    expect(await first.exit).toBe(0);
  });

  it("applies broker options from --config (duplicate client ids rejected)", async () => {
    const dir = tempDir();
    const file = join(dir, "config.json");
    writeFileSync(
      file,
      JSON.stringify({
        logLevel: "quiet",
        storage: "memory",
        broker: { duplicateClientId: "reject" },
      }),
    );
    const d = await startDaemon(["--config", file, "--log-level", "info"]);
    expect(d.stdout).toContain("(storage: memory)");
    const first = await mqtt.connectAsync(`mqtt://127.0.0.1:${d.port}`, {
      clientId: "same",
      reconnectPeriod: 0,
    });
    await expect(
      mqtt.connectAsync(`mqtt://127.0.0.1:${d.port}`, { clientId: "same", reconnectPeriod: 0 }),
    ).rejects.toThrow(/Identifier rejected/i);
    expect(first.connected).toBe(true);
    await first.endAsync();
  });

  it("reports a bad config file and a bad broker option with exit status 2 or 1", async () => {
    const dir = tempDir();
    const unknownKey = join(dir, "a.json");
    writeFileSync(unknownKey, JSON.stringify({ colour: "blue" }));
    const a = run(["--config", unknownKey]);
    expect(await a.exit).toBe(2);
    expect(a.stderr).toMatch(/unknown key "colour"/);
    const badOption = join(dir, "b.json");
    writeFileSync(badOption, JSON.stringify({ broker: { maxInflight: 0 } }));
    const b = run([
      "--config",
      badOption,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--storage",
      "memory",
    ]);
    expect(await b.exit).toBe(1);
    expect(b.stderr).toMatch(/maxInflight/);
  });

  it("exits 1 with the reason when the port is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    const r = run(["--host", "127.0.0.1", "--port", String(port), "--storage", "memory"]);
    expect(await r.exit).toBe(1);
    expect(r.stderr).toMatch(/EADDRINUSE/);
    blocker.close();
  });
});

const noRedis = redisUnavailable();

describe.skipIf(noRedis !== null)(
  `myqttd with Redis storage${noRedis ? ` (${noRedis})` : ""}`,
  () => {
    let redis: RunningRedis | null = null;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it("keeps sessions in Redis across a restart (SIGTERM)", async () => {
      const d = await startDaemon(["--storage", redis!.url]);
      expect(d.stdout).toContain(`(storage: redis ${redis!.url})`);
      d.child.kill("SIGTERM");
      expect(await d.exit).toBe(0);
      await sessionSurvivesRestart(["--storage", redis!.url]);
    });

    it("exits 1 with the reason when the Redis server cannot be reached", async () => {
      const r = run(["--host", "127.0.0.1", "--port", "0", "--storage", "redis://127.0.0.1:1"]);
      expect(await r.exit).toBe(1);
      expect(r.stderr).toMatch(/redis/i);
    });
  },
);
