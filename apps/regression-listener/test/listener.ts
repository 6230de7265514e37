// Runs the built listener (dist/cli.js) as a child process on free ports of 127.0.0.1, and
// kills every one it started.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sleep } from "../../../tooling/testing/wait.mjs";

export const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli.js");

const running = new Set<ChildProcess>();

export { sleep };

export interface Run {
  child: ChildProcess;
  /** Everything written so far: it keeps growing while the listener runs. */
  stdout: string;
  stderr: string;
  /** The exit status (null when killed by a signal). */
  exit: Promise<number | null>;
}

/** Starts `node dist/cli.js ...args` with stdout and stderr collected. */
export function run(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Run {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  running.add(child);
  const result: Run = {
    child,
    stdout: "",
    stderr: "",
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

/** Ports of a running listener, by listener name. */
export interface Ports {
  plain: number;
  tls: number;
  mtls: number;
  ws: number;
  wss: number;
}

export type Listener = Run & { ports: Ports };

const LINE =
  /^regression-listener: (plain|tls|mtls|ws|wss) listening on \w+:\/\/127\.0\.0\.1:(\d+)$/gm;

/**
 * Starts the listener with every port 0 on 127.0.0.1, with `certs` and `storage` directories,
 * and waits (30 s at most: the first start makes the certificates) for its "ready" line.
 */
export async function startListener(
  certs: string,
  storage: string,
  extra: string[] = [],
): Promise<Listener> {
  const r = run([
    "--host",
    "127.0.0.1",
    ...["--port", "0", "--tls-port", "0", "--mtls-port", "0", "--ws-port", "0"],
    ...["--wss-port", "0", "--certs", certs, "--storage", storage, "--log-level", "quiet"],
    ...extra,
  ]);
  let exitCode: number | null | undefined;
  void r.exit.then((code) => {
    exitCode = code;
  });
  const deadline = Date.now() + 30_000;
  while (!/^regression-listener: ready/m.test(r.stdout)) {
    if (exitCode !== undefined)
      throw new Error(`listener exited (${exitCode}) before ready: ${r.stderr.trim()}`);
    if (Date.now() > deadline) {
      r.child.kill("SIGKILL");
      throw new Error(`listener not ready within 30 s: ${r.stderr.trim()}`);
    }
    await sleep(10);
  }
  const ports = {} as Ports;
  for (const m of r.stdout.matchAll(LINE)) ports[m[1] as keyof Ports] = Number(m[2]);
  return Object.assign(r, { ports });
}

/** SIGTERMs a listener (a clean stop) and waits for it, SIGKILL after 5 s. */
export async function stopListener(r: Run): Promise<number | null> {
  r.child.kill("SIGTERM");
  const timer = setTimeout(() => r.child.kill("SIGKILL"), 5000);
  const code = await r.exit;
  clearTimeout(timer);
  return code;
}

/** SIGKILLs every listener still running and waits (5 s at most) for them to be gone. */
export async function killAllListeners(): Promise<void> {
  const waits = [...running].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  );
  running.clear();
  await Promise.race([Promise.all(waits), sleep(5000)]);
}
