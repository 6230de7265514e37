// What the integration tests need from the machine: openssl makes the listener's certificates.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const hasOpenssl = !spawnSync("openssl", ["version"]).error;

// A skipped test is not a pass where the services are required.
if (!hasOpenssl && process.env.MYQTT_REQUIRE_SERVICES === "1")
  throw new Error("MYQTT_REQUIRE_SERVICES=1 but openssl is missing: apt-get install openssl");

const dirs: string[] = [];

/** A fresh temporary directory, removed by removeTempDirs(). */
export function tempDir(prefix = "regression-listener-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
