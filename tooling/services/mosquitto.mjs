// Starts a real Mosquitto broker for a test, on a free port of 127.0.0.1, and stops it.
// Mosquitto is a Debian package (`apt-get install mosquitto`); CI installs it. A test that needs
// it fails with a clear message when it is missing: it is never skipped silently.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CANDIDATES = ["mosquitto", "/usr/sbin/mosquitto", "/usr/bin/mosquitto"];

/** The mosquitto binary, or null. */
export function findMosquitto() {
  for (const bin of CANDIDATES) {
    const r = spawnSync(bin, ["-h"], { encoding: "utf8" });
    if (!r.error && /mosquitto version/i.test(`${r.stdout}${r.stderr}`)) return bin;
  }
  return null;
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts Mosquitto with `extraConfig` lines appended (listener on 127.0.0.1, anonymous allowed,
 * no persistence unless the config says so). Resolves once it accepts connections.
 */
export async function startMosquitto(extraConfig = []) {
  const bin = findMosquitto();
  if (bin === null) {
    throw new Error(
      "this test needs Mosquitto: install it with `apt-get install mosquitto` (CI does)",
    );
  }
  // A free port can be taken by another test process before Mosquitto binds it: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(bin, await freePort(), extraConfig);
    } catch (error) {
      if (attempt === 5) throw error;
    }
  }
}

/**
 * Starts Mosquitto on a given port (a test that kills and restarts the broker needs the same
 * port again). Throws a clear error when Mosquitto is not installed.
 */
export async function startMosquittoOn(port, extraConfig = []) {
  const bin = findMosquitto();
  if (bin === null) {
    throw new Error(
      "this test needs Mosquitto: install it with `apt-get install mosquitto` (CI does)",
    );
  }
  return startOn(bin, port, extraConfig);
}

async function startOn(bin, port, extraConfig) {
  const dir = mkdtempSync(join(tmpdir(), "mosquitto-"));
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      `persistence_location ${dir}/`,
      "log_dest none",
      ...extraConfig,
      "",
    ].join("\n"),
  );
  const child = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${stderr}`);
    const up = await new Promise((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(true)); // the port is taken: mosquitto is listening
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(false)));
    });
    if (up) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`mosquitto did not start on port ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    process: child,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((resolve) => {
          const t = setTimeout(() => {
            child.kill("SIGKILL");
            resolve();
          }, 3000);
          child.once("exit", () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
