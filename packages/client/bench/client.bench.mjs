// Our client against MQTT.js, both against the same Mosquitto in one run (interleaved reps):
// QoS 0 and QoS 1 publish throughput (counted at a neutral raw-socket subscriber) and QoS 0
// round-trip latency and the client CPU per round trip (publish to a topic the same client is
// subscribed to). A third column, "net floor" (bench/net-floor.mjs), is the least a Node.js
// program on net.Socket spends on the same publishes: what Node's socket costs.
//   pnpm --filter @myqtt/client bench        (needs Mosquitto: apt-get install mosquitto)
import { fork } from "node:child_process";
import mqtt from "mqtt";
import { startMosquitto } from "../../../tooling/services/mosquitto.mjs";
import { connect } from "../dist/index.js";
import { connectFloor } from "./net-floor.mjs";

const REPS = Number(process.env.REPS ?? 3);
const N0 = Number(process.env.N0 ?? 100_000);
const N1 = Number(process.env.N1 ?? 30_000);
const WINDOW = 100;
const ROUND_TRIPS = Number(process.env.RTT ?? 3000);
/** The paced run: this many QoS 1 messages per second for PACED_SECONDS. */
const PACED_RATE = Number(process.env.PACED_RATE ?? 10_000);
const PACED_SECONDS = Number(process.env.PACED_SECONDS ?? 3);
const PAYLOAD = Buffer.alloc(64, 0x61);

/** The neutral counter (bench/counter.mjs) in a child process. */
async function counter(port, topic) {
  const child = fork(new URL("./counter.mjs", import.meta.url), [String(port), topic]);
  await new Promise((resolve) => child.once("message", resolve));
  return {
    waitFor(n) {
      return new Promise((resolve) => {
        child.once("message", resolve);
        child.send(n);
      });
    },
    close() {
      child.disconnect();
    },
  };
}

const libs = {
  myqtt: {
    async open(url) {
      const c = await connect(url, { reconnect: false, keepAlive: 0 });
      return {
        pub0: (topic) => c.publish(topic, PAYLOAD, { qos: 0 }),
        pub1: (topic) => c.publish(topic, PAYLOAD, { qos: 1 }),
        async subscribe(topic) {
          const sub = await c.subscribe(topic, { qos: 0, iterate: false });
          return sub;
        },
        onMessage(fn) {
          c.on("message", fn);
        },
        close: () => c.end(),
      };
    },
  },
  "mqtt.js": {
    async open(url) {
      const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, keepalive: 0 });
      return {
        pub0: (topic) => c.publishAsync(topic, PAYLOAD, { qos: 0 }),
        pub1: (topic) => c.publishAsync(topic, PAYLOAD, { qos: 1 }),
        subscribe: (topic) => c.subscribeAsync(topic, { qos: 0 }),
        onMessage(fn) {
          c.on("message", fn);
        },
        close: () => c.endAsync(),
      };
    },
  },
  // Throughput and the paced run only (it cannot subscribe).
  "net floor": {
    async open(url) {
      const c = await connectFloor(Number(new URL(url).port));
      return {
        pub0: (topic) => c.publish0(topic, PAYLOAD),
        pub1: (topic) => c.publish1(topic, PAYLOAD),
        subscribe: null,
        close: () => c.end(),
      };
    },
  },
};

async function throughput(lib, url, port, qos) {
  const topic = `bench/${lib}/${qos}/${Math.random().toString(36).slice(2)}`;
  const count = await counter(port, topic);
  const client = await libs[lib].open(url);
  const n = qos === 0 ? N0 : N1;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  if (qos === 0) {
    // As fast as the library lets a caller go: fire, and await in slices to yield.
    let batch = [];
    for (let i = 0; i < n; i++) {
      batch.push(client.pub0(topic));
      if (batch.length === 1000) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
  } else {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        await client.pub1(topic);
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, worker));
  }
  await count.waitFor(n);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  await client.close();
  count.close();
  // Messages per second of wall time (the broker caps it), and per CPU-second of the client.
  return { rate: n / seconds, perCpu: n / ((cpu.user + cpu.system) / 1e6) };
}

/**
 * CPU per QoS 1 message at a fixed rate both libraries sustain. Unpaced, both clients spin a
 * whole core at the broker's acknowledgement rate, so messages per CPU-second mostly measures
 * how many acknowledgements each wake-up finds; paced, it is the library's own cost.
 */
async function paced(lib, url, port) {
  const topic = `paced/${lib}/${Math.random().toString(36).slice(2)}`;
  const count = await counter(port, topic);
  const client = await libs[lib].open(url);
  const n = PACED_RATE * PACED_SECONDS;
  const perTick = PACED_RATE / 1000;
  const pending = [];
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let sent = 0;
  await new Promise((resolve) => {
    const tick = () => {
      // As many as the clock says are due (timers fire late under load; nothing is skipped).
      const due = Math.min(n, Math.floor((performance.now() - start) * perTick) + perTick);
      while (sent < due) {
        pending.push(client.pub1(topic));
        sent++;
      }
      if (sent < n) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(pending);
  await count.waitFor(n);
  const cpu = process.cpuUsage(cpuStart);
  await client.close();
  count.close();
  return { usPerMsg: (cpu.user + cpu.system) / n };
}

async function latency(lib, url) {
  const topic = `rtt/${lib}/${Math.random().toString(36).slice(2)}`;
  const client = await libs[lib].open(url);
  await client.subscribe(topic);
  let resolve = null;
  client.onMessage(() => resolve?.());
  const samples = [];
  let cpuStart = null;
  for (let i = 0; i < ROUND_TRIPS + 200; i++) {
    if (i === 200) cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    const got = new Promise((r) => (resolve = r));
    client.pub0(topic);
    await got;
    if (i >= 200) samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  const cpu = process.cpuUsage(cpuStart);
  await client.close();
  samples.sort((a, b) => a - b);
  return {
    p50: samples[Math.floor(samples.length / 2)],
    p99: samples[Math.floor(samples.length * 0.99)],
    // The client's CPU for one publish out and one message in (a write and a read).
    cpuPerTrip: (cpu.user + cpu.system) / ROUND_TRIPS,
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const broker = await startMosquitto([
  "max_inflight_messages 0",
  "max_queued_messages 0",
  "set_tcp_nodelay true",
]);
const blank = () => ({ q0: [], q1: [], c0: [], c1: [], p50: [], p99: [], rttCpu: [], paced: [] });
const results = { myqtt: blank(), "mqtt.js": blank(), "net floor": blank() };
try {
  for (let rep = 1; rep <= REPS; rep++) {
    for (const lib of Object.keys(libs)) {
      const q0 = await throughput(lib, broker.url, broker.port, 0);
      const q1 = await throughput(lib, broker.url, broker.port, 1);
      const { p50, p99, cpuPerTrip } =
        lib === "net floor"
          ? { p50: NaN, p99: NaN, cpuPerTrip: NaN }
          : await latency(lib, broker.url);
      const { usPerMsg } = await paced(lib, broker.url, broker.port);
      const r = results[lib];
      r.q0.push(q0.rate);
      r.c0.push(q0.perCpu);
      r.q1.push(q1.rate);
      r.c1.push(q1.perCpu);
      r.p50.push(p50);
      r.p99.push(p99);
      r.rttCpu.push(cpuPerTrip);
      r.paced.push(usPerMsg);
      console.error(
        `rep ${rep} ${lib}: QoS0 ${q0.rate.toFixed(0)} msg/s (${q0.perCpu.toFixed(0)}/cpu-s), QoS1 ${q1.rate.toFixed(0)} msg/s (${q1.perCpu.toFixed(0)}/cpu-s), RTT p50 ${p50.toFixed(1)} us p99 ${p99.toFixed(1)} us (${cpuPerTrip.toFixed(1)} us CPU), paced QoS1 ${usPerMsg.toFixed(2)} us CPU/msg`,
      );
    }
  }
} finally {
  await broker.stop();
}
const m = (lib, k) => median(results[lib][k]);
console.log(
  `\nAgainst Mosquitto, medians of ${REPS} reps (${N0} QoS 0 and ${N1} QoS 1 messages of 64 B, ${ROUND_TRIPS} round trips)\n`,
);
const rows = [
  ["QoS 0 publish: msg per client CPU-second", "c0", 0],
  ["QoS 1 publish: msg per client CPU-second", "c1", 0],
  ["QoS 0 publish throughput (wall, capped by the broker), msg/s", "q0", 0],
  [`QoS 1 publish throughput (wall, ${WINDOW} in flight), msg/s`, "q1", 0],
  [`QoS 1 at ${PACED_RATE} msg/s: client CPU us per message (lower is better)`, "paced", 2],
  ["round trip p50, us (lower is better)", "p50", 1],
  ["round trip p99, us (lower is better)", "p99", 1],
  ["round trip: client CPU us per round trip (lower is better)", "rttCpu", 1],
];
const ratio = (a, b) => (Number.isNaN(a) ? "" : `${(a / b).toFixed(2)}x`);
console.log("| measure | myqtt | MQTT.js | myqtt / MQTT.js | net floor | net floor / MQTT.js |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const [label, key, digits] of rows) {
  const [ours, theirs, floor] = ["myqtt", "mqtt.js", "net floor"].map((lib) => m(lib, key));
  const floorCell = Number.isNaN(floor) ? "" : floor.toFixed(digits);
  console.log(
    `| ${label} | ${ours.toFixed(digits)} | ${theirs.toFixed(digits)} | ${ratio(ours, theirs)} | ${floorCell} | ${ratio(floor, theirs)} |`,
  );
}
