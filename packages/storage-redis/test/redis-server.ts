// Starts a real redis-server for the tests, on a free port of 127.0.0.1, and stops it.
// redis-server is a Debian package (`apt-get install redis-server`). When it is missing the tests
// are skipped with the reason, unless MYQTT_REQUIRE_SERVICES=1 (CI), where they fail.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

const CANDIDATES = ["redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server"];
const INSTALL_HINT = "install it with `apt-get install redis-server`";

/** The redis-server binary (MYQTT_REDIS_SERVER when set, else searched), or null. */
export function findRedisServer(): string | null {
  const chosen = process.env.MYQTT_REDIS_SERVER;
  for (const bin of chosen ? [chosen] : CANDIDATES) {
    const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
    if (!r.error && /Redis server/i.test(r.stdout)) return bin;
  }
  return null;
}

/**
 * Why the Redis tests cannot run here (null when they can). Throws instead when services are
 * required, so CI fails rather than passing on skipped tests.
 */
export function redisUnavailable(): string | null {
  if (findRedisServer() !== null) return null;
  const where = process.env.MYQTT_REDIS_SERVER || "PATH, /usr/bin, /usr/sbin";
  const reason = `redis-server not found (${where}): ${INSTALL_HINT}`;
  if (process.env.MYQTT_REQUIRE_SERVICES === "1") {
    throw new Error(`MYQTT_REQUIRE_SERVICES=1 but ${reason}`);
  }
  return reason;
}

/** A free TCP port on 127.0.0.1 (free when asked: another process may take it first). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RunningRedis {
  readonly port: number;
  readonly url: string;
  readonly process: ChildProcess;
  /** SIGTERM, then waits for the exit (SIGKILL after 5 s). Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts redis-server on a free port; resolves once it answers PING. */
export async function startRedis(): Promise<RunningRedis> {
  const bin = findRedisServer();
  if (bin === null) throw new Error(`this test needs redis-server: ${INSTALL_HINT}`);
  // The free port can be taken before redis-server binds it: try a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(bin, await freePort());
    } catch (error) {
      if (attempt === 5) throw error;
    }
  }
}

async function startOn(bin: string, port: number): Promise<RunningRedis> {
  const dir = mkdtempSync(join(tmpdir(), "myqtt-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const child = spawn(bin, [...args, "--dir", dir], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (d: Buffer): void => {
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPing(port, () => exited);
  } catch (error) {
    await stop();
    throw new Error(`redis-server did not start on port ${port}: ${String(error)}\n${output}`);
  }
  return { port, url: `redis://127.0.0.1:${port}`, process: child, stop };
}

/** Polls PING, 100 tries 50 ms apart (about 5 s). */
async function waitForPing(port: number, exited: () => boolean): Promise<void> {
  let lastError: unknown = null;
  for (let attempt = 0; attempt < 100; attempt++) {
    if (exited()) throw new Error("redis-server exited");
    const probe = new Redis({
      host: "127.0.0.1",
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 1000,
    });
    probe.on("error", () => {});
    try {
      await probe.connect();
      if ((await probe.ping()) === "PONG") return;
    } catch (error) {
      lastError = error;
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw lastError ?? new Error("no PONG");
}
