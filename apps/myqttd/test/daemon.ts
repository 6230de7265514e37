// Runs the built daemon (dist/cli.js) as a child process for the tests, and kills what it started.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep } from "../../../tooling/testing/wait.mjs";

export const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli.js");

const LISTENING = /listening on mqtt:\/\/[\d.]+:(\d+)/;

/** Every daemon started and not yet known to have exited. */
const running = new Set<ChildProcess>();

/** SIGKILLs every daemon still running and waits (up to 5 s) for them to be gone. */
export async function killAllDaemons(): Promise<void> {
  const waits = [...running].map((child) => {
    const gone = exited(child);
    child.kill("SIGKILL");
    return gone;
  });
  running.clear();
  await Promise.race([Promise.all(waits), sleep(5000)]);
}

export interface Run {
  child: ChildProcess;
  /** Everything written so far: it keeps growing while the daemon runs. */
  stdout: string;
  stderr: string;
  /** The exit status (null when killed by a signal). */
  exit: Promise<number | null>;
}

export { sleep };

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

export interface RunOptions {
  cwd?: string;
  /** Flags for node itself, before the script. */
  nodeArgs?: string[];
  /** Variables added to the daemon's environment. */
  env?: Record<string, string>;
}

/** Starts `node [nodeArgs] dist/cli.js ...args` with stdout and stderr collected. */
export function run(args: string[], options: RunOptions = {}): Run {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }),
  });
  running.add(child);
  const result: Run = {
    child,
    stdout: "",
    stderr: "",
    // "exit" is emitted once the process is reaped: its pid is then free (the file storage's
    // LOCK of a killed daemon counts as stale only after that).
    exit: new Promise((resolve) =>
      child.once("exit", (code) => {
        running.delete(child);
        resolve(code);
      }),
    ),
  };
  child.stdout!.on("data", (d) => {
    result.stdout += d;
  });
  child.stderr!.on("data", (d) => {
    result.stderr += d;
  });
  return result;
}

export type Daemon = Run & { port: number };

/**
 * Starts the daemon on 127.0.0.1 (port 0 unless `--port` is in `args`) and waits (10 s at most)
 * for its "listening on" line.
 */
export async function startDaemon(args: string[], options: RunOptions = {}): Promise<Daemon> {
  const withPort = args.includes("--port") ? args : ["--port", "0", ...args];
  const r = run(["--host", "127.0.0.1", ...withPort], options);
  const deadline = Date.now() + 10_000;
  let exitCode: number | null | undefined;
  void r.exit.then((code) => {
    exitCode = code;
  });
  while (!LISTENING.test(r.stdout)) {
    if (exitCode !== undefined) {
      throw new DaemonExited(
        exitCode,
        `daemon exited (${exitCode}) before listening: ${r.stderr.trim()}`,
      );
    }
    if (Date.now() > deadline) {
      r.child.kill("SIGKILL");
      throw new Error(`daemon did not start within 10 s: ${r.stderr.trim()}`);
    }
    await sleep(10);
  }
  const port = Number(LISTENING.exec(r.stdout)![1]);
  // The same object, so stdout and stderr keep growing as the daemon writes.
  return Object.assign(r, { port });
}

export class DaemonExited extends Error {
  override name = "DaemonExited";
  constructor(
    readonly code: number | null,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts the daemon on a given port, retrying for a while (`withinMs`) when the port is still
 * taken (EADDRINUSE) right after a previous daemon on it was killed.
 */
export async function startDaemonOnPort(
  port: number,
  args: string[],
  withinMs = 5000,
): Promise<Daemon> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await startDaemon(["--port", String(port), ...args]);
    } catch (error) {
      const busy = error instanceof DaemonExited && /EADDRINUSE/.test(error.message);
      if (!busy || Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

/** SIGKILLs the daemon and waits until it is reaped. */
export async function kill9(d: Run): Promise<void> {
  d.child.kill("SIGKILL");
  await d.exit;
}
