// Runs the openssl command line tool, which makes the regression certificates.
import { execFile } from "node:child_process";

/** openssl is not installed (or not on PATH). */
export class OpensslMissingError extends Error {
  override name = "OpensslMissingError";
}

/** Runs `openssl ...args` in `cwd`; rejects with openssl's own message when it fails. */
export function openssl(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("openssl", args, { cwd, timeout: 60_000 }, (error, _stdout, stderr) => {
      if (error === null) {
        resolve();
        return;
      }
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new OpensslMissingError("openssl was not found on PATH"));
        return;
      }
      const detail = String(stderr).trim() || error.message;
      reject(new Error(`openssl ${args[0] ?? ""} failed: ${detail}`));
    });
  });
}
