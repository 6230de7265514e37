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
  receivePublishes,
  recorder,
  text,
} from "./flow-helpers.js";
import { client, sleep, startBroker, until } from "./helpers.js";

/** Topic, alias and payload of a received PUBLISH. */
const aliasView = (p: PublishPacket): [string, number | undefined, string] => [
  p.topic,
  p.properties?.topicAlias,
  text(p.payload),
];

describe("MQTT 5.0 topic aliases", () => {
  it("resolves inbound aliases: set with a topic, then used with an empty topic", async () => {
    const broker = await startBroker();
    const sub = await recorder(broker, { protocolVersion: 5 });
    await sub.c.subscribeAsync("alias/#", { qos: 1 });
    const { raw } = await rawConnected(broker, 5);
    raw.send(pub("alias/t", "set", 0, { properties: { topicAlias: 3 } }));
    raw.send(pub("", "used", 1, { packetId: 5, properties: { topicAlias: 3 } }));
    expect(await expectPacket(raw, PacketType.PUBACK)).toMatchObject({ packetId: 5 });
    // Re-pointing an alias is allowed (v5 3.3.2.3.4).
    raw.send(pub("alias/u", "moved", 0, { properties: { topicAlias: 3 } }));
    raw.send(pub("", "used again", 0, { properties: { topicAlias: 3 } }));
    await until(() => sub.got.length === 4);
    expect(sub.got.map((m) => [m.topic, m.payload])).toEqual([
      ["alias/t", "set"],
      ["alias/t", "used"],
      ["alias/u", "moved"],
      ["alias/u", "used again"],
    ]);
    expect(raw.isOpen).toBe(true);
  });

  it("retains a message published through an alias under its real topic", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5);
    raw.send(pub("alias/ret", "first", 0, { properties: { topicAlias: 1 } }));
    raw.send(pub("", "kept", 1, { packetId: 2, retain: true, properties: { topicAlias: 1 } }));
    await expectPacket(raw, PacketType.PUBACK);
    const late = await recorder(broker, { protocolVersion: 4 });
    await late.c.subscribeAsync("alias/#", { qos: 1 });
    await until(() => late.got.length === 1);
    expect(late.got.map((m) => [m.topic, m.payload, m.retain])).toEqual([
      ["alias/ret", "kept", true],
    ]);
  });

  it("disconnects with 0x94 a client using an alias above the Topic Alias Maximum", async () => {
    const broker = await startBroker({ topicAliasMaximum: 5 });
    const { raw, connack } = await rawConnected(broker, 5);
    expect(connack.properties?.topicAliasMaximum).toBe(5);
    raw.send(pub("alias/ok", "fine", 0, { properties: { topicAlias: 5 } }));
    raw.send(pub("alias/big", "too far", 0, { properties: { topicAlias: 6 } }));
    expect(await raw.next()).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x94 });
    await raw.closed;
  });

  it("disconnects with 0x94 any alias when topicAliasMaximum is 0", async () => {
    const broker = await startBroker({ topicAliasMaximum: 0 });
    const { raw, connack } = await rawConnected(broker, 5);
    // v5 3.2.2.3.8: absent means 0, no aliases accepted.
    expect(connack.properties?.topicAliasMaximum ?? 0).toBe(0);
    raw.send(pub("alias/x", "no", 0, { properties: { topicAlias: 1 } }));
    expect(await raw.next()).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x94 });
    await raw.closed;
  });

  it("disconnects with 0x82 a client using an alias it never set", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5);
    raw.send(pub("", "who knows", 0, { properties: { topicAlias: 2 } }));
    expect(await raw.next()).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x82 });
    await raw.closed;
  });

  it("sends outbound aliases to a client that accepts them", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5, { properties: { topicAliasMaximum: 4 } });
    await rawSubscribe(raw, [{ topicFilter: "oa/#", qos: 1 }]);
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("oa/x", "1", { qos: 0 });
    await publisher.publishAsync("oa/x", "2", { qos: 1 });
    await publisher.publishAsync("oa/y", "3", { qos: 1 });
    await publisher.publishAsync("oa/x", "4", { qos: 0 });
    const got = await receivePublishes(raw, 4);
    expect(got.map(aliasView)).toEqual([
      ["oa/x", 1, "1"],
      ["", 1, "2"],
      ["oa/y", 2, "3"],
      ["", 1, "4"],
    ]);
  });

  it("never uses more outbound aliases than the client's Topic Alias Maximum", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5, { properties: { topicAliasMaximum: 1 } });
    await rawSubscribe(raw, [{ topicFilter: "few/#", qos: 0 }]);
    const publisher = await client(broker, { protocolVersion: 5 });
    for (const t of ["a", "b", "a", "b"]) await publisher.publishAsync(`few/${t}`, t);
    const got = await receivePublishes(raw, 4);
    expect(got.map(aliasView)).toEqual([
      ["few/a", 1, "a"],
      ["few/b", undefined, "b"],
      ["", 1, "a"],
      ["few/b", undefined, "b"],
    ]);
  });

  it("sends no aliases to clients that did not ask, nor when outboundTopicAliases is false", async () => {
    const plainBroker = await startBroker();
    const offBroker = await startBroker({ outboundTopicAliases: false });
    const plain = await rawConnected(plainBroker, 5);
    const off = await rawConnected(offBroker, 5, { properties: { topicAliasMaximum: 8 } });
    for (const [b, r] of [
      [plainBroker, plain.raw],
      [offBroker, off.raw],
    ] as const) {
      await rawSubscribe(r, [{ topicFilter: "na/x", qos: 0 }]);
      const publisher = await client(b, { protocolVersion: 5 });
      await publisher.publishAsync("na/x", "1");
      await publisher.publishAsync("na/x", "2");
      const got = await receivePublishes(r, 2);
      expect(got.map(aliasView)).toEqual([
        ["na/x", undefined, "1"],
        ["na/x", undefined, "2"],
      ]);
    }
  });

  it("lets MQTT.js resolve the outbound aliases it asked for", async () => {
    const broker = await startBroker();
    const sub = await recorder(broker, {
      protocolVersion: 5,
      properties: { topicAliasMaximum: 10 },
    });
    await sub.c.subscribeAsync("mj/#", { qos: 1 });
    const publisher = await client(broker, { protocolVersion: 5 });
    for (const t of ["a", "a", "b", "a", "b"])
      await publisher.publishAsync(`mj/${t}`, t, { qos: 1 });
    await until(() => sub.got.length === 5);
    expect(sub.got.map((m) => [m.topic, m.payload])).toEqual([
      ["mj/a", "a"],
      ["mj/a", "a"],
      ["mj/b", "b"],
      ["mj/a", "a"],
      ["mj/b", "b"],
    ]);
  });

  it("does not use an alias that was only assigned to a message dropped as too large", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5, {
      properties: { topicAliasMaximum: 4, maximumPacketSize: 128 },
    });
    await rawSubscribe(raw, [{ topicFilter: "drop/#", qos: 0 }]);
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("drop/t", "x".repeat(400)); // too large for the client
    await publisher.publishAsync("drop/t", "small");
    const [p] = await receivePublishes(raw, 1);
    // The client never saw the alias being set, so the topic must be there [MQTT-3.3.2-12].
    expect(p?.topic).toBe("drop/t");
    expect(text(p!.payload)).toBe("small");
  });
});

describe("MQTT 5.0 subscription options and identifiers", () => {
  it("puts every matching subscription's identifier on the delivery", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5);
    await rawSubscribe(raw, [{ topicFilter: "si/+", qos: 1 }], { subscriptionIdentifier: 5 });
    await rawSubscribe(raw, [{ topicFilter: "si/#", qos: 0 }], { subscriptionIdentifier: 700 });
    await rawSubscribe(raw, [{ topicFilter: "si/only", qos: 0 }]);
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("si/a", "both", { qos: 1 });
    await publisher.publishAsync("si/a/b", "hash only", { qos: 1 });
    await publisher.publishAsync("si/only", "three subscriptions", { qos: 1 });
    const got = await receivePublishes(raw, 3);
    expect(
      got.map((p) => [
        text(p.payload),
        p.qos,
        [...(p.properties?.subscriptionIdentifiers ?? [])].sort((x, y) => x - y),
      ]),
    ).toEqual([
      ["both", 1, [5, 700]],
      ["hash only", 0, [700]],
      ["three subscriptions", 1, [5, 700]],
    ]);
    expect(await drain(raw, 100)).toEqual([]);
  });

  it("sends the subscription identifier with retained messages on subscribe", async () => {
    const broker = await startBroker();
    const publisher = await client(broker, { protocolVersion: 5 });
    await publisher.publishAsync("sir/x", "kept", { qos: 1, retain: true });
    const { raw } = await rawConnected(broker, 5);
    await rawSubscribe(raw, [{ topicFilter: "sir/#", qos: 1 }], { subscriptionIdentifier: 42 });
    const [p] = await receivePublishes(raw, 1);
    expect([p?.retain, p?.properties?.subscriptionIdentifiers]).toEqual([true, [42]]);
  });

  it("does not send a No Local subscriber its own messages", async () => {
    const broker = await startBroker();
    const self = await recorder(broker, { protocolVersion: 5 });
    await self.c.subscribeAsync("nl/x", { qos: 1, nl: true });
    const other = await recorder(broker, { protocolVersion: 5 });
    await other.c.subscribeAsync("nl/x", { qos: 1, nl: true });
    await self.c.publishAsync("nl/x", "from self", { qos: 1 });
    await other.c.publishAsync("nl/x", "from other", { qos: 1 });
    await until(() => self.got.length >= 1 && other.got.length >= 1);
    await sleep(150);
    expect(payloads(self.got)).toEqual(["from other"]);
    expect(payloads(other.got)).toEqual(["from self"]);
  });
});

describe("MQTT 5.0 message properties", () => {
  it("passes user properties, format, content type, response topic and correlation data unchanged", async () => {
    const broker = await startBroker();
    const sub = await rawConnected(broker, 5);
    await rawSubscribe(sub.raw, [{ topicFilter: "props/x", qos: 2 }]);
    const { raw } = await rawConnected(broker, 5);
    const properties = {
      payloadFormatIndicator: 1 as const,
      contentType: "text/plain; charset=utf-8",
      responseTopic: "props/reply",
      correlationData: Uint8Array.from([0, 1, 254, 255]),
      userProperties: [
        ["k", "1"],
        ["other", "x"],
        ["k", "2"],
      ] as [string, string][],
    };
    for (const qos of [0, 1, 2] as const) {
      raw.send(pub("props/x", `q${qos}`, qos, { packetId: 9 + qos, properties }));
      if (qos === 1) await expectPacket(raw, PacketType.PUBACK);
      if (qos === 2) {
        await expectPacket(raw, PacketType.PUBREC);
        raw.send({ type: PacketType.PUBREL, packetId: 11 });
      }
    }
    const got = await receivePublishes(sub.raw, 3);
    for (const p of got) {
      const cd = p.properties?.correlationData;
      // Compared as plain bytes (the decoder hands over Buffer views).
      expect({ ...p.properties, correlationData: cd && Uint8Array.from(cd) }).toEqual(properties);
    }
    expect(got.map((p) => text(p.payload))).toEqual(["q0", "q1", "q2"]);
  });

  it("carries a request/response exchange between two MQTT.js clients", async () => {
    const broker = await startBroker();
    const responder = await client(broker, { protocolVersion: 5 });
    await responder.subscribeAsync("svc/echo", { qos: 1 });
    responder.on("message", (_topic, payload, packet) => {
      const rt = packet.properties?.responseTopic;
      if (rt === undefined) return;
      const cd = packet.properties?.correlationData;
      responder.publish(rt, `echo:${payload.toString()}`, {
        qos: 1,
        ...(cd === undefined ? {} : { properties: { correlationData: cd } }),
      });
    });
    const requester = await recorder(broker, { protocolVersion: 5 });
    await requester.c.subscribeAsync("svc/replies/me", { qos: 1 });
    for (const id of ["r1", "r2"]) {
      await requester.c.publishAsync("svc/echo", `hello ${id}`, {
        qos: 1,
        properties: { responseTopic: "svc/replies/me", correlationData: Buffer.from(id) },
      });
    }
    await until(() => requester.got.length === 2);
    expect(
      requester.got.map((m) => [
        m.payload,
        Buffer.from(m.packet.properties?.correlationData ?? []).toString(),
      ]),
    ).toEqual([
      ["echo:hello r1", "r1"],
      ["echo:hello r2", "r2"],
    ]);
  });
});

describe("MQTT 5.0 message expiry", () => {
  it("delivers a Message Expiry Interval of 0 to the subscribers connected at the publish, at every QoS, and keeps it for no one", async () => {
    // [MQTT-3.3.2-5]: only a copy whose onward delivery has not started by expiry is dropped.
    const broker = await startBroker();
    const { raw: sub } = await rawConnected(broker, 5);
    expect(await rawSubscribe(sub, [{ topicFilter: "ez/#", qos: 1 }])).toEqual([1]);
    const { raw } = await rawConnected(broker, 5);
    const expiry = { properties: { messageExpiryInterval: 0 } };
    raw.send(pub("ez/qos0", "a", 0, expiry));
    raw.send(pub("ez/qos1", "b", 1, { packetId: 1, ...expiry }));
    raw.send(pub("ez/retained", "c", 1, { packetId: 2, retain: true, ...expiry }));
    const got = await receivePublishes(sub, 3);
    expect(got.map((p) => [p.topic, p.qos])).toEqual([
      ["ez/qos0", 0],
      ["ez/qos1", 1],
      ["ez/retained", 1],
    ]);
    await sleep(20);
    const { raw: late } = await rawConnected(broker, 5);
    expect(await rawSubscribe(late, [{ topicFilter: "ez/#", qos: 1 }])).toEqual([1]);
    expect(await drain(late, 150)).toEqual([]);
  });
});

describe("MQTT 5.0 maximum packet size", () => {
  it("does not send a client messages above its Maximum Packet Size, but sends the others", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5, { properties: { maximumPacketSize: 128 } });
    await rawSubscribe(raw, [{ topicFilter: "mps/#", qos: 1 }]);
    const dropsBefore = getBroker(broker.ctx).stats.messagesDropped;
    const publisher = await client(broker, { protocolVersion: 5 });
    const big = "B".repeat(300);
    await publisher.publishAsync("mps/a", big, { qos: 0 });
    await publisher.publishAsync("mps/a", "small 0", { qos: 0 });
    await publisher.publishAsync("mps/a", big, { qos: 1 });
    await publisher.publishAsync("mps/a", "small 1", { qos: 1 });
    await publisher.publishAsync("mps/a", big, { qos: 2 });
    await publisher.publishAsync("mps/a", "small 2", { qos: 2 });
    const got = await receivePublishes(raw, 3);
    expect(got.map((p) => [text(p.payload), p.qos])).toEqual([
      ["small 0", 0],
      ["small 1", 1],
      ["small 2", 1],
    ]);
    expect(getBroker(broker.ctx).stats.messagesDropped - dropsBefore).toBe(3);
    expect((await drain(raw, 100)).filter((p) => p.type === PacketType.PUBLISH)).toEqual([]);
  });

  it("disconnects with 0x95 a client sending a PUBLISH above the broker's maximumPacketSize, and goes on", async () => {
    const broker = await startBroker({ maximumPacketSize: 1024 });
    const sub = await recorder(broker, { protocolVersion: 5 });
    await sub.c.subscribeAsync("big/#", { qos: 1 });
    const { raw, connack } = await rawConnected(broker, 5);
    expect(connack.properties?.maximumPacketSize).toBe(1024);
    raw.send(pub("big/x", "small first", 1, { packetId: 1 }));
    await expectPacket(raw, PacketType.PUBACK);
    raw.send(pub("big/x", new Uint8Array(2000), 1, { packetId: 2 }));
    expect(await raw.next()).toEqual({ type: PacketType.DISCONNECT, reasonCode: 0x95 });
    await raw.closed;
    // The broker and its other clients are unaffected.
    const after = await client(broker, { protocolVersion: 4 });
    await after.publishAsync("big/x", "after", { qos: 1 });
    await until(() => sub.got.length === 2);
    expect(payloads(sub.got)).toEqual(["small first", "after"]);
    expect(sub.c.connected).toBe(true);
  });

  it("closes a 3.1.1 client sending a PUBLISH above maximumPacketSize", async () => {
    const broker = await startBroker({ maximumPacketSize: 1024 });
    const { raw } = await rawConnected(broker, 4);
    raw.send(pub("big/x", new Uint8Array(2000), 0));
    expect(await raw.next()).toBeNull();
    const again = await rawConnected(broker, 4);
    expect(again.raw.isOpen).toBe(true);
  });
});

describe("MQTT 5.0 receive maximum", () => {
  it("keeps at most the client's Receive Maximum QoS 1/2 deliveries in flight", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5, { properties: { receiveMaximum: 2 } });
    await rawSubscribe(raw, [{ topicFilter: "rm/#", qos: 2 }]);
    const publisher = await client(broker, { protocolVersion: 5 });
    for (let i = 0; i < 6; i++)
      await publisher.publishAsync("rm/x", `m${i}`, { qos: i < 4 ? 1 : 2 });
    const first = await drain(raw, 250);
    expect(first.map((p) => p.type === PacketType.PUBLISH && text(p.payload))).toEqual([
      "m0",
      "m1",
    ]);
    const received = first as PublishPacket[];
    let unacked = [...received];
    let maxInFlight = unacked.length;
    while (received.length < 6) {
      // Acknowledge one; exactly one more may come.
      const done = unacked.shift()!;
      if (done.qos === 1) raw.send({ type: PacketType.PUBACK, packetId: done.packetId! });
      else {
        raw.send({ type: PacketType.PUBREC, packetId: done.packetId! });
        await expectPacket(raw, PacketType.PUBREL);
        raw.send({ type: PacketType.PUBCOMP, packetId: done.packetId! });
      }
      const more = (await drain(raw, 150)).filter(
        (p): p is PublishPacket => p.type === PacketType.PUBLISH,
      );
      expect(more.length).toBe(1);
      received.push(...more);
      unacked = [...unacked, ...more];
      maxInFlight = Math.max(maxInFlight, unacked.length);
    }
    expect(received.map((p) => text(p.payload))).toEqual(["m0", "m1", "m2", "m3", "m4", "m5"]);
    expect(maxInFlight).toBe(2);
  });

  it("respects a smaller Receive Maximum when it resends deliveries on reconnect", async () => {
    const broker = await startBroker();
    const fields = {
      clientId: "rm-resume",
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    };
    const first = await rawConnected(broker, 5, fields);
    await rawSubscribe(first.raw, [{ topicFilter: "rmr/#", qos: 1 }]);
    const publisher = await client(broker, { protocolVersion: 5 });
    for (let i = 0; i < 4; i++) await publisher.publishAsync("rmr/x", `m${i}`, { qos: 1 });
    await until(() => first.raw.packets.length === 4);
    first.raw.destroy();
    await first.raw.closed;
    const second = await rawConnected(broker, 5, {
      ...fields,
      properties: { sessionExpiryInterval: 60, receiveMaximum: 2 },
    });
    expect(second.connack.sessionPresent).toBe(true);
    // [MQTT-3.3.4-9]: never more than Receive Maximum unacknowledged, resends included.
    const resent = (await drain(second.raw, 250)) as PublishPacket[];
    expect(resent.map((p) => [text(p.payload), p.dup])).toEqual([
      ["m0", true],
      ["m1", true],
    ]);
    second.raw.send({ type: PacketType.PUBACK, packetId: resent[0]!.packetId! });
    second.raw.send({ type: PacketType.PUBACK, packetId: resent[1]!.packetId! });
    const rest = await receivePublishes(second.raw, 2);
    expect(rest.map((p) => text(p.payload))).toEqual(["m2", "m3"]);
  });

  it("disconnects with 0x93 a client exceeding the broker's receiveMaximum with QoS 2 publishes", async () => {
    const broker = await startBroker({ receiveMaximum: 2 });
    const { raw, connack } = await rawConnected(broker, 5);
    expect(connack.properties?.receiveMaximum).toBe(2);
    raw.send(pub("rx/a", "1", 2, { packetId: 1 }));
    raw.send(pub("rx/a", "2", 2, { packetId: 2 }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({ packetId: 1 });
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({ packetId: 2 });
    // Released ones no longer count.
    raw.send({ type: PacketType.PUBREL, packetId: 1 });
    await expectPacket(raw, PacketType.PUBCOMP);
    raw.send(pub("rx/a", "3", 2, { packetId: 3 }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({ packetId: 3 });
    // Ids 2 and 3 are unreleased: a third is one too many [MQTT-3.3.4-9].
    raw.send(pub("rx/a", "4", 2, { packetId: 4 }));
    expect(await raw.next()).toEqual({ type: PacketType.DISCONNECT, reasonCode: 0x93 });
    await raw.closed;
  });
});

describe("MQTT 5.0 publish reason codes", () => {
  it("answers 0x10 No matching subscribers when nobody subscribed, 0 otherwise", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, 5);
    raw.send(pub("nobody/here", "x", 1, { packetId: 1 }));
    expect(await expectPacket(raw, PacketType.PUBACK)).toMatchObject({
      packetId: 1,
      reasonCode: 0x10,
    });
    raw.send(pub("nobody/here", "x", 2, { packetId: 2 }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({
      packetId: 2,
      reasonCode: 0x10,
    });
    // 0x10 is a success: the flow goes on.
    raw.send({ type: PacketType.PUBREL, packetId: 2 });
    expect((await expectPacket(raw, PacketType.PUBCOMP)).reasonCode ?? 0).toBe(0);
    const sub = await recorder(broker, { protocolVersion: 5 });
    await sub.c.subscribeAsync("nobody/here", { qos: 1 });
    raw.send(pub("nobody/here", "y", 1, { packetId: 3 }));
    expect((await expectPacket(raw, PacketType.PUBACK)).reasonCode ?? 0).toBe(0);
  });

  it("refuses a publish to a '$' topic with 0x87 and does not route it", async () => {
    const broker = await startBroker();
    const sys = await recorder(broker, { protocolVersion: 5 });
    await sys.c.subscribeAsync("$SYS/#", { qos: 1 });
    const { raw } = await rawConnected(broker, 5);
    raw.send(pub("$SYS/fake", "spoof", 1, { packetId: 1 }));
    expect(await expectPacket(raw, PacketType.PUBACK)).toMatchObject({
      packetId: 1,
      reasonCode: 0x87,
    });
    raw.send(pub("$SYS/fake", "spoof", 2, { packetId: 2 }));
    expect(await expectPacket(raw, PacketType.PUBREC)).toMatchObject({
      packetId: 2,
      reasonCode: 0x87,
    });
    const v4 = await client(broker, { protocolVersion: 4 });
    await v4.publishAsync("$SYS/fake", "spoof 3.1.1", { qos: 1 });
    await sleep(150);
    expect(sys.got).toEqual([]);
    expect(raw.isOpen).toBe(true);
  });
});
