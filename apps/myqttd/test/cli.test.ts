import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli.js");
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
});

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<number | null>;
}

function run(args: string[]): Run {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const result: Run = {
    child,
    stdout: "",
    stderr: "",
    exit: new Promise((resolve) => child.on("exit", (code) => resolve(code))),
  };
  child.stdout!.on("data", (d) => {
    result.stdout += d;
  });
  child.stderr!.on("data", (d) => {
    result.stderr += d;
  });
  return result;
}

/** Starts the daemon on a free port and waits for its "listening on" line. */
async function startDaemon(extra: string[] = []): Promise<Run & { port: number }> {
  const r = run(["--host", "127.0.0.1", "--port", "0", ...extra]);
  const deadline = Date.now() + 10_000;
  while (!/listening on mqtt:\/\/[\d.]+:(\d+)/.test(r.stdout)) {
    if (Date.now() > deadline || r.child.exitCode !== null)
      throw new Error(`daemon did not start: ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 20));
  }
  const port = Number(/listening on mqtt:\/\/[\d.]+:(\d+)/.exec(r.stdout)![1]);
  // The same object, so stdout keeps growing as the daemon writes.
  return Object.assign(r, { port });
}

describe("myqttd", () => {
  it("--help lists every option and exits 0", async () => {
    const r = run(["--help"]);
    expect(await r.exit).toBe(0);
    for (const flag of ["--host", "--port", "--storage", "--config", "--log-level", "--help"]) {
      expect(r.stdout).toContain(flag);
    }
  });

  it("refuses an unknown flag with the usage and exit status 2", async () => {
    const r = run(["--bogus"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr).toMatch(/bogus/);
    expect(r.stderr).toContain("Usage: myqttd");
  });

  it("says plainly that file storage is not available yet", async () => {
    const r = run(["--storage", "file:/tmp/x"]);
    expect(await r.exit).toBe(2);
    expect(r.stderr).toMatch(/file storage is not available yet/);
  });

  it("serves MQTT on the port it logs, and stops cleanly on SIGTERM and SIGINT", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const d = await startDaemon();
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

  it("applies broker options from --config (duplicate client ids rejected)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "myqttd-"));
    const file = join(dir, "config.json");
    writeFileSync(
      file,
      JSON.stringify({ logLevel: "quiet", broker: { duplicateClientId: "reject" } }),
    );
    const r = run(["--config", file, "--host", "127.0.0.1", "--port", "0", "--log-level", "info"]);
    const deadline = Date.now() + 10_000;
    while (!/:(\d+) \(/.test(r.stdout) && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 20));
    const port = Number(/:(\d+) \(/.exec(r.stdout)![1]);
    const first = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      clientId: "same",
      reconnectPeriod: 0,
    });
    await expect(
      mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "same", reconnectPeriod: 0 }),
    ).rejects.toThrow(/Identifier rejected/i);
    expect(first.connected).toBe(true);
    await first.endAsync();
  });

  it("reports a bad config file and a bad broker option with exit status 2 or 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "myqttd-"));
    const unknownKey = join(dir, "a.json");
    writeFileSync(unknownKey, JSON.stringify({ colour: "blue" }));
    const a = run(["--config", unknownKey]);
    expect(await a.exit).toBe(2);
    expect(a.stderr).toMatch(/unknown key "colour"/);
    const badOption = join(dir, "b.json");
    writeFileSync(badOption, JSON.stringify({ broker: { maxInflight: 0 } }));
    const b = run(["--config", badOption, "--host", "127.0.0.1", "--port", "0"]);
    expect(await b.exit).toBe(1);
    expect(b.stderr).toMatch(/maxInflight/);
  });

  it("exits 1 with the reason when the port is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    const r = run(["--host", "127.0.0.1", "--port", String(port)]);
    expect(await r.exit).toBe(1);
    expect(r.stderr).toMatch(/EADDRINUSE/);
    blocker.close();
  });
});
