// test_mosquitto_01 / 02. In MyQtt, libmosquitto (a third-party client) talks to the regression
// listener. The port turns the interop around, as the brief for this port asks: our Conn talks
// to a real Mosquitto broker, with the same steps and expectations. Mosquitto is Debian's
// `mosquitto` package; the test starts its own on a free port of 127.0.0.1 (or uses the one at
// 127.0.0.1:$MYQTT_MOSQUITTO_PORT) and fails with a clear message when it is not installed.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { type TestEnv, test } from "../../registry.js";
import {
  connect,
  freePort,
  Inbox,
  publish,
  sameBytes,
  sleep,
  subscribe,
  withCtx,
} from "./helpers.js";

const CANDIDATES = [
  "mosquitto",
  "/usr/sbin/mosquitto",
  "/usr/bin/mosquitto",
  "/usr/local/sbin/mosquitto",
];

/** The mosquitto binary, or null when it is not installed. */
function findMosquitto(): string | null {
  for (const bin of CANDIDATES) {
    const r = spawnSync(bin, ["-h"], { encoding: "utf8", timeout: 5000 });
    if (r.error === undefined && /mosquitto version/i.test(`${r.stdout}${r.stderr}`)) return bin;
  }
  return null;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A Mosquitto broker on 127.0.0.1 for the time of one test. */
interface Mosquitto {
  port: number;
  stop(): Promise<void>;
}

async function startMosquitto(): Promise<Mosquitto> {
  const given = process.env.MYQTT_MOSQUITTO_PORT;
  if (given !== undefined && given !== "") {
    const port = Number(given);
    check(Number.isInteger(port) && port > 0 && port < 65_536, `bad MYQTT_MOSQUITTO_PORT ${given}`);
    check(
      await accepts(port),
      `nothing accepts connections on 127.0.0.1:${port} (MYQTT_MOSQUITTO_PORT)`,
    );
    return { port, stop: async () => {} };
  }
  const bin = findMosquitto();
  check(
    bin !== null,
    "this test needs Mosquitto: install it (`apt-get install mosquitto`) or set MYQTT_MOSQUITTO_PORT",
  );
  const dir = await mkdtemp(join(tmpdir(), "myqtt-mosquitto-"));
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  await writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "log_dest none",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  // Never leave it running behind the test process.
  const kill = (): void => {
    if (child.exitCode === null) child.kill("SIGKILL");
  };
  process.once("exit", kill);
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(kill, 3000);
      await exited;
      clearTimeout(timer);
    }
    process.off("exit", kill);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = performance.now() + 10_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || performance.now() > deadline) {
      await stop();
      throw new Error(`mosquitto did not start on 127.0.0.1:${port}: ${stderr.trim()}`);
    }
    await sleep(20);
  }
  return { port, stop };
}

/**
 * The C test with our client: client id "test01", clean session, subscribe to
 * myqtt/mosquitto/test at QoS 2, publish `message` at `qos`, receive it back at `qos`.
 */
async function mosquittoCase(
  env: TestEnv,
  message: string,
  qos: 0 | 2,
  grantedMustBe2: boolean,
): Promise<void> {
  const broker = await startMosquitto();
  try {
    const local = { ...env, host: "127.0.0.1", port: broker.port };
    await withCtx(async (ctx) => {
      const conn = await connect(ctx, local, "test01", true);
      const granted = await subscribe(conn, "myqtt/mosquitto/test", myqtt.qos2);
      env.log(`granted QoS ${granted}`);
      if (grantedMustBe2) equal(granted, 2, "granted QoS");
      const inbox = new Inbox(conn);
      await publish(conn, "myqtt/mosquitto/test", message, qos);
      const msg = await inbox.next(10_000, "the message back from Mosquitto");
      equal(msg.topic, "myqtt/mosquitto/test", "topic");
      equal(msg.size, message.length, "size");
      check(sameBytes(msg.payload, message), `unexpected content: ${msg.content}`);
      equal(msg.qos, qos, "QoS");
      await conn.close();
    });
  } finally {
    await broker.stop();
  }
}

test("c", "test_mosquitto_01", (env) =>
  mosquittoCase(env, "This is a test from mosquitto library..", myqtt.qos0, false),
);

test("c", "test_mosquitto_02", (env) =>
  mosquittoCase(env, "This is a test from mosquitto library (QoS 2)..", myqtt.qos2, true),
);
