// Persistent-session QoS 1 throughput of the broker with each storage backend, and the time a
// broker takes to start on 100,000 stored messages.
//   pnpm --filter @myqtt/broker bench        (Redis rows need redis-server: apt-get install redis-server)
// Throughput: PUBLISHERS MQTT.js clients publish QoS 1 (WINDOW in flight each) to a persistent
// QoS 1 subscriber (clean session off); counted when the subscriber got all N messages and every
// publisher got all its PUBACKs. Each PUBACK waits for storage; each delivery is stored and
// released when the subscriber acknowledges it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ctx } from "@myqtt/core";
import { FileStorage, MemoryStorage } from "@myqtt/storage";
import { RedisStorage } from "@myqtt/storage-redis";
import mqtt from "mqtt";
import { findRedisServer, startRedis } from "../../../tooling/services/redis.mjs";
import { createListener } from "../dist/index.js";

const REPS = Number(process.env.REPS ?? 3);
const N = Number(process.env.N ?? 20_000);
const PUBLISHERS = 4;
const WINDOW = 64;
const STORED = Number(process.env.STORED ?? 100_000);
const PAYLOAD = Buffer.alloc(64, 0x61);

async function startBroker(storage) {
  const ctx = new Ctx();
  await ctx.init();
  const listener = await createListener(ctx, "127.0.0.1", 0, {
    storage,
    maxQueuedMessages: 10_000_000,
  });
  if (!listener.isOk()) throw new Error(listener.errorMsg);
  return { ctx, url: `mqtt://127.0.0.1:${listener.port}` };
}

/** Messages per second through a broker on `storage`. */
async function throughput(storage) {
  const { ctx, url } = await startBroker(storage);
  const sub = mqtt.connect(url, { clientId: "bench-sub", clean: false, reconnectPeriod: 0 });
  let received = 0;
  let allReceived;
  const done = new Promise((resolve) => {
    allReceived = resolve;
  });
  sub.on("message", () => {
    if (++received === N) allReceived();
  });
  await new Promise((resolve) => sub.once("connect", resolve));
  await sub.subscribeAsync("bench/#", { qos: 1 });
  const pubs = await Promise.all(
    Array.from({ length: PUBLISHERS }, () => mqtt.connectAsync(url, { reconnectPeriod: 0 })),
  );
  const start = performance.now();
  await Promise.all(
    pubs.map(async (pub, i) => {
      const count = N / PUBLISHERS;
      let sent = 0;
      const lane = async () => {
        while (sent < count) {
          sent++;
          await pub.publishAsync(`bench/${i}`, PAYLOAD, { qos: 1 });
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, lane));
    }),
  );
  await done;
  const seconds = (performance.now() - start) / 1000;
  await Promise.all([...pubs.map((p) => p.endAsync()), sub.endAsync()]);
  await ctx.exit();
  return N / seconds;
}

/** Fills `storage` with STORED queued deliveries over 100 persistent sessions. */
async function fill(storage) {
  await storage.open();
  const now = Date.now();
  const clients = 100;
  for (let c = 0; c < clients; c++) {
    const clientId = `stored-${c}`;
    const ops = [
      { op: "session", clientId, info: { expiryInterval: 0xffffffff, disconnectedAt: now } },
      {
        op: "sub",
        clientId,
        sub: {
          filter: `s/${c}`,
          qos: 1,
          noLocal: false,
          retainAsPublished: false,
          retainHandling: 0,
        },
      },
    ];
    for (let i = 0; i < STORED / clients; i++) {
      const message = {
        topic: `s/${c}`,
        payload: PAYLOAD,
        qos: 1,
        retain: false,
        expiresAt: 0,
        publisher: null,
      };
      ops.push({
        op: "delivery",
        clientId,
        delivery: {
          seq: storage.nextSeq(),
          message,
          qos: 1,
          retain: false,
          subscriptionIds: null,
          state: "queued",
          packetId: 0,
        },
      });
    }
    await storage.write(ops);
  }
}

/** Milliseconds from createListener to a listening broker with everything restored. */
async function restart(storage) {
  const start = performance.now();
  const { ctx } = await startBroker(storage);
  const ms = performance.now() - start;
  await ctx.exit();
  return ms;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const dirs = [];
const abandoned = [];
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), "myqtt-bench-"));
  dirs.push(dir);
  return dir;
};
const redis =
  findRedisServer() === null
    ? null
    : await startRedis(["--appendonly", "yes", "--appendfsync", "always"]);
let prefix = 0;
const backends = {
  "memory backend": async () => new MemoryStorage(),
  "file (fsync)": async () => new FileStorage({ path: await tempDir(), durability: "fsync" }),
  "file (async)": async () => new FileStorage({ path: await tempDir(), durability: "async" }),
  ...(redis === null
    ? {}
    : {
        "redis (appendfsync always)": async () =>
          new RedisStorage({ redis: redis.url, prefix: `bench${prefix++}:` }),
      }),
};

try {
  const rates = {};
  for (let rep = 0; rep < REPS; rep++) {
    for (const [name, make] of Object.entries(backends)) {
      (rates[name] ??= []).push(await throughput(await make()));
    }
  }
  const base = median(rates["memory backend"]);
  console.log(
    `\npersistent-session QoS 1 throughput (${N} messages, ${PUBLISHERS} publishers, median of ${REPS})`,
  );
  for (const [name, values] of Object.entries(rates)) {
    const m = median(values);
    console.log(
      `  ${name.padEnd(28)} ${Math.round(m).toString().padStart(7)} msg/s   ${(m / base).toFixed(2)}x memory`,
    );
  }

  console.log(`\nbroker start with ${STORED} stored messages (100 sessions; median of ${REPS})`);
  const starts = {};
  for (let rep = 0; rep < REPS; rep++) {
    const dir = await tempDir();
    // Filled without closing, as after kill -9: everything is still in the log (the dead
    // process's LOCK is removed by hand).
    const crashed = new FileStorage({ path: dir, durability: "async", compactAfterBytes: 2 ** 40 });
    await fill(crashed);
    abandoned.push(crashed); // never closed, like a killed process (kept from the GC's reach)
    await rm(join(dir, "LOCK"));
    (starts["file, from the log (after kill -9)"] ??= []).push(
      await restart(new FileStorage({ path: dir })),
    );
    // That broker's stop folded the log into the per-client files.
    (starts["file, compacted (after a clean stop)"] ??= []).push(
      await restart(new FileStorage({ path: dir })),
    );
    if (redis !== null) {
      const p = `start${rep}:`;
      const filled = new RedisStorage({ redis: redis.url, prefix: p });
      await fill(filled);
      await filled.close();
      (starts.redis ??= []).push(await restart(new RedisStorage({ redis: redis.url, prefix: p })));
    }
  }
  for (const [name, values] of Object.entries(starts))
    console.log(`  ${name.padEnd(38)} ${Math.round(median(values)).toString().padStart(6)} ms`);
} finally {
  await redis?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
}
