import { PacketType, type QoS } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import {
  drain,
  expectPacket,
  payloads,
  pub,
  rawConnected,
  rawSubscribe,
  recorder,
  text,
} from "./flow-helpers.js";
import { client, sleep, startBroker, until } from "./helpers.js";

const QOS: QoS[] = [0, 1, 2];

describe.each([4, 5] as const)("QoS flows, MQTT level %i", (protocolVersion) => {
  it("delivers at min(published, granted) QoS and never upgrades", async () => {
    const broker = await startBroker();
    const subs = [];
    for (const granted of QOS) {
      const r = await recorder(broker, { protocolVersion });
      const suback = await r.c.subscribeAsync("m/+", { qos: granted });
      expect(suback[0]?.qos).toBe(granted);
      subs.push(r);
    }
    const publisher = await client(broker, { protocolVersion });
    for (const qos of QOS) await publisher.publishAsync(`m/${qos}`, `q${qos}`, { qos });
    for (const [granted, r] of subs.entries()) {
      await until(() => r.got.length === 3, 3000, `subscriber ${granted}`);
      expect(r.got.map((m) => [m.topic, m.qos])).toEqual(
        QOS.map((qos) => [`m/${qos}`, Math.min(qos, granted)]),
      );
    }
  });

  it("publishes QoS 1 and 2 from the client with the acknowledgement flow", async () => {
    const broker = await startBroker();
    const sub = await recorder(broker, { protocolVersion });
    await sub.c.subscribeAsync("ack/#", { qos: 2 });
    const { raw } = await rawConnected(broker, protocolVersion);
    raw.send(pub("ack/1", "one", 1, { packetId: 11 }));
    expect(await expectPacket(raw, PacketType.PUBACK)).toMatchObject({ packetId: 11 });
    raw.send(pub("ack/2", "two", 2, { packetId: 12 }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({ packetId: 12 });
    raw.send({ type: PacketType.PUBREL, packetId: 12 });
    const pubcomp = await expectPacket(raw, PacketType.PUBCOMP);
    expect(pubcomp.packetId).toBe(12);
    expect(pubcomp.reasonCode ?? 0).toBe(0);
    await until(() => sub.got.length === 2);
    expect(sub.got.map((m) => [m.topic, m.payload, m.qos])).toEqual([
      ["ack/1", "one", 1],
      ["ack/2", "two", 2],
    ]);
  });

  it("sends QoS 1 and 2 to the client and completes the flows on its acks", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, protocolVersion);
    expect(await rawSubscribe(raw, [{ topicFilter: "out/#", qos: 2 }])).toEqual([2]);
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("out/1", "one", { qos: 1 });
    const p1 = await expectPacket(raw, PacketType.PUBLISH);
    expect([p1.topic, text(p1.payload), p1.qos, p1.dup]).toEqual(["out/1", "one", 1, false]);
    raw.send({ type: PacketType.PUBACK, packetId: p1.packetId! });

    await publisher.publishAsync("out/2", "two", { qos: 2 });
    const p2 = await expectPacket(raw, PacketType.PUBLISH);
    expect([p2.topic, text(p2.payload), p2.qos]).toEqual(["out/2", "two", 2]);
    raw.send({ type: PacketType.PUBREC, packetId: p2.packetId! });
    expect(await expectPacket(raw, PacketType.PUBREL)).toMatchObject({ packetId: p2.packetId });
    raw.send({ type: PacketType.PUBCOMP, packetId: p2.packetId! });
    // Fully acknowledged: nothing is sent again.
    expect(await drain(raw, 200)).toEqual([]);
  });

  it("gives a client its own message when it subscribed to the topic", async () => {
    const broker = await startBroker();
    const self = await recorder(broker, { protocolVersion });
    await self.c.subscribeAsync("echo/me", { qos: 1 });
    await self.c.publishAsync("echo/me", "hello myself", { qos: 1 });
    await until(() => self.got.length === 1);
    expect(payloads(self.got)).toEqual(["hello myself"]);
  });

  it("detects a resent QoS 2 PUBLISH: PUBREC each time, delivered once", async () => {
    const broker = await startBroker();
    const sub = await recorder(broker, { protocolVersion });
    await sub.c.subscribeAsync("dup/x", { qos: 2 });
    const { raw } = await rawConnected(broker, protocolVersion);
    raw.send(pub("dup/x", "once", 2, { packetId: 7 }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({ packetId: 7 });
    raw.send(pub("dup/x", "once", 2, { packetId: 7, dup: true }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({ packetId: 7 });
    raw.send(pub("dup/x", "once", 2, { packetId: 7, dup: true }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({ packetId: 7 });
    raw.send({ type: PacketType.PUBREL, packetId: 7 });
    expect(await expectPacket(raw, PacketType.PUBCOMP)).toMatchObject({ packetId: 7 });
    await until(() => sub.got.length >= 1);
    // After PUBREL the id is free again: the same id now carries a new message.
    raw.send(pub("dup/x", "twice", 2, { packetId: 7 }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({ packetId: 7 });
    raw.send({ type: PacketType.PUBREL, packetId: 7 });
    await expectPacket(raw, PacketType.PUBCOMP);
    await until(() => sub.got.length >= 2);
    await drain(raw, 100);
    expect(payloads(sub.got)).toEqual(["once", "twice"]);
  });

  it("answers PUBREL for an unknown packet id with PUBCOMP", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, protocolVersion);
    raw.send({ type: PacketType.PUBREL, packetId: 4242 });
    const pubcomp = await expectPacket(raw, PacketType.PUBCOMP);
    expect(pubcomp.packetId).toBe(4242);
    // 5.0 says why (v5 3.7.2.1: 0x92 Packet Identifier not found); 3.1.1 has no reason code.
    expect(pubcomp.reasonCode ?? 0).toBe(protocolVersion === 5 ? 0x92 : 0);
    expect(raw.isOpen).toBe(true);
  });

  it("resends unacknowledged QoS 1 and 2 deliveries with DUP=1 when the session resumes", async () => {
    const broker = await startBroker();
    const clientId = `resend-${protocolVersion}`;
    const persistent =
      protocolVersion === 5
        ? { clean: false, properties: { sessionExpiryInterval: 60 } }
        : { clean: false };
    const first = await rawConnected(broker, protocolVersion, { clientId, ...persistent });
    await rawSubscribe(first.raw, [{ topicFilter: "resend/#", qos: 2 }]);
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("resend/1", "q1", { qos: 1 });
    await publisher.publishAsync("resend/2", "q2", { qos: 2 });
    const a = await expectPacket(first.raw, PacketType.PUBLISH);
    const b = await expectPacket(first.raw, PacketType.PUBLISH);
    expect([a.qos, a.dup, b.qos, b.dup]).toEqual([1, false, 2, false]);
    // No PUBACK, no PUBREC: the client vanishes.
    first.raw.destroy();
    await first.raw.closed;

    const second = await rawConnected(broker, protocolVersion, { clientId, ...persistent });
    expect(second.connack.sessionPresent).toBe(true);
    const ra = await expectPacket(second.raw, PacketType.PUBLISH);
    const rb = await expectPacket(second.raw, PacketType.PUBLISH);
    expect([ra.topic, text(ra.payload), ra.qos, ra.dup, ra.packetId]).toEqual([
      "resend/1",
      "q1",
      1,
      true,
      a.packetId,
    ]);
    expect([rb.topic, text(rb.payload), rb.qos, rb.dup, rb.packetId]).toEqual([
      "resend/2",
      "q2",
      2,
      true,
      b.packetId,
    ]);
    second.raw.send({ type: PacketType.PUBACK, packetId: ra.packetId! });
    second.raw.send({ type: PacketType.PUBREC, packetId: rb.packetId! });
    expect(await expectPacket(second.raw, PacketType.PUBREL)).toMatchObject({
      packetId: rb.packetId,
    });
  });

  it("sends PUBREL again on resume for a QoS 2 delivery that got PUBREC but no PUBCOMP", async () => {
    const broker = await startBroker();
    const clientId = `pubrel-${protocolVersion}`;
    const persistent =
      protocolVersion === 5
        ? { clean: false, properties: { sessionExpiryInterval: 60 } }
        : { clean: false };
    const first = await rawConnected(broker, protocolVersion, { clientId, ...persistent });
    await rawSubscribe(first.raw, [{ topicFilter: "rel/x", qos: 2 }]);
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("rel/x", "exactly once", { qos: 2 });
    const p = await expectPacket(first.raw, PacketType.PUBLISH);
    first.raw.send({ type: PacketType.PUBREC, packetId: p.packetId! });
    await expectPacket(first.raw, PacketType.PUBREL);
    first.raw.destroy();
    await first.raw.closed;

    const second = await rawConnected(broker, protocolVersion, { clientId, ...persistent });
    expect(second.connack.sessionPresent).toBe(true);
    // [MQTT-4.4.0-1]: the PUBREL is resent, not the PUBLISH.
    expect(await expectPacket(second.raw, PacketType.PUBREL)).toMatchObject({
      packetId: p.packetId,
    });
    second.raw.send({ type: PacketType.PUBCOMP, packetId: p.packetId! });
    expect(await drain(second.raw, 200)).toEqual([]);
  });

  it("replaces a subscription subscribed again with another QoS (one delivery, new QoS)", async () => {
    const broker = await startBroker();
    const sub = await recorder(broker, { protocolVersion });
    await sub.c.subscribeAsync("re/x", { qos: 0 });
    await sub.c.subscribeAsync("re/x", { qos: 2 });
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("re/x", "upgraded", { qos: 2 });
    await sub.c.subscribeAsync("re/x", { qos: 1 });
    await publisher.publishAsync("re/x", "downgraded", { qos: 2 });
    await until(() => sub.got.length >= 2);
    await sleep(150);
    expect(sub.got.map((m) => [m.payload, m.qos])).toEqual([
      ["upgraded", 2],
      ["downgraded", 1],
    ]);
  });

  it("remembers an unreleased inbound QoS 2 id across a reconnect of a persistent session", async () => {
    const broker = await startBroker();
    const sub = await recorder(broker, { protocolVersion });
    await sub.c.subscribeAsync("q2r/x", { qos: 2 });
    const clientId = `q2-in-${protocolVersion}`;
    const persistent =
      protocolVersion === 5
        ? { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }
        : { clientId, clean: false };
    const first = await rawConnected(broker, protocolVersion, persistent);
    first.raw.send(pub("q2r/x", "exactly once", 2, { packetId: 21 }));
    await expectPacket(first.raw, PacketType.PUBREC);
    first.raw.destroy();
    await first.raw.closed;
    const second = await rawConnected(broker, protocolVersion, persistent);
    expect(second.connack.sessionPresent).toBe(true);
    // The client did not see the PUBREC arrive, so it sends the PUBLISH again [MQTT-4.3.3-10].
    second.raw.send(pub("q2r/x", "exactly once", 2, { packetId: 21, dup: true }));
    expect(await expectPacket(second.raw, PacketType.PUBREC)).toMatchObject({ packetId: 21 });
    second.raw.send({ type: PacketType.PUBREL, packetId: 21 });
    const pubcomp = await expectPacket(second.raw, PacketType.PUBCOMP);
    expect(pubcomp.reasonCode ?? 0).toBe(0);
    await sleep(150);
    expect(payloads(sub.got)).toEqual(["exactly once"]);
  });

  it("hands unacknowledged deliveries to the connection that takes the session over", async () => {
    const broker = await startBroker();
    const clientId = `takeover-${protocolVersion}`;
    const persistent =
      protocolVersion === 5
        ? { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }
        : { clientId, clean: false };
    const first = await rawConnected(broker, protocolVersion, persistent);
    await rawSubscribe(first.raw, [{ topicFilter: "to/#", qos: 1 }]);
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("to/x", "unacked", { qos: 1 });
    const original = await expectPacket(first.raw, PacketType.PUBLISH);
    const second = await rawConnected(broker, protocolVersion, persistent);
    expect(second.connack.sessionPresent).toBe(true);
    const resent = await expectPacket(second.raw, PacketType.PUBLISH);
    expect([text(resent.payload), resent.dup, resent.packetId]).toEqual([
      "unacked",
      true,
      original.packetId,
    ]);
    // The old connection is closed (5.0: told with 0x8E Session taken over).
    const last = await first.raw.next();
    if (protocolVersion === 5) {
      expect(last).toEqual({ type: PacketType.DISCONNECT, reasonCode: 0x8e });
      expect(await first.raw.next()).toBeNull();
    } else {
      expect(last).toBeNull();
    }
  });

  it("delivers once, at the highest granted QoS, to overlapping subscriptions", async () => {
    const broker = await startBroker();
    const sub = await recorder(broker, { protocolVersion });
    await sub.c.subscribeAsync({ "ov/+": { qos: 0 }, "ov/#": { qos: 2 }, "ov/a": { qos: 1 } });
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("ov/a", "first", { qos: 2 });
    await publisher.publishAsync("ov/b", "second", { qos: 1 });
    await until(() => sub.got.length >= 2);
    await sleep(150);
    expect(sub.got.map((m) => [m.topic, m.payload, m.qos])).toEqual([
      ["ov/a", "first", 2],
      ["ov/b", "second", 1],
    ]);
  });
});
