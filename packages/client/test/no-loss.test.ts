// "Loses nothing", end to end: a numbered QoS 1/2 stream through a broker process that is
// SIGKILLed and restarted on the same port in the middle. Every publish must eventually resolve,
// and every message must reach the subscriber (duplicates allowed) — except, for a broker that
// acknowledges before it delivers and keeps nothing (Mosquitto without persistence), messages
// the dead broker had already acknowledged: losing those is the broker's doing, not the client's.
import type { QoS } from "@myqtt/codec";
import { type Connector, connectTcp } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { connect, type MqttClient } from "../src/index.js";
import { onCleanup } from "./helpers.js";
import {
  type Child,
  FAST,
  freePort,
  startBrokerProcess,
  startMosquittoAt,
  until,
} from "./resilience-helpers.js";

interface Run {
  start: (port: number) => Promise<Child>;
  protocolVersion: 4 | 5;
  qos: QoS;
  /** The broker may acknowledge a message and die before delivering it (no persistence). */
  acksBeforeDelivering: boolean;
}

const N = 2000;
const WINDOW = 20;
const KILL_AT = 700;

async function streamThroughACrash({
  start,
  protocolVersion,
  qos,
  acksBeforeDelivering,
}: Run): Promise<void> {
  const port = await freePort();
  let broker = await start(port);
  const url = `mqtt://127.0.0.1:${port}`;

  // A clean-session subscriber misses what is published before it has resubscribed to the
  // restarted broker (that is the broker's business, not a loss by the client): the publisher
  // reaches the broker through a gate that opens again once the subscriber is back.
  let gateOpen = true;
  const gated: Connector<unknown> = (host, p, options) =>
    gateOpen
      ? connectTcp(host, p, options as Parameters<typeof connectTcp>[2])
      : Promise.reject(new Error("the test holds the publisher off"));

  const sub = await connect(url, {
    clientId: `nl-sub-${protocolVersion}-${qos}`,
    protocolVersion,
    reconnect: FAST,
  });
  onCleanup(() => sub.destroy());
  const subscription = await sub.subscribe("nl/#", { qos });
  const received = new Map<number, number>();
  const reading = (async () => {
    for await (const msg of subscription) {
      const n = Number(msg.content);
      received.set(n, (received.get(n) ?? 0) + 1);
    }
  })();

  const pub: MqttClient = await connect(url, {
    clientId: `nl-pub-${protocolVersion}-${qos}`,
    protocolVersion,
    reconnect: FAST,
    connector: gated,
  });
  onCleanup(() => pub.destroy());
  let pubReconnects = 0;
  let subReconnects = 0;
  pub.on("reconnect", () => pubReconnects++);
  sub.on("reconnect", () => subReconnects++);
  pub.on("error", () => {});
  sub.on("error", () => {});

  const resolved = new Set<number>();
  const failures: unknown[] = [];
  let resolvedAtKill = -1;
  /** Acknowledged by the broker that died (taken once the publisher saw the connection go). */
  let ackedByDeadBroker = new Set<number>();
  let pendingAtKill = -1;
  let crash: Promise<void> | null = null;
  const crashAndRestart = async (): Promise<void> => {
    gateOpen = false;
    resolvedAtKill = resolved.size;
    pendingAtKill = pub.pendingPublishes;
    await broker.kill();
    await until(
      () => pub.state === "reconnecting" && sub.state === "reconnecting",
      3000,
      "both clients offline",
    );
    ackedByDeadBroker = new Set(resolved);
    broker = await start(port);
    await until(() => subReconnects > 0, 5000, "the subscriber back");
    await sub.ping(); // its SUBSCRIBE went before, on the same connection
    gateOpen = true;
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      const n = next++;
      try {
        await pub.publish(`nl/${n % 16}`, String(n), { qos });
        resolved.add(n);
      } catch (error) {
        failures.push(error);
      }
      if (resolved.size >= KILL_AT && crash === null) crash = crashAndRestart();
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  await crash;

  expect(failures).toEqual([]);
  expect(resolved.size).toBe(N); // every publish eventually resolved
  expect(resolvedAtKill).toBeGreaterThanOrEqual(KILL_AT);
  expect(resolvedAtKill).toBeLessThan(N);
  expect(pendingAtKill).toBeGreaterThan(0); // some were in flight when the broker died
  expect(pubReconnects).toBe(1);
  expect(subReconnects).toBe(1);
  const mustArrive = (n: number): boolean => !acksBeforeDelivering || !ackedByDeadBroker.has(n);
  const missing = (): number[] => [...resolved].filter((n) => mustArrive(n) && !received.has(n));
  // What the client held unacknowledged at the crash is part of what must arrive.
  expect([...resolved].filter((n) => !ackedByDeadBroker.has(n)).length).toBeGreaterThan(0);
  await until(() => missing().length === 0, 5000, "every resolved message at the subscriber").catch(
    () => {},
  );
  expect(missing()).toEqual([]);
  expect(pub.pendingPublishes).toBe(0);
  sub.destroy();
  await reading;
}

describe("no loss through a broker crash (SIGKILL, restart on the same port)", () => {
  it("our broker, QoS 1, MQTT 3.1.1", async () => {
    await streamThroughACrash({
      start: startBrokerProcess,
      protocolVersion: 4,
      qos: 1,
      acksBeforeDelivering: false,
    });
  }, 15_000);

  it("our broker, QoS 2, MQTT 5.0", async () => {
    await streamThroughACrash({
      start: startBrokerProcess,
      protocolVersion: 5,
      qos: 2,
      acksBeforeDelivering: false,
    });
  }, 15_000);

  it("Mosquitto, QoS 1, MQTT 3.1.1", async () => {
    await streamThroughACrash({
      start: startMosquittoAt,
      protocolVersion: 4,
      qos: 1,
      acksBeforeDelivering: true,
    });
  }, 15_000);

  it("Mosquitto, QoS 1, MQTT 5.0", async () => {
    await streamThroughACrash({
      start: startMosquittoAt,
      protocolVersion: 5,
      qos: 1,
      acksBeforeDelivering: true,
    });
  }, 15_000);
});
