import { PacketType } from "@myqtt/codec";
import type { IClientOptions } from "mqtt";
import { describe, expect, it } from "vitest";
import { getBroker } from "../src/index.js";
import {
  drain,
  payloads,
  rawConnected,
  rawSubscribe,
  receivePublishes,
  recorder,
  text,
  untilGone,
} from "./flow-helpers.js";
import { client, sleep, startBroker, type TestBroker, until } from "./helpers.js";

/** Connect options of a persistent session for `clientId`, per protocol level. */
function persistent(protocolVersion: 4 | 5, clientId: string, expiry = 60): IClientOptions {
  return protocolVersion === 5
    ? { protocolVersion, clientId, clean: false, properties: { sessionExpiryInterval: expiry } }
    : { protocolVersion, clientId, clean: false };
}

/** A persistent subscriber on `filter` that then loses its connection without DISCONNECT. */
async function goAway(
  broker: TestBroker,
  options: IClientOptions,
  filter: string,
  qos: 0 | 1 | 2 = 2,
): Promise<void> {
  const r = await recorder(broker, options);
  await r.c.subscribeAsync(filter, { qos });
  r.c.stream.destroy();
  await untilGone(broker, options.clientId!);
}

describe.each([4, 5] as const)("persistent sessions, MQTT level %i", (protocolVersion) => {
  it("queues QoS 0, 1 and 2 for a client lost without DISCONNECT and delivers them in order", async () => {
    const broker = await startBroker();
    const clientId = `queued-${protocolVersion}`;
    const fields =
      protocolVersion === 5
        ? { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }
        : { clientId, clean: false };
    const first = await rawConnected(broker, protocolVersion, fields);
    await rawSubscribe(first.raw, [{ topicFilter: "q/#", qos: 2 }]);
    first.raw.destroy();
    await untilGone(broker, clientId);
    const publisher = await client(broker, { protocolVersion });
    const sent: [string, 0 | 1 | 2][] = [];
    for (let i = 0; i < 12; i++) sent.push([`m${i}`, (i % 3) as 0 | 1 | 2]);
    for (const [payload, qos] of sent) await publisher.publishAsync("q/a", payload, { qos });
    const back = await rawConnected(broker, protocolVersion, fields);
    expect(back.connack.sessionPresent).toBe(true);
    // Wire order (MQTT.js would hand QoS 2 messages over only at PUBREL).
    const got = await receivePublishes(back.raw, 12);
    expect(got.map((p) => [text(p.payload), p.qos])).toEqual(sent);
    // Nothing more than the PUBRELs of the last QoS 2 messages: no duplicates.
    const rest = await drain(back.raw, 100);
    expect(rest.filter((p) => p.type !== PacketType.PUBREL)).toEqual([]);
  });

  it("reports session present and keeps subscriptions across the reconnect", async () => {
    const broker = await startBroker();
    const options = persistent(protocolVersion, `present-${protocolVersion}`);
    await goAway(broker, options, "keep/#", 1);
    const back = await recorder(broker, options);
    // No SUBSCRIBE this time: the session still has it.
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("keep/x", "still subscribed", { qos: 1 });
    await until(() => back.got.length === 1);
    expect(payloads(back.got)).toEqual(["still subscribed"]);
  });

  it("queues nothing for a clean session", async () => {
    const broker = await startBroker();
    const clientId = `clean-${protocolVersion}`;
    const r = await recorder(broker, { protocolVersion, clientId, clean: true });
    await r.c.subscribeAsync("clean/#", { qos: 1 });
    r.c.stream.destroy();
    await untilGone(broker, clientId);
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("clean/x", "lost", { qos: 1 });
    const back = await recorder(broker, { protocolVersion, clientId, clean: true });
    await sleep(200);
    expect(back.got).toEqual([]);
  });

  it("does not queue QoS 0 when queueQoS0 is false, but still QoS 1 and 2", async () => {
    const broker = await startBroker({ queueQoS0: false });
    const options = persistent(protocolVersion, `noq0-${protocolVersion}`);
    await goAway(broker, options, "nq/#");
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("nq/a", "zero", { qos: 0 });
    await publisher.publishAsync("nq/a", "one", { qos: 1 });
    await publisher.publishAsync("nq/a", "two", { qos: 2 });
    const back = await recorder(broker, options);
    await until(() => back.got.length >= 2);
    await sleep(150);
    expect(payloads(back.got)).toEqual(["one", "two"]);
  });

  it("bounds the queue by maxQueuedMessages: the oldest are kept, the newest dropped", async () => {
    const broker = await startBroker({ maxQueuedMessages: 5 });
    const clientId = `bounded-${protocolVersion}`;
    const options = persistent(protocolVersion, clientId);
    await goAway(broker, options, "b/#", 1);
    const dropsBefore = getBroker(broker.ctx).stats.messagesDropped;
    const publisher = await client(broker, { protocolVersion });
    for (let i = 0; i < 8; i++) await publisher.publishAsync("b/x", `m${i}`, { qos: 1 });
    expect(getBroker(broker.ctx).sessions.get(clientId)?.queueLength).toBe(5);
    expect(getBroker(broker.ctx).stats.messagesDropped - dropsBefore).toBe(3);
    const back = await recorder(broker, options);
    await until(() => back.got.length >= 5);
    await sleep(150);
    expect(payloads(back.got)).toEqual(["m0", "m1", "m2", "m3", "m4"]);
  });

  it("bounds the queue by maxQueuedBytes", async () => {
    // Each message counts payload + topic + 16 bytes: 100 + 3 + 16 = 119; four fit in 500.
    const broker = await startBroker({ maxQueuedBytes: 500 });
    const clientId = `bytes-${protocolVersion}`;
    const options = persistent(protocolVersion, clientId);
    await goAway(broker, options, "y/#", 1);
    const publisher = await client(broker, { protocolVersion });
    for (let i = 0; i < 7; i++)
      await publisher.publishAsync("y/x", `${i}`.padEnd(100, "."), { qos: 1 });
    const back = await recorder(broker, options);
    await until(() => back.got.length >= 4);
    await sleep(150);
    expect(back.got.map((m) => m.payload[0])).toEqual(["0", "1", "2", "3"]);
  });
});

describe("persistent sessions, MQTT 5.0 only", () => {
  it("drops a queued message whose expiry passed and decrements the others' expiry", async () => {
    const broker = await startBroker();
    const options = persistent(5, "expiring");
    await goAway(broker, options, "exp/#", 1);
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("exp/x", "short", {
      qos: 1,
      properties: { messageExpiryInterval: 1 },
    });
    await publisher.publishAsync("exp/x", "long", {
      qos: 1,
      properties: { messageExpiryInterval: 10 },
    });
    await publisher.publishAsync("exp/x", "forever", { qos: 1 });
    await sleep(1500);
    const back = await recorder(broker, options);
    await until(() => back.got.length >= 2);
    await sleep(150);
    expect(payloads(back.got)).toEqual(["long", "forever"]);
    // v5 3.3.2.3.3: the interval is what remains of it.
    const remaining = back.got[0]?.packet.properties?.messageExpiryInterval;
    expect(remaining).toBeGreaterThanOrEqual(8);
    expect(remaining).toBeLessThanOrEqual(9);
    expect(back.got[1]?.packet.properties?.messageExpiryInterval).toBeUndefined();
  });

  it("ends the session after its expiry interval: nothing queued, session not present", async () => {
    const broker = await startBroker();
    const options = persistent(5, "short-lived", 1);
    await goAway(broker, options, "sl/#", 1);
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("sl/x", "too late", { qos: 1 });
    await sleep(1400);
    expect(getBroker(broker.ctx).sessions.has("short-lived")).toBe(false);
    const back = await recorder(broker, options);
    await sleep(150);
    expect(back.got).toEqual([]);
  });
});
