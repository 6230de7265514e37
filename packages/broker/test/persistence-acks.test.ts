// "Acknowledge only what is stored": with a storage whose commits are held back, the acks that
// depend on a write wait (and keep their order); acks that depend on nothing do not. With a
// storage that fails, the connection waiting for the write is closed without its ack.
import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { getBroker } from "../src/index.js";
import { drain, expectPacket, pub, rawConnected, rawSubscribe, recorder } from "./flow-helpers.js";
import { client, onCleanup, RawClient, sleep, until } from "./helpers.js";
import {
  FailingStorage,
  GatedStorage,
  persistentFields,
  persistentOptions,
  type RunningBroker,
  startWith,
  within,
} from "./persistence-helpers.js";

/** A broker on a GatedStorage; the gate is opened before the broker stops (or close would wait). */
async function gatedBroker(): Promise<{ broker: RunningBroker; storage: GatedStorage }> {
  const storage = new GatedStorage();
  const broker = await startWith({}, () => storage);
  // Cleanups run last registered first: the gate opens before ctx.exit flushes the storage.
  onCleanup(() => storage.openGate());
  return { broker, storage };
}

const packetIds = (packets: { type: number; packetId?: number }[], type: number): number[] =>
  packets.filter((p) => p.type === type).map((p) => p.packetId ?? -1);

describe.each([4, 5] as const)("acknowledgements wait for storage, MQTT level %i", (v) => {
  it("PUBACK, SUBACK and CONNACK of stored state wait for the commit; PUBACKs keep their order", async () => {
    const { broker, storage } = await gatedBroker();
    // A persistent subscriber that is away, and one that is online.
    const away = await recorder(broker, persistentOptions(v, `away-${v}`));
    await within(away.c.subscribeAsync("g/off/#", { qos: 1 }), 3000, "SUBACK");
    await within(away.c.endAsync(), 3000, "DISCONNECT");
    const online = await recorder(broker, persistentOptions(v, `online-${v}`));
    await within(online.c.subscribeAsync("g/on/#", { qos: 1 }), 3000, "SUBACK");
    // A persistent session that will subscribe while the gate is closed.
    const subscriber = await rawConnected(broker, v, persistentFields(v, `late-sub-${v}`));
    // The publisher is a clean session: nothing of its own is stored.
    const publisher = await rawConnected(broker, v, { clientId: `gp-${v}`, clean: true });

    storage.closeGate();
    publisher.raw.send(pub("g/off/a", "to the away session", 1, { packetId: 1 }));
    // Nobody persistent subscribes to this one: its ack needs no write, but must not overtake.
    publisher.raw.send(pub("g/none", "to nobody", 1, { packetId: 2 }));
    publisher.raw.send(pub("g/on/a", "to the online session", 1, { packetId: 3 }));
    subscriber.raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 9,
      subscriptions: [{ topicFilter: "g/late/#", qos: 1 }],
    });
    const connecting = await RawClient.connect(broker, v);
    connecting.send({
      type: PacketType.CONNECT,
      keepAlive: 60,
      ...persistentFields(v, `late-conn-${v}`),
    } as Parameters<RawClient["send"]>[0]);
    // A clean client publishing where no persistent session listens is acknowledged at once.
    const bystander = await rawConnected(broker, v, { clientId: `by-${v}`, clean: true });
    bystander.raw.send(pub("g/none", "bystander", 1, { packetId: 44 }));
    const ack = await expectPacket(bystander.raw, PacketType.PUBACK, 2000);
    expect(ack.packetId).toBe(44);

    await until(() => storage.waiting > 0, 2000, "a commit waiting at the gate");
    await sleep(150);
    expect(publisher.raw.packets).toEqual([]);
    expect(subscriber.raw.packets).toEqual([]);
    expect(connecting.packets).toEqual([]);
    // The online persistent subscriber got its message: delivery is not acknowledgement.
    await until(() => online.got.length === 1, 2000, "the online delivery");

    storage.openGate();
    const acks: number[] = [];
    for (let i = 0; i < 3; i++)
      acks.push((await expectPacket(publisher.raw, PacketType.PUBACK)).packetId);
    // [MQTT-4.6.0-2]: PUBACKs in the order the PUBLISHes came.
    expect(acks).toEqual([1, 2, 3]);
    const suback = await expectPacket(subscriber.raw, PacketType.SUBACK);
    expect([suback.packetId, suback.reasonCodes]).toEqual([9, [1]]);
    const connack = await expectPacket(connecting, PacketType.CONNACK);
    expect([connack.reasonCode, connack.sessionPresent]).toEqual([0, false]);
    // And they are stored now.
    const state = await storage.readAll();
    const away0 = state.clients.find((c) => c.clientId === `away-${v}`)!;
    expect(away0.deliveries.map((d) => d.message.topic)).toEqual(["g/off/a"]);
    const late = state.clients.find((c) => c.clientId === `late-sub-${v}`)!;
    expect(late.subscriptions.map((s) => s.filter)).toEqual(["g/late/#"]);
    expect(state.clients.some((c) => c.clientId === `late-conn-${v}`)).toBe(true);
  });

  it("a resuming persistent session gets nothing before its CONNACK while the session is stored", async () => {
    const { broker, storage } = await gatedBroker();
    const fields = persistentFields(v, `pre-${v}`);
    const first = await rawConnected(broker, v, fields);
    await rawSubscribe(first.raw, [{ topicFilter: "pre/#", qos: 1 }]);
    first.raw.send({ type: PacketType.DISCONNECT, reasonCode: 0 });
    await within(first.raw.closed, 3000, "close after DISCONNECT");
    await until(() => !getBroker(broker.ctx).connections.has(`pre-${v}`), 3000, "gone");

    storage.closeGate();
    const back = await RawClient.connect(broker, v);
    back.send({ type: PacketType.CONNECT, keepAlive: 60, ...fields } as Parameters<
      RawClient["send"]
    >[0]);
    await until(() => storage.waiting > 0, 2000, "the session write waiting at the gate");
    // Published while the CONNACK waits for storage.
    const publisher = await rawConnected(broker, v, { clientId: `pre-pub-${v}`, clean: true });
    publisher.raw.send(pub("pre/a", "early zero", 0));
    publisher.raw.send(pub("pre/b", "early one", 1, { packetId: 1 }));
    await sleep(150);
    storage.openGate();
    await expectPacket(publisher.raw, PacketType.PUBACK);
    // [MQTT-3.2.0-1]: the first packet the server sends is the CONNACK.
    const connack = await expectPacket(back, PacketType.CONNACK);
    expect([connack.reasonCode, connack.sessionPresent]).toEqual([0, true]);
    const after = await drain(back, 200);
    const publishes = after.filter((p) => p.type === PacketType.PUBLISH);
    // Each message once; the QoS 1 one is not a resend.
    expect(publishes.map((p) => [p.topic, p.dup])).toEqual([
      ["pre/a", false],
      ["pre/b", false],
    ]);
  });

  it("UNSUBACK of a persistent session waits for the commit", async () => {
    const { broker, storage } = await gatedBroker();
    const s = await rawConnected(broker, v, persistentFields(v, `unsub-gate-${v}`));
    await rawSubscribe(s.raw, [{ topicFilter: "ug/#", qos: 1 }]);
    storage.closeGate();
    s.raw.send({ type: PacketType.UNSUBSCRIBE, packetId: 12, topicFilters: ["ug/#"] });
    await until(() => storage.waiting > 0, 2000, "the unsubscribe waiting at the gate");
    await sleep(100);
    expect(s.raw.packets).toEqual([]);
    storage.openGate();
    const unsuback = await expectPacket(s.raw, PacketType.UNSUBACK);
    expect(unsuback.packetId).toBe(12);
    expect((await storage.readClient(`unsub-gate-${v}`))?.subscriptions).toEqual([]);
  });

  it("a clean session's traffic is never held by a closed gate", async () => {
    const { broker, storage } = await gatedBroker();
    storage.closeGate();
    // CONNECT, SUBSCRIBE, QoS 1 and QoS 2 PUBLISH, PUBREL of clean sessions: nothing to store.
    const c = await within(client(broker, { protocolVersion: v }), 3000, "CONNACK");
    await within(c.subscribeAsync("free/#", { qos: 2 }), 3000, "SUBACK");
    await within(c.publishAsync("free/a", "one", { qos: 1 }), 3000, "PUBACK");
    await within(c.publishAsync("free/b", "two", { qos: 2 }), 3000, "PUBCOMP");
    expect(storage.commits).toBe(0);
  });

  it("PUBREC of a persistent publisher's QoS 2 message waits for its stored packet id", async () => {
    const { broker, storage } = await gatedBroker();
    const publisher = await rawConnected(broker, v, persistentFields(v, `q2p-${v}`));
    storage.closeGate();
    publisher.raw.send(pub("q2/x", "held", 2, { packetId: 5 }));
    await until(() => storage.waiting > 0, 2000, "the QoS 2 id waiting at the gate");
    await sleep(100);
    expect(publisher.raw.packets).toEqual([]);
    storage.openGate();
    const rec = await expectPacket(publisher.raw, PacketType.PUBREC);
    expect(rec.packetId).toBe(5);
    expect((await storage.readClient(`q2p-${v}`))?.incomingQoS2).toEqual([5]);
    // PUBCOMP waits for the release of the id.
    storage.closeGate();
    publisher.raw.send({ type: PacketType.PUBREL, packetId: 5 });
    await until(() => storage.waiting > 0, 2000, "the release waiting at the gate");
    await sleep(100);
    expect(publisher.raw.packets).toEqual([]);
    storage.openGate();
    const comp = await expectPacket(publisher.raw, PacketType.PUBCOMP);
    expect([comp.packetId, comp.reasonCode ?? 0]).toEqual([5, 0]);
    expect((await storage.readClient(`q2p-${v}`))?.incomingQoS2).toEqual([]);
  });

  it("PUBREL to a persistent subscriber waits for its stored 'pubrel' state", async () => {
    // Sent before, a crash in between made the restarted broker resend the PUBLISH, which a
    // client that had released the id on PUBREL takes as a new message: QoS 2 twice.
    const { broker, storage } = await gatedBroker();
    const subscriber = await rawConnected(broker, v, persistentFields(v, `q2s-${v}`));
    expect(await rawSubscribe(subscriber.raw, [{ topicFilter: "q2s/#", qos: 2 }])).toEqual([2]);
    const publisher = await client(broker, { protocolVersion: v });
    await within(publisher.publishAsync("q2s/x", "once", { qos: 2 }), 3000, "the publish");
    const p = await expectPacket(subscriber.raw, PacketType.PUBLISH);
    await until(() => storage.waiting === 0, 2000, "the delivery stored");
    storage.closeGate();
    subscriber.raw.send({ type: PacketType.PUBREC, packetId: p.packetId! });
    await until(() => storage.waiting > 0, 2000, "the 'pubrel' state waiting at the gate");
    await sleep(100);
    expect(subscriber.raw.packets).toEqual([]);
    storage.openGate();
    const rel = await expectPacket(subscriber.raw, PacketType.PUBREL);
    expect(rel.packetId).toBe(p.packetId);
    const stored = await storage.readClient(`q2s-${v}`);
    expect(stored?.deliveries.map((d) => [d.state, d.packetId])).toEqual([["pubrel", p.packetId]]);
  });
});

describe.each([4, 5] as const)("a failing storage, MQTT level %i", (v) => {
  it("closes the publisher without PUBACK, logs CRITICAL, and the other connections keep working", async () => {
    const storage = new FailingStorage();
    const broker = await startWith({}, () => storage);
    const away = await recorder(broker, persistentOptions(v, `f-away-${v}`));
    await within(away.c.subscribeAsync("f/#", { qos: 1 }), 3000, "SUBACK");
    await within(away.c.endAsync(), 3000, "DISCONNECT");
    const other = await recorder(broker, { protocolVersion: v });
    await within(other.c.subscribeAsync("ok/#", { qos: 1 }), 3000, "SUBACK");
    const publisher = await rawConnected(broker, v, { clientId: `f-pub-${v}`, clean: true });

    storage.failing = true;
    publisher.raw.send(pub("f/x", "cannot be stored", 1, { packetId: 1 }));
    await within(publisher.raw.closed, 3000, "the publisher closed");
    const packets = publisher.raw.packets.splice(0);
    expect(packetIds(packets, PacketType.PUBACK)).toEqual([]);
    if (v === 5) {
      // Told why before the close: 0x80 Unspecified error.
      expect(packets).toEqual([{ type: PacketType.DISCONNECT, reasonCode: 0x80 }]);
    } else {
      expect(packets).toEqual([]);
    }
    await until(
      () => broker.logs.some((l) => l.startsWith("critical") && /storage/.test(l)),
      2000,
      "a CRITICAL storage log line",
    );

    // The rest of the broker goes on: a clean client's round trip, a new connection.
    await within(other.c.publishAsync("ok/x", "still fine", { qos: 1 }), 3000, "PUBACK");
    await until(() => other.got.length === 1, 3000, "the round trip");
    const fresh = await within(client(broker, { protocolVersion: v }), 3000, "CONNACK");
    await within(fresh.publishAsync("ok/y", "new connection", { qos: 1 }), 3000, "PUBACK");
    await until(() => other.got.length === 2, 3000, "the second round trip");
    expect(getBroker(broker.ctx).connections.has(`f-pub-${v}`)).toBe(false);
  });

  it("a persistent SUBSCRIBE or CONNECT that cannot be stored is not acknowledged", async () => {
    const storage = new FailingStorage();
    const broker = await startWith({}, () => storage);
    const subscriber = await rawConnected(broker, v, persistentFields(v, `f-sub-${v}`));
    storage.failing = true;
    await rawSubscribe(subscriber.raw, [{ topicFilter: "never/#", qos: 1 }]).then(
      () => expect.fail("a SUBACK for a subscription that was not stored"),
      () => {},
    );
    await within(subscriber.raw.closed, 3000, "the subscriber closed");
    expect(packetIds(subscriber.raw.packets, PacketType.SUBACK)).toEqual([]);

    const connecting = await RawClient.connect(broker, v);
    const connack = await connecting.connect({
      keepAlive: 60,
      ...persistentFields(v, `f-conn-${v}`),
    });
    // Refused: Server unavailable (3), or 0x88 in 5.0.
    expect(connack?.type).toBe(PacketType.CONNACK);
    expect((connack as { reasonCode: number }).reasonCode).toBe(v === 5 ? 0x88 : 3);
    await within(connecting.closed, 3000, "the refused connection closed");
    // Nothing after a refusing CONNACK: in 5.0 no DISCONNECT either [MQTT-3.14.0-1], the
    // connection was never accepted.
    expect(await drain(connecting, 0)).toEqual([]);
  });
});
