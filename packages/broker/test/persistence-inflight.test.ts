// QoS 1/2 flows that a restart interrupts, both ways: deliveries the client had not acknowledged
// are resent with DUP (or continued with PUBREL), and a QoS 2 message the broker had received
// (PUBREC sent) is not delivered a second time when the client resends it.
import { PacketType, type PublishPacket } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { getBroker } from "../src/index.js";
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
import { client, sleep, until } from "./helpers.js";
import { connackOf } from "./lifecycle-support.js";
import {
  fileBroker,
  persistentFields,
  persistentOptions,
  tempDir,
  within,
} from "./persistence-helpers.js";

const view = (p: PublishPacket): unknown[] => [p.topic, text(p.payload), p.qos, p.packetId];

describe.each([4, 5] as const)("in-flight messages across a restart, MQTT level %i", (v) => {
  it("resends unacknowledged QoS 1 and QoS 2 messages with DUP 1 and the same content", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const fields = persistentFields(v, `unacked-${v}`);
    const sub = await rawConnected(first, v, fields);
    await rawSubscribe(sub.raw, [{ topicFilter: "if/#", qos: 2 }]);
    const publisher = await client(first, { protocolVersion: v });
    const props = v === 5 ? { properties: { contentType: "text/plain" } } : {};
    // The publisher's acks wait for the stored in-flight state.
    await within(publisher.publishAsync("if/a", "one", { qos: 1, ...props }), 3000, "PUBACK");
    await within(publisher.publishAsync("if/b", "two", { qos: 2, ...props }), 3000, "PUBCOMP");
    const p1 = await expectPacket(sub.raw, PacketType.PUBLISH);
    const p2 = await expectPacket(sub.raw, PacketType.PUBLISH);
    expect([view(p1), view(p2)].map((x) => x.slice(0, 3))).toEqual([
      ["if/a", "one", 1],
      ["if/b", "two", 2],
    ]);
    expect(p1.dup || p2.dup).toBe(false);
    // Neither is acknowledged.
    await first.stop();
    await within(sub.raw.closed, 3000, "the old connection closed");

    const second = await fileBroker(dir);
    const back = await rawConnected(second, v, fields);
    expect(back.connack.sessionPresent).toBe(true);
    const r1 = await expectPacket(back.raw, PacketType.PUBLISH);
    const r2 = await expectPacket(back.raw, PacketType.PUBLISH);
    // [MQTT-4.4.0-1]: resent with DUP and the original packet identifiers.
    expect([view(r1), view(r2)]).toEqual([view(p1), view(p2)]);
    expect([r1.dup, r2.dup]).toEqual([true, true]);
    if (v === 5) {
      expect(r1.properties?.contentType).toBe("text/plain");
      expect(r2.properties?.contentType).toBe("text/plain");
    }
    back.raw.send({ type: PacketType.PUBACK, packetId: r1.packetId! });
    back.raw.send({ type: PacketType.PUBREC, packetId: r2.packetId! });
    const rel = await expectPacket(back.raw, PacketType.PUBREL);
    expect(rel.packetId).toBe(r2.packetId);
    back.raw.send({ type: PacketType.PUBCOMP, packetId: r2.packetId! });
    const session = getBroker(second.ctx).sessions.get(`unacked-${v}`)!;
    await until(() => session.inflightCount === 0, 3000, "the flows completed");
    expect(await drain(back.raw, 100)).toEqual([]);
    // The restored messages were counted against maxTotalMessageBytes, and are no longer.
    expect(getBroker(second.ctx).memory.bytes).toBe(0);
    await second.stop();

    // The acknowledgements were stored: a third start has nothing to resend.
    const third = await fileBroker(dir);
    const last = await rawConnected(third, v, fields);
    expect(last.connack.sessionPresent).toBe(true);
    expect(await drain(last.raw, 200)).toEqual([]);
  });

  it("continues a QoS 2 delivery whose PUBREC came before the restart with PUBREL", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const fields = persistentFields(v, `half-${v}`);
    const sub = await rawConnected(first, v, fields);
    await rawSubscribe(sub.raw, [{ topicFilter: "hf/#", qos: 2 }]);
    const publisher = await client(first, { protocolVersion: v });
    await within(publisher.publishAsync("hf/x", "half way", { qos: 2 }), 3000, "PUBCOMP");
    const p = await expectPacket(sub.raw, PacketType.PUBLISH);
    expect(p.qos).toBe(2);
    sub.raw.send({ type: PacketType.PUBREC, packetId: p.packetId! });
    const rel = await expectPacket(sub.raw, PacketType.PUBREL);
    expect(rel.packetId).toBe(p.packetId);
    // No PUBCOMP: the restart comes between PUBREL and PUBCOMP.
    await first.stop();

    const second = await fileBroker(dir);
    const back = await rawConnected(second, v, fields);
    expect(back.connack.sessionPresent).toBe(true);
    // [MQTT-4.4.0-1]: the PUBREL is resent, not the PUBLISH (the client has the message).
    const again = await expectPacket(back.raw, PacketType.PUBREL);
    expect(again.packetId).toBe(p.packetId);
    back.raw.send({ type: PacketType.PUBCOMP, packetId: p.packetId! });
    const session = getBroker(second.ctx).sessions.get(`half-${v}`)!;
    await until(() => session.inflightCount === 0, 3000, "the flow completed");
    expect(await drain(back.raw, 100)).toEqual([]);
    await second.stop();

    const third = await fileBroker(dir);
    const last = await rawConnected(third, v, fields);
    expect(last.connack.sessionPresent).toBe(true);
    expect(await drain(last.raw, 200)).toEqual([]);
  });

  it("a QoS 2 PUBLISH received before the restart and resent after it is delivered once; PUBREL gets PUBCOMP 0", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const watcherOptions = persistentOptions(v, `in-watch-${v}`);
    const w1 = await recorder(first, watcherOptions);
    await within(w1.c.subscribeAsync("in/#", { qos: 1 }), 3000, "SUBACK");
    const pubFields = persistentFields(v, `in-pub-${v}`);
    const a = await rawConnected(first, v, pubFields);
    a.raw.send(pub("in/x", "once", 2, { packetId: 7 }));
    const rec = await expectPacket(a.raw, PacketType.PUBREC);
    expect([rec.packetId, rec.reasonCode ?? 0]).toEqual([7, 0]);
    await until(() => w1.got.length === 1, 3000, "the first delivery");
    // The watcher's PUBACK is processed, so nothing is left to resend to it.
    const watchSession = getBroker(first.ctx).sessions.get(`in-watch-${v}`)!;
    await until(() => watchSession.inflightCount === 0, 3000, "the watcher's PUBACK");
    await first.stop();
    await within(a.raw.closed, 3000, "the publisher's old connection closed");

    const second = await fileBroker(dir);
    const w2 = await recorder(second, watcherOptions);
    expect(connackOf(w2.c)?.sessionPresent).toBe(true);
    const b = await rawConnected(second, v, pubFields);
    expect(b.connack.sessionPresent).toBe(true);
    // [MQTT-4.3.3-10]: the resend is acknowledged again and not delivered again.
    b.raw.send(pub("in/x", "once", 2, { packetId: 7, dup: true }));
    const rec2 = await expectPacket(b.raw, PacketType.PUBREC);
    expect([rec2.packetId, rec2.reasonCode ?? 0]).toEqual([7, 0]);
    b.raw.send({ type: PacketType.PUBREL, packetId: 7 });
    const comp = await expectPacket(b.raw, PacketType.PUBCOMP);
    // 0, not 0x92 Packet Identifier not found: the id was restored from storage.
    expect([comp.packetId, comp.reasonCode ?? 0]).toEqual([7, 0]);
    // Released: id 7 now carries a new message, which is delivered.
    b.raw.send(pub("in/x", "new", 2, { packetId: 7 }));
    await expectPacket(b.raw, PacketType.PUBREC);
    b.raw.send({ type: PacketType.PUBREL, packetId: 7 });
    await expectPacket(b.raw, PacketType.PUBCOMP);
    await until(() => w2.got.length >= 1, 3000, "the new message");
    await sleep(100);
    expect([...payloads(w1.got), ...payloads(w2.got)]).toEqual(["once", "new"]);
  });
});
