// The PyMyQtt manual's examples (examples/*.ts) run as users run them: bundled to JavaScript, each
// in its own Node.js process, the client ones against a listener example on 127.0.0.1, the listener
// ones checked with myqtt's own Conn and stopped with SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "tsup";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../../tooling/testing/wait.mjs";
import * as myqtt from "../src/index.js";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const examplesDir = join(pkg, "examples");
// Where `pnpm build:examples` puts them too (ignored by git as every dist/). Inside the package,
// so that the bundles, which leave the @myqtt/* packages external, resolve them at run time.
const outDir = join(examplesDir, "dist");
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.slice(0, -3))
  .sort();

const HOST = "127.0.0.1";
/** Longest a client example or a listener start may take. */
const RUN_TIMEOUT_MS = 15_000;

let tmp = "";
const children = new Set<ChildProcess>();

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Result>;
}

/** Starts an example (its bundle) with MYQTT_* variables; the rest of the environment is kept. */
function start(name: string, env: Record<string, string>): Running {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_OPTIONS;
  const child = spawn(process.execPath, [join(outDir, `${name}.js`)], {
    cwd: tmp,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const exited = new Promise<Result>((done) => {
    child.on("close", (code, signal) => {
      children.delete(child);
      done({ code, signal, stdout, stderr });
    });
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Waits for `promise`, killing `child` if it takes longer than `ms`. */
async function bounded<T>(child: ChildProcess, promise: Promise<T>, ms: number): Promise<T> {
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    return await promise;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a client (or a short-lived) example to its end. */
async function run(name: string, env: Record<string, string> = {}): Promise<Result> {
  const running = start(name, env);
  return bounded(running.child, running.exited, RUN_TIMEOUT_MS);
}

interface StartedListener extends Running {
  port: number;
  /** SIGTERM, then its exit. */
  stop: () => Promise<Result>;
}

/** Starts a listener example on 127.0.0.1, a free port and its own storage directory. */
async function startListener(
  name: string,
  env: Record<string, string> = {},
): Promise<StartedListener> {
  const running = start(name, {
    MYQTT_HOST: HOST,
    MYQTT_PORT: "0",
    MYQTT_STORAGE_PATH: mkdtempSync(join(tmp, `${name}-`)),
    ...env,
  });
  const port = await bounded(
    running.child,
    new Promise<number>((resolvePort, reject) => {
      const check = (): void => {
        const m = /Listener started at [^\s:]+:(\d+)/.exec(running.stdout());
        if (m) resolvePort(Number(m[1]));
      };
      running.child.stdout!.on("data", check);
      running.exited.then((r) =>
        reject(new Error(`${name} exited (${r.code}) before listening: ${r.stdout}${r.stderr}`)),
      );
    }),
    RUN_TIMEOUT_MS,
  );
  const stop = (): Promise<Result> => {
    running.child.kill("SIGTERM");
    return bounded(running.child, running.exited, RUN_TIMEOUT_MS);
  };
  return { ...running, port, stop };
}

const clientEnv = (port: number): Record<string, string> => ({
  MYQTT_HOST: HOST,
  MYQTT_PORT: String(port),
});

const contexts: myqtt.Ctx[] = [];
async function connect(port: number, opts?: myqtt.ConnOpts): Promise<myqtt.Conn> {
  const ctx = new myqtt.Ctx();
  expect(await ctx.init()).toBe(true);
  contexts.push(ctx);
  return myqtt.Conn.connect(ctx, HOST, port, null, true, 0, opts);
}

/** Messages a connection receives, as "topic: content". */
function collect(conn: myqtt.Conn): string[] {
  const seen: string[] = [];
  conn.setOnMsg((_ctx, _conn, msg) => seen.push(`${msg.topic}: ${msg.content}`));
  return seen;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "myqtt-examples-"));
  // The options of the package's build:examples script.
  await build({
    config: false,
    entry: examples.map((name) => join(examplesDir, `${name}.ts`)),
    outDir,
    format: ["esm"],
    platform: "node",
    target: "node20",
    splitting: false,
    sourcemap: false,
    dts: false,
    clean: true,
    silent: true,
    tsconfig: join(pkg, "tsconfig.json"),
    external: [/^@myqtt\//],
    // `import * as myqtt from "myqtt"` is this package: its sources, not a possibly stale dist.
    esbuildPlugins: [
      {
        name: "myqtt-from-src",
        setup(b) {
          b.onResolve({ filter: /^myqtt$/ }, () => ({ path: join(pkg, "src", "index.ts") }));
        },
      },
    ],
  });
}, 30_000);

afterEach(async () => {
  for (const ctx of contexts.splice(0)) await ctx.exit();
});

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the manual's examples", () => {
  it("has one example per manual section", () => {
    expect(examples).toEqual([
      "client-1-create-ctx",
      "client-2-connect",
      "client-3-subscribe",
      "client-4-publish",
      "client-5-receive",
      "listener-1-create-ctx",
      "listener-2-start",
      "listener-3-wait",
      "listener-on-connect",
      "listener-on-publish",
    ]);
  });

  it.each(["client-1-create-ctx", "listener-1-create-ctx"])(
    "%s creates a context",
    async (name) => {
      const r = await run(name);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("ctx created\n");
    },
  );

  it("listener-2-start starts a listener with its storage, then stops", async () => {
    const storage = join(tmp, "listener-2-storage");
    const r = await run("listener-2-start", {
      MYQTT_HOST: HOST,
      MYQTT_PORT: "0",
      MYQTT_STORAGE_PATH: storage,
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Starting listener at 127\.0\.0\.1:0\n/);
    expect(r.stdout).toMatch(/Listener started at 127\.0\.0\.1:\d+\nListener stopped\n$/);
    expect(existsSync(storage)).toBe(true);
  });

  it("client-2-connect exits non-zero when nothing listens", async () => {
    const port = await new Promise<number>((done) => {
      const server = createServer().listen(0, HOST, () => {
        const { port } = server.address() as { port: number };
        server.close(() => done(port));
      });
    });
    const r = await run("client-2-connect", clientEnv(port));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`ERROR: Failed to create connection with '${HOST}':${port}`);
  });

  it("listener-2-start exits non-zero when the port is taken", async () => {
    const listener = await startListener("listener-3-wait");
    try {
      const r = await run("listener-2-start", {
        MYQTT_HOST: HOST,
        MYQTT_PORT: String(listener.port),
        MYQTT_STORAGE_PATH: join(tmp, "taken-storage"),
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("ERROR: failed to start listener");
    } finally {
      expect((await listener.stop()).code).toBe(0);
    }
  });
});

describe("the client examples against listener-3-wait", () => {
  let listener: StartedListener;
  beforeAll(async () => {
    listener = await startListener("listener-3-wait");
  });
  afterAll(async () => {
    if (listener.child.exitCode === null && listener.child.signalCode === null)
      await listener.stop();
  });

  it("client-2-connect connects", async () => {
    const r = await run("client-2-connect", clientEnv(listener.port));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^Connected to '127\\.0\\.0\\.1':${listener.port} as \\S+\\n$`),
    );
  });

  it("client-3-subscribe subscribes with QoS 0", async () => {
    const r = await run("client-3-subscribe", clientEnv(listener.port));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Subscription done, sub_qos is: 0\n");
  });

  it("client-4-publish publishes a retained message the listener routes and keeps", async () => {
    const conn = await connect(listener.port);
    expect(conn.isOk()).toBe(true);
    const seen = collect(conn);
    expect((await conn.sub("topic", myqtt.qos0, 5))[0]).toBe(true);

    const r = await run("client-4-publish", clientEnv(listener.port));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Subscription done, sub_qos is: 0\nPublish op done\n");
    await until(() => seen.length > 0);
    expect(seen).toEqual(["topic: this is a test message"]);

    // Retained: a later subscriber gets it at once.
    const later = await connect(listener.port);
    const retained = collect(later);
    expect((await later.sub("topic", myqtt.qos0, 5))[0]).toBe(true);
    await until(() => retained.length > 0);
    expect(retained).toEqual(["topic: this is a test message"]);
  });

  it("client-5-receive prints the message it receives", async () => {
    const r = await run("client-5-receive", clientEnv(listener.port));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Subscription done, sub_qos is: 0\n");
    expect(r.stdout).toContain("Publish op done\n");
    expect(r.stdout).toMatch(/Msg content: this is a test message\n$/);
  });

  it("listener-3-wait stops on SIGTERM, open connections included, and exits 0", async () => {
    const conn = await connect(listener.port);
    expect(conn.isOk()).toBe(true);
    const r = await listener.stop();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Listener started at 127\.0\.0\.1:\d+\n/);
    expect(r.stdout).toMatch(/Listener stopped\n$/);
  });
});

describe("listener-on-publish", () => {
  it("discards discard/this/topic and what a connection publishes beyond the limit", async () => {
    const listener = await startListener("listener-on-publish", { MYQTT_PUBLISH_LIMIT: "3" });
    try {
      const subscriber = await connect(listener.port);
      expect(subscriber.isOk()).toBe(true);
      const seen = collect(subscriber);
      expect((await subscriber.sub("discard/this/topic", myqtt.qos0, 5))[0]).toBe(true);
      expect((await subscriber.sub("keep/this/topic", myqtt.qos0, 5))[0]).toBe(true);

      const publisher = await connect(listener.port);
      // QoS 0: a discarded QoS 1 publish is never acknowledged.
      expect(await publisher.pub("discard/this/topic", "dropped", myqtt.qos0, false, 5)).toBe(true);
      for (let i = 1; i <= 4; i++)
        expect(await publisher.pub("keep/this/topic", `kept ${i}`, myqtt.qos0, false, 5)).toBe(
          true,
        );
      // Another connection has its own count.
      const other = await connect(listener.port);
      expect(await other.pub("keep/this/topic", "other 1", myqtt.qos0, false, 5)).toBe(true);

      // Order across connections is not guaranteed; within one it is, so once "kept 3" is in, a
      // routed "discard/this/topic" would be too, and a routed "kept 4" follows in a moment.
      await until(
        () => seen.includes("keep/this/topic: kept 3") && seen.includes("keep/this/topic: other 1"),
      );
      await new Promise((r) => setTimeout(r, 200));
      expect([...seen].sort()).toEqual([
        "keep/this/topic: kept 1",
        "keep/this/topic: kept 2",
        "keep/this/topic: kept 3",
        "keep/this/topic: other 1",
      ]);
      expect(listener.stdout()).toContain("Topic received: discard/this/topic\n");
      expect(listener.stdout()).toContain("Topic received: keep/this/topic\n");

      // client-5-receive works through it (its own "topic" is routed).
      const r = await run("client-5-receive", clientEnv(listener.port));
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Msg content: this is a test message\n");
    } finally {
      const r = await listener.stop();
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Listener stopped\n$/);
    }
  });
});

describe("listener-on-connect", () => {
  it("refuses a bad password with CONNACK 4 and accepts aspl:test", async () => {
    const listener = await startListener("listener-on-connect");
    try {
      const bad = new myqtt.ConnOpts();
      bad.setAuth("aspl", "wrong");
      const refused = await connect(listener.port, bad);
      expect(refused.isOk()).toBe(false);
      expect(refused.lastErr).toBe(myqtt.CONNACK_BAD_USERNAME_OR_PASSWORD);
      expect(refused.lastErr).toBe(4);

      const otherUser = new myqtt.ConnOpts();
      otherUser.setAuth("someone", "test");
      expect((await connect(listener.port, otherUser)).lastErr).toBe(4);

      const good = new myqtt.ConnOpts();
      good.setAuth("aspl", "test");
      const accepted = await connect(listener.port, good);
      expect(accepted.errorMsg).toBeNull();
      expect(accepted.isOk()).toBe(true);
      expect(accepted.lastErr).toBe(myqtt.CONNACK_ACCEPTED);

      // As in the manual's code: without username and password the CONNECT is accepted.
      const r = await run("client-2-connect", clientEnv(listener.port));
      expect(r.code).toBe(0);
      expect(listener.stdout()).toContain("Called on connect handler..\n");
    } finally {
      const r = await listener.stop();
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Listener stopped\n$/);
    }
  });
});
