// Starts a real redis-server (Debian `redis-server`) for tests and benchmarks, on a free port of
// 127.0.0.1, and stops it. Without the binary the callers skip, unless MYQTT_REQUIRE_SERVICES=1
// (CI), where they fail.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./mosquitto.mjs";

const CANDIDATES = ["redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server"];
const INSTALL_HINT = "install it with `apt-get install redis-server`";

/** The redis-server binary (MYQTT_REDIS_SERVER when set, else searched), or null. */
export function findRedisServer() {
  const chosen = process.env.MYQTT_REDIS_SERVER;
  for (const bin of chosen ? [chosen] : CANDIDATES) {
    const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
    if (!r.error && /Redis server/i.test(r.stdout)) return bin;
  }
  return null;
}

/** Why Redis tests cannot run here, or null; throws when MYQTT_REQUIRE_SERVICES=1. */
export function redisUnavailable() {
  if (findRedisServer() !== null) return null;
  const where = process.env.MYQTT_REDIS_SERVER || "PATH, /usr/bin, /usr/sbin";
  const reason = `redis-server not found (${where}): ${INSTALL_HINT}`;
  if (process.env.MYQTT_REQUIRE_SERVICES === "1")
    throw new Error(`MYQTT_REQUIRE_SERVICES=1 but ${reason}`);
  return reason;
}

/** Starts redis-server on a free port (retrying if the port is taken); resolves once it answers PING. */
export async function startRedis(extraArgs = []) {
  const bin = findRedisServer();
  if (bin === null) throw new Error(`this needs redis-server: ${INSTALL_HINT}`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(bin, await freePort(), extraArgs);
    } catch (error) {
      if (attempt === 5) throw error;
    }
  }
}

async function startOn(bin, port, extraArgs) {
  const dir = mkdtempSync(join(tmpdir(), "myqtt-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const child = spawn(bin, [...args, "--dir", dir, ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (d) => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  let exited = false;
  const exit = new Promise((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (exited) break;
    if (await ping(port)) return { port, url: `redis://127.0.0.1:${port}`, process: child, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`redis-server did not start on port ${port}:\n${output}`);
}

/** True when a server on `port` answers PING with PONG (raw RESP, no client library needed). */
function ping(port) {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let reply = "";
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      reply += d.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}
