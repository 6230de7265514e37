// Crash safety: the daemon is killed with SIGKILL again and again while a QoS 1 publisher and a
// persistent QoS 1 subscriber (both MQTT.js) keep going, and restarted on the same storage and
// port. Every message the publisher got a PUBACK for must reach the subscriber in the end.
//
// MYQTT_KILL9_CYCLES (default 20) sets the number of kills of the file storage run,
// MYQTT_KILL9_REDIS_CYCLES (default half of that) those of the Redis run, MYQTT_KILL9_SEED the
// random kill moments (printed with the results, to replay a run). The 1,000-cycle run by hand:
//   MYQTT_KILL9_CYCLES=1000 npx vitest run test/kill9.test.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../tooling/services/mosquitto.mjs";
import {
  type RunningRedis,
  redisUnavailable,
  startRedis,
} from "../../../tooling/services/redis.mjs";
import { type Daemon, kill9, killAllDaemons, sleep, startDaemonOnPort } from "./daemon.js";

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

const CYCLES = envInt("MYQTT_KILL9_CYCLES", 20);
const REDIS_CYCLES = envInt("MYQTT_KILL9_REDIS_CYCLES", Math.max(1, Math.ceil(CYCLES / 2)));
const SEED = envInt("MYQTT_KILL9_SEED", Math.floor(Math.random() * 2 ** 31) + 1);
/** Publishes without a PUBACK yet, at most (the publisher's window). */
const WINDOW = 64;
/** How long the clients may take to be back after a restart, and the end to settle. */
const RECONNECT_WITHIN_MS = 10_000;
const SETTLE_WITHIN_MS = 30_000;
/** A generous bound per cycle (a cycle is about half a second) plus the settling at the end. */
const timeoutFor = (cycles: number): number => 60_000 + cycles * 3_000;

/** mulberry32: a small seeded PRNG, so that a run's kill moments can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const clients: MqttClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  await killAllDaemons();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface Kill9Result {
  cycles: number;
  /** Sequence numbers handed to publish(). */
  published: number;
  /** Those the publisher got a PUBACK for. */
  acked: number;
  /** Those whose publish callback reported an error (never acknowledged: not owed). */
  failed: number;
  /** Publishes still without an answer when the run ended (should be 0). */
  unanswered: number;
  /** Distinct sequence numbers the subscriber got, and all its deliveries. */
  delivered: number;
  deliveries: number;
  /** Deliveries beyond the first of a sequence number (QoS 1 allows them). */
  duplicates: number;
  /** The most copies of one message delivered. */
  maxCopies: number;
  /** Acked sequence numbers the subscriber never got (must be empty). */
  missing: number[];
  /** Deliveries of something never published (must be empty). */
  phantoms: string[];
  /** Reconnects of the subscriber where the broker had no session for it (must be 0). */
  lostSessions: number;
  /** Warnings and critical lines the daemons logged (torn log records after a kill, ...). */
  warnings: string[];
  /** The daemons' stderr, last 8 KiB (for the failure message). */
  log: string;
  /** What the clients went through (for the failure message). */
  diagnostics: string;
}

/** 1,2,3,7,9,10 → "1-3,7,9-10". */
function ranges(sorted: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(",");
}

/**
 * Runs `cycles` kill -9 cycles of the daemon started with `storage` and returns what the
 * publisher and the subscriber saw.
 */
async function kill9Run(
  name: string,
  storage: string[],
  cycles: number,
  protocolVersion: 4 | 5,
): Promise<Kill9Result> {
  const random = prng(SEED);
  const args = [...storage, "--log-level", process.env.MYQTT_KILL9_LOG_LEVEL || "info"];
  const port = await freePort();
  let log = "";
  const keepLog = (d: Daemon): void => {
    void d.exit.then((code) => {
      log = `${log}${d.stderr}--- daemon ${d.child.pid} ended (${code ?? d.child.signalCode})\n`;
      log = log.slice(-8192);
    });
  };
  const warnings: string[] = [];
  let daemon = await startDaemonOnPort(port, args);
  keepLog(daemon);
  const url = `mqtt://127.0.0.1:${port}`;
  const run = `${name}-${SEED}-${Date.now().toString(36)}`;
  const topic = `kill9/${run}`;

  // The subscriber: a persistent session that must come back after every kill (no automatic
  // resubscription, which would hide a lost subscription).
  const received = new Map<number, number>();
  /** Acked sequence numbers not delivered yet. */
  const owed = new Set<number>();
  const phantoms: string[] = [];
  let nextSeq = 0;
  let lostSessions = 0;
  let subConnects = 0;
  let pubConnects = 0;
  const timeline: string[] = [];
  const sub = mqtt.connect(url, {
    clientId: `kill9-sub-${run}`.slice(0, 64),
    protocolVersion,
    clean: false,
    // MQTT 5.0: a session ends with the connection unless it has an expiry interval.
    ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}),
    resubscribe: false,
    reconnectPeriod: 100,
    connectTimeout: 2000,
    keepalive: 30,
  });
  clients.push(sub);
  sub.on("error", () => {});
  sub.on("message", (t, payload) => {
    const text = payload.toString();
    const m = /^(.+):(\d+)$/.exec(text);
    const seq = m ? Number(m[2]) : -1;
    if (t !== topic || !m || m[1] !== run || seq >= nextSeq) {
      if (phantoms.length < 100) phantoms.push(`${t} ${text}`);
      return;
    }
    received.set(seq, (received.get(seq) ?? 0) + 1);
    owed.delete(seq);
  });
  const subscribed = new Promise<void>((resolve, reject) => {
    sub.on("connect", (connack) => {
      subConnects++;
      if (subConnects === 1) {
        sub.subscribe(topic, { qos: 1 }, (err) => (err ? reject(err) : resolve()));
      } else if (!connack.sessionPresent) {
        // A bug: the session was lost. Counted, and subscribed again so the run goes on.
        lostSessions++;
        sub.subscribe(topic, { qos: 1 });
      }
    });
  });
  await subscribed;

  // The publisher: keeps WINDOW QoS 1 publishes outstanding. MQTT.js keeps the unacknowledged
  // ones in its (in-memory) outgoing store and sends them again after each reconnect.
  const pub = mqtt.connect(url, {
    clientId: `kill9-pub-${run}`.slice(0, 64),
    protocolVersion,
    clean: true,
    reconnectPeriod: 100,
    connectTimeout: 2000,
    keepalive: 30,
  });
  clients.push(pub);
  pub.on("error", () => {});
  const acked = new Set<number>();
  const failed = new Set<number>();
  let outstanding = 0;
  let publishing = true;
  const pump = (): void => {
    while (publishing && outstanding < WINDOW) {
      const seq = nextSeq++;
      outstanding++;
      pub.publish(topic, `${run}:${seq}`, { qos: 1 }, (err) => {
        outstanding--;
        if (err) failed.add(seq);
        else {
          acked.add(seq);
          if (!received.has(seq)) owed.add(seq);
        }
        // Not right away: MQTT.js fails the publishes queued while it resends its store by
        // walking that queue, and a publish made from such a callback would join the walk.
        setImmediate(pump);
      });
    }
  };
  pub.once("connect", pump);
  pub.on("connect", () => pubConnects++);

  const bothConnected = async (): Promise<void> => {
    const deadline = Date.now() + RECONNECT_WITHIN_MS;
    while (!(sub.connected && pub.connected)) {
      if (Date.now() > deadline) {
        throw new Error(
          `${name}: clients not back within ${RECONNECT_WITHIN_MS} ms (subscriber ${sub.connected}, publisher ${pub.connected})\n${log}${daemon.stderr}`,
        );
      }
      await sleep(5);
    }
  };

  const collect = (d: Daemon): void => {
    for (const line of d.stderr.split("\n"))
      if (/ (warning|critical) /.test(line)) warnings.push(line);
  };

  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      await bothConnected();
      await sleep(50 + Math.floor(random() * 250));
      timeline.push(
        `kill ${cycle + 1}: published ${nextSeq}, acked ${acked.size}, delivered ${received.size}`,
      );
      await kill9(daemon);
      collect(daemon);
      daemon = await startDaemonOnPort(port, args);
      keepLog(daemon);
    }
    await bothConnected();

    // The end: no new publishes; every one made gets its answer, every acked one arrives.
    publishing = false;
    const settle = async (what: string, ok: () => boolean): Promise<void> => {
      const deadline = Date.now() + SETTLE_WITHIN_MS;
      while (!ok() && Date.now() < deadline) await sleep(20);
      if (!ok()) console.warn(`${name}: gave up waiting for ${what}`);
    };
    await settle("the publisher's last PUBACKs", () => outstanding === 0);
    await settle("the subscriber to get every acked message", () => owed.size === 0);
    // Stragglers (redelivered duplicates) still on their way.
    await sleep(200);
  } finally {
    timeline.push(`at the end: subscriber connected ${sub.connected}, publisher ${pub.connected}`);
    for (const c of [sub, pub]) c.end(true);
    collect(daemon);
  }

  let deliveries = 0;
  let maxCopies = 0;
  for (const copies of received.values()) {
    deliveries += copies;
    maxCopies = Math.max(maxCopies, copies);
  }
  const missing = [...acked].filter((seq) => !received.has(seq)).sort((a, b) => a - b);
  return {
    cycles,
    published: nextSeq,
    acked: acked.size,
    failed: failed.size,
    unanswered: outstanding,
    delivered: received.size,
    deliveries,
    duplicates: deliveries - received.size,
    maxCopies,
    missing,
    phantoms,
    lostSessions,
    warnings,
    log: `${log}${daemon.stderr}`.slice(-8192),
    diagnostics: [
      `subscriber: ${subConnects} connects`,
      `publisher: ${pubConnects} connects`,
      `missing: ${ranges(missing)}`.slice(0, 2000),
      ...timeline.slice(-60),
      `end: published ${nextSeq}, acked ${acked.size}, delivered ${received.size}`,
    ].join("\n"),
  };
}

function report(name: string, r: Kill9Result): void {
  console.log(
    `kill -9 ${name}: ${r.cycles} cycles (seed ${SEED}), ${r.published} published, ${r.acked} acked, ` +
      `${r.failed} failed, ${r.unanswered} unanswered, ${r.delivered} delivered ` +
      `(${r.deliveries} deliveries, ${r.duplicates} duplicates, at most ${r.maxCopies} copies), ` +
      `${r.missing.length} acked but lost, ${r.phantoms.length} never published, ` +
      `${r.lostSessions} lost sessions, ${r.warnings.length} daemon warnings`,
  );
  for (const w of r.warnings.slice(0, 10)) console.log(`  ${w}`);
}

function check(name: string, r: Kill9Result): void {
  const context = `${name} (seed ${SEED})\n${r.diagnostics}\ndaemon log:\n${r.log}`;
  // The run did something: messages flowed through the kills.
  expect(r.acked, `nothing was acknowledged: ${context}`).toBeGreaterThan(0);
  expect(r.lostSessions, `sessions lost after a kill: ${context}`).toBe(0);
  expect(
    r.missing.length,
    `${r.missing.length} acknowledged messages were never delivered: ${context}`,
  ).toBe(0);
  expect(r.phantoms, `delivered but never published: ${context}`).toEqual([]);
  // QoS 1 allows duplicates, each from a resend after a lost connection: the publisher's
  // (the message routed again) and the broker's (redelivered to the subscriber). So one
  // message comes at most 1 + 2 per kill times.
  expect(
    r.maxCopies,
    `a message came more often than resends explain: ${context}`,
  ).toBeLessThanOrEqual(1 + 2 * r.cycles);
  expect(r.unanswered, `publishes left without an answer: ${context}`).toBe(0);
}

describe("myqttd survives kill -9", () => {
  it(
    `with file storage (fsync), MQTT 3.1.1: ${CYCLES} kills, no acknowledged message lost`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "myqttd-kill9-"));
      dirs.push(dir);
      const r = await kill9Run(
        "file",
        ["--storage", `file:${join(dir, "store")}`, "--durability", "fsync"],
        CYCLES,
        4,
      );
      report("file", r);
      check("file", r);
    },
    timeoutFor(CYCLES),
  );
});

const noRedis = redisUnavailable();

describe.skipIf(noRedis !== null)(
  `myqttd survives kill -9 with Redis storage${noRedis ? ` (${noRedis})` : ""}`,
  () => {
    let redis: RunningRedis | null = null;
    beforeAll(async () => {
      // EXEC answered means on disk; kill -9 hits only the broker, Redis keeps running.
      redis = await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it(
      `with Redis storage, MQTT 5.0: ${REDIS_CYCLES} kills, no acknowledged message lost`,
      async () => {
        const r = await kill9Run("redis", ["--storage", redis!.url], REDIS_CYCLES, 5);
        report("redis", r);
        check("redis", r);
      },
      timeoutFor(REDIS_CYCLES),
    );
  },
);
