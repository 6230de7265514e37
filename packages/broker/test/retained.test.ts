import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { payloads, rawConnected, recorder, serverPublish } from "./flow-helpers.js";
import { client, sleep, startBroker, until } from "./helpers.js";

describe.each([4, 5] as const)("retained messages, MQTT level %i", (protocolVersion) => {
  it("keeps a retained QoS 0 message and sends it on subscribe with RETAIN=1", async () => {
    const broker = await startBroker();
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("ret/q0", "kept", { qos: 0, retain: true });
    await sleep(50);
    const late = await recorder(broker, { protocolVersion });
    await late.c.subscribeAsync("ret/q0", { qos: 2 });
    await until(() => late.got.length === 1);
    expect(late.got.map((m) => [m.topic, m.payload, m.retain, m.qos])).toEqual([
      ["ret/q0", "kept", true, 0],
    ]);
  });

  it("replaces the retained message with the next retained publish, whatever its QoS", async () => {
    const broker = await startBroker();
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("ret/r", "old", { qos: 2, retain: true });
    await publisher.publishAsync("ret/r", "new", { qos: 0, retain: true });
    await sleep(50);
    const late = await recorder(broker, { protocolVersion });
    await late.c.subscribeAsync("ret/r", { qos: 2 });
    await until(() => late.got.length >= 1);
    await sleep(100);
    expect(late.got.map((m) => [m.payload, m.qos, m.retain])).toEqual([["new", 0, true]]);
  });

  it("clears the retained message with an empty retained payload", async () => {
    const broker = await startBroker();
    const live = await recorder(broker, { protocolVersion });
    await live.c.subscribeAsync("ret/clear", { qos: 1 });
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("ret/clear", "soon gone", { qos: 1, retain: true });
    await publisher.publishAsync("ret/clear", "", { qos: 1, retain: true });
    // The empty message itself is processed as normal and goes to current subscribers [MQTT-3.3.1-10].
    await until(() => live.got.length === 2);
    expect(payloads(live.got)).toEqual(["soon gone", ""]);
    const late = await recorder(broker, { protocolVersion });
    await late.c.subscribeAsync("ret/clear", { qos: 1 });
    await sleep(200);
    expect(late.got).toEqual([]);
  });

  it("downgrades a retained message to the subscription's QoS and never upgrades it", async () => {
    const broker = await startBroker();
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("ret/q/2", "two", { qos: 2, retain: true });
    await publisher.publishAsync("ret/q/1", "one", { qos: 1, retain: true });
    await sleep(50);
    const at1 = await recorder(broker, { protocolVersion });
    await at1.c.subscribeAsync("ret/q/2", { qos: 1 });
    const at0 = await recorder(broker, { protocolVersion });
    await at0.c.subscribeAsync("ret/q/2", { qos: 0 });
    const at2 = await recorder(broker, { protocolVersion });
    await at2.c.subscribeAsync("ret/q/1", { qos: 2 });
    await until(() => at1.got.length === 1 && at0.got.length === 1 && at2.got.length === 1);
    expect([at1.got[0]?.qos, at0.got[0]?.qos, at2.got[0]?.qos]).toEqual([1, 0, 1]);
    expect([at1.got[0]?.retain, at0.got[0]?.retain, at2.got[0]?.retain]).toEqual([
      true,
      true,
      true,
    ]);
  });

  it("sends every retained message a wildcard filter matches", async () => {
    const broker = await startBroker();
    const publisher = await client(broker, { protocolVersion });
    for (const topic of ["w/a/x", "w/b/x", "w/b/y", "w/c", "other/x"])
      await publisher.publishAsync(topic, topic, { qos: 1, retain: true });
    await sleep(50);
    const plus = await recorder(broker, { protocolVersion });
    await plus.c.subscribeAsync("w/+/x", { qos: 1 });
    const hash = await recorder(broker, { protocolVersion });
    await hash.c.subscribeAsync("w/#", { qos: 1 });
    await until(() => plus.got.length >= 2 && hash.got.length >= 4);
    await sleep(100);
    expect(payloads(plus.got).sort()).toEqual(["w/a/x", "w/b/x"]);
    expect(payloads(hash.got).sort()).toEqual(["w/a/x", "w/b/x", "w/b/y", "w/c"]);
    expect(hash.got.every((m) => m.retain)).toBe(true);
  });

  it("does not give '$' topics to filters starting with a wildcard", async () => {
    const broker = await startBroker();
    serverPublish(broker, "$SYS/broker/uptime", "retained sys", 0, true);
    const hash = await recorder(broker, { protocolVersion });
    await hash.c.subscribeAsync("#", { qos: 0 });
    const plus = await recorder(broker, { protocolVersion });
    await plus.c.subscribeAsync("+/broker/+", { qos: 0 });
    const sys = await recorder(broker, { protocolVersion });
    await sys.c.subscribeAsync("$SYS/#", { qos: 0 });
    await until(() => sys.got.length === 1);
    serverPublish(broker, "$SYS/broker/load", "live sys");
    await until(() => sys.got.length === 2);
    await sleep(100);
    // [MQTT-4.7.2-1]
    expect(hash.got).toEqual([]);
    expect(plus.got).toEqual([]);
    expect(sys.got.map((m) => [m.topic, m.retain])).toEqual([
      ["$SYS/broker/uptime", true],
      ["$SYS/broker/load", false],
    ]);
  });

  it("forwards a retained publish to current subscribers with RETAIN=0", async () => {
    const broker = await startBroker();
    const live = await recorder(broker, { protocolVersion });
    await live.c.subscribeAsync("ret/live", { qos: 1 });
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("ret/live", "now", { qos: 1, retain: true });
    await until(() => live.got.length === 1);
    // [MQTT-3.3.1-9] (3.1.1) / [MQTT-3.3.1-12] (5.0, Retain As Published 0)
    expect(live.got[0]?.retain).toBe(false);
  });
});

describe("retained messages, MQTT 3.1.1 only", () => {
  it("stores nothing when retainAvailable is false (routed as a normal message)", async () => {
    const broker = await startBroker({ retainAvailable: false });
    const live = await recorder(broker);
    await live.c.subscribeAsync("ret/none", { qos: 1 });
    const publisher = await client(broker);
    await publisher.publishAsync("ret/none", "not kept", { qos: 1, retain: true });
    await until(() => live.got.length === 1);
    expect(live.got.map((m) => [m.payload, m.retain])).toEqual([["not kept", false]]);
    const late = await recorder(broker);
    await late.c.subscribeAsync("ret/none", { qos: 1 });
    await sleep(200);
    expect(late.got).toEqual([]);
  });
});

describe("retained messages, MQTT 5.0 only", () => {
  it("keeps RETAIN=1 on forwarded messages for Retain As Published subscriptions", async () => {
    const broker = await startBroker();
    const rap = await recorder(broker, { protocolVersion: 5 });
    await rap.c.subscribeAsync("rap/x", { qos: 1, rap: true });
    const plain = await recorder(broker, { protocolVersion: 5 });
    await plain.c.subscribeAsync("rap/x", { qos: 1 });
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("rap/x", "retained", { qos: 1, retain: true });
    await publisher.publishAsync("rap/x", "plain", { qos: 1, retain: false });
    await until(() => rap.got.length === 2 && plain.got.length === 2);
    expect(rap.got.map((m) => [m.payload, m.retain])).toEqual([
      ["retained", true],
      ["plain", false],
    ]);
    expect(plain.got.map((m) => [m.payload, m.retain])).toEqual([
      ["retained", false],
      ["plain", false],
    ]);
  });

  it("honours Retain Handling 0, 1 and 2 on new and repeated subscriptions", async () => {
    const broker = await startBroker();
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("rh/x", "kept", { qos: 1, retain: true });
    await sleep(50);
    const counts: number[] = [];
    for (const rh of [0, 1, 2] as const) {
      const r = await recorder(broker, { protocolVersion: 5 });
      await r.c.subscribeAsync("rh/x", { qos: 1, rh });
      await sleep(100);
      // The same filter again: the subscription exists already.
      await r.c.subscribeAsync("rh/x", { qos: 1, rh });
      await sleep(150);
      expect(r.got.every((m) => m.retain && m.payload === "kept")).toBe(true);
      counts.push(r.got.length);
    }
    // 0: at every subscribe; 1: only when the subscription is new; 2: never (v5 3.8.3.1).
    expect(counts).toEqual([2, 1, 0]);
  });

  it("drops an expired retained message and sends the others with the remaining expiry", async () => {
    const broker = await startBroker();
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("rexp/short", "gone soon", {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 1 },
    });
    await publisher.publishAsync("rexp/long", "still here", {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 20 },
    });
    await sleep(1300);
    const late = await recorder(broker, { protocolVersion: 5 });
    await late.c.subscribeAsync("rexp/#", { qos: 1 });
    await until(() => late.got.length >= 1);
    await sleep(150);
    expect(payloads(late.got)).toEqual(["still here"]);
    // v5 3.3.2.3.3: the interval received is what remains of it.
    expect(late.got[0]?.packet.properties?.messageExpiryInterval).toBe(19);
  });

  it("announces Retain Available 0 and refuses a retained PUBLISH with DISCONNECT 0x9A", async () => {
    const broker = await startBroker({ retainAvailable: false });
    const { raw, connack } = await rawConnected(broker, 5);
    expect(connack.properties?.retainAvailable).toBe(false);
    raw.send({
      type: PacketType.PUBLISH,
      topic: "ret/none",
      payload: new Uint8Array([1]),
      qos: 0,
      retain: true,
      dup: false,
    });
    // v5 3.3.1.3: a retained PUBLISH after Retain Available 0 gets DISCONNECT 0x9A.
    const answer = await raw.next(1000);
    expect(answer).toEqual({ type: PacketType.DISCONNECT, reasonCode: 0x9a });
    await raw.closed;
    const late = await recorder(broker, { protocolVersion: 5 });
    await late.c.subscribeAsync("ret/none", { qos: 1 });
    await sleep(150);
    expect(late.got).toEqual([]);
  });
});
