// CI's run of the MyQtt regression suites: the regression listener as a child process on free
// ports, then the whole regression client against it; every test must pass.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const here = dirname(fileURLToPath(import.meta.url));
const LISTENER = join(here, "../../regression-listener/dist/cli.js");
const CLIENT = join(here, "../dist/cli.js");

let listener: ChildProcess | null = null;
let work = "";
const ports: Record<string, number> = {};

beforeAll(async () => {
  // The suites write their storage directories into the working directory: a fresh one.
  work = mkdtempSync(join(tmpdir(), "myqtt-regression-"));
  const child = spawn(
    process.execPath,
    [LISTENER, "--port", "0", "--tls-port", "0", "--mtls-port", "0", "--ws-port", "0"].concat([
      "--wss-port",
      "0",
      "--certs",
      "certs",
      "--log-level",
      "quiet",
    ]),
    { cwd: work, stdio: ["ignore", "pipe", "pipe"] },
  );
  listener = child;
  let out = "";
  child.stdout!.on("data", (d) => {
    out += d;
  });
  child.stderr!.on("data", (d) => {
    out += d;
  });
  for (let i = 0; i < 600 && !/ready/.test(out); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const m of out.matchAll(/regression-listener: (\w+) listening on \w+:\/\/[^:]+:(\d+)/g))
    ports[m[1]!] = Number(m[2]);
  if (!/ready/.test(out)) throw new Error(`the regression listener did not start:\n${out}`);
}, 60_000);

afterAll(() => {
  listener?.kill("SIGKILL");
  if (work !== "") rmSync(work, { recursive: true, force: true });
});

describe("the MyQtt regression suites against the regression listener", () => {
  it("pass, every test", () => {
    const r = spawnSync(
      process.execPath,
      [CLIENT, "--host", "localhost", "--port", String(ports.plain)]
        .concat(["--tls-port", String(ports.tls), "--mtls-port", String(ports.mtls)])
        .concat(["--ws-port", String(ports.ws), "--wss-port", String(ports.wss)])
        .concat(["--certs", "certs"]),
      { cwd: work, encoding: "utf8", timeout: 240_000 },
    );
    const lines = r.stdout.trim().split("\n");
    const failed = lines.filter((l) => /: FAILED/.test(l));
    expect(failed, r.stdout + r.stderr).toEqual([]);
    expect(lines.at(-1)).toMatch(/^\d+ passed, 0 failed$/);
    expect(r.status).toBe(0);
  }, 300_000);
});
