// Protocol errors: packets that decode but break the rules of the conversation. The offending
// client is told (5.0 DISCONNECT, once it had its CONNACK) and closed, or — where the
// specification says so — answered and kept.
import { type Packet, PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { RawClient, sleep, startBroker } from "./helpers.js";
import {
  Control,
  connectBytes,
  expectClosed,
  expectClosedSilently,
  expectDisconnect,
  expectLog,
  expectRejected,
  expectServed,
  frame,
  props,
  rawConnected,
  str,
  type Version,
} from "./negative-helpers.js";

const PROTOCOL_ERROR = 0x82;
const BOTH = [4, 5] as const;

describe("the first packet", () => {
  const notConnect: [string, number[]][] = [
    ["PUBLISH", frame(0x30, [...str("a/b"), 0x78])],
    ["PINGREQ", [0xc0, 0x00]],
    ["SUBSCRIBE", frame(0x82, [0, 1, ...str("a/#"), 0])],
    ["DISCONNECT", [0xe0, 0x00]],
    ["CONNACK", [0x20, 0x02, 0x00, 0x00]],
  ];

  it.each(notConnect)(
    "closes a connection that starts with %s, without answering",
    async (name, bytes) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await RawClient.connect(broker);
      raw.write(bytes);
      await expectClosedSilently(raw);
      expectLog(broker, new RegExp(`^warning broker/conn .*${name} before CONNECT`));
      await control.check();
    },
  );

  it("closes a connection that speaks HTTP instead of MQTT", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker);
    raw.write([
      ...Buffer.from(
        "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
      ),
    ]);
    await expectClosedSilently(raw);
    expectLog(broker, /^warning broker\/conn .*bad packet/);
    await control.check();
  });

  const badLevels: [string, number][] = [
    ["MQTT", 3],
    ["MQTT", 6],
    ["MQTT", 0],
    ["MQTT", 0x7f],
    ["MQIsdp", 4],
  ];

  it.each(badLevels)(
    "answers a CONNECT for protocol %s level %i with CONNACK return code 1, then closes",
    async (name, level) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await RawClient.connect(broker);
      raw.write(connectBytes({ name, level, properties: [] }));
      // [MQTT-3.1.2-2]: return code 0x01 (unacceptable protocol level), then the close.
      expect(await raw.next()).toEqual({
        type: PacketType.CONNACK,
        sessionPresent: false,
        reasonCode: 1,
      });
      await expectClosed(raw);
      expect(raw.packets).toEqual([]);
      expectLog(broker, /^warning broker\/conn .*unsupported protocol/);
      await control.check();
    },
  );

  it.each(["MQTX", "mqtt", "", "MQIsdpX"])(
    "closes a CONNECT with protocol name %j without a CONNACK",
    async (name) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await RawClient.connect(broker);
      raw.write(connectBytes({ name, level: 4 }));
      // [MQTT-3.1.2-1]: not this protocol at all; no MQTT answer.
      await expectClosedSilently(raw);
      expectLog(
        broker,
        new RegExp(`^warning broker/conn .*unsupported protocol ${JSON.stringify(name)}`),
      );
      await control.check();
    },
  );

  it.each(BOTH)("closes a CONNECT with the reserved flag set (level %i)", async (v) => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, v);
    raw.write(connectBytes({ level: v, flags: 0x03 }));
    // [MQTT-3.1.2-3]: a Malformed Packet. 3.1.1 has no way to say it; 5.0 may send CONNACK 0x81.
    const p = await raw.next();
    if (v === 4) expect(p).toBeNull();
    else if (p !== null) expect(p).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0x81 });
    await expectClosed(raw);
    expectLog(broker, /^warning broker\/conn .*bad packet .*reserved bit is set/);
    await control.check();
  });

  const badFlags: [string, number, number[]][] = [
    ["will QoS 3", 0x1e, [...str("w/t"), ...str("x")]],
    ["will retain without a will", 0x22, []],
    ["will QoS without a will", 0x0a, []],
    ["a password without a user name", 0x42, [...str("secret")]],
  ];

  it.each(badFlags)("closes a 3.1.1 CONNECT with %s, without a CONNACK", async (_, flags, rest) => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker);
    raw.write(connectBytes({ level: 4, flags, rest }));
    await expectClosedSilently(raw);
    expectLog(broker, /^warning broker\/conn .*bad packet/);
    await control.check();
  });

  it("refuses a 5.0 CONNECT with Receive Maximum 0 (never accepts it)", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, 5);
    raw.write(connectBytes({ level: 5, properties: [3, 0x21, 0, 0] }));
    const p = await raw.next();
    // v5 3.1.2.11.3: a Protocol Error; a CONNACK, if any, must carry 0x82.
    if (p !== null) expect(p).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0x82 });
    await expectClosed(raw);
    expectLog(broker, /^warning broker\/conn .*receiveMaximum must not be 0/);
    await control.check();
  });

  it("refuses a 3.1.1 CONNECT with an empty client id and clean session 0 (CONNACK 2)", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker);
    // [MQTT-3.1.3-8]: return code 0x02 (identifier rejected), then the close.
    expect(await raw.connect({ clientId: "", clean: false })).toEqual({
      type: PacketType.CONNACK,
      sessionPresent: false,
      reasonCode: 2,
    });
    await expectClosed(raw);
    expectLog(broker, /CONNECT of .* refused .*empty client id/);
    await control.check();
  });
});

describe("after CONNECT", () => {
  it.each(BOTH)("closes a connection that sends a second CONNECT (level %i)", async (v) => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, v, { clientId: `twice-${v}` });
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: v,
      clean: true,
      keepAlive: 60,
      clientId: `twice-${v}`,
    });
    // [MQTT-3.1.0-2]: a Protocol Error; 5.0 says 0x82.
    await expectRejected(raw, v, PROTOCOL_ERROR);
    expectLog(broker, /broker\/conn .*second CONNECT/);
    await control.check();
  });

  const strangeConnects = BOTH.flatMap((v) => [
    { v, what: "protocol level 6", bytes: connectBytes({ level: 6, properties: [] }) },
    { v, what: "protocol name MQTX", bytes: connectBytes({ name: "MQTX", level: v }) },
  ]);

  it.each(strangeConnects)(
    "closes a connection whose second CONNECT has $what like any second CONNECT (level $v)",
    async ({ v, bytes }) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      raw.write(bytes);
      // Still a second CONNECT, a Protocol Error [MQTT-3.1.0-2]. 0x84 is not a DISCONNECT code
      // (v5 3.14.2.1), so 5.0 must hear 0x82, and the broker must not fail to encode its answer.
      await expectRejected(raw, v, PROTOCOL_ERROR);
      await control.check();
    },
  );

  const serverOnly = (v: Version): [string, Packet][] => [
    ["CONNACK", { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 }],
    ["SUBACK", { type: PacketType.SUBACK, packetId: 1, reasonCodes: [0] }],
    [
      "UNSUBACK",
      v === 5
        ? { type: PacketType.UNSUBACK, packetId: 1, reasonCodes: [0] }
        : { type: PacketType.UNSUBACK, packetId: 1 },
    ],
    ["PINGRESP", { type: PacketType.PINGRESP }],
  ];
  const serverOnlyRuns = BOTH.flatMap((v) =>
    serverOnly(v).map(([name, packet]) => ({ v, name, packet })),
  );

  it.each(serverOnlyRuns)(
    "closes a client that sends the server-to-client packet $name (level $v)",
    async ({ v, name, packet }) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      raw.send(packet);
      await expectRejected(raw, v, PROTOCOL_ERROR);
      expectLog(broker, new RegExp(`broker/conn .*${name} is not sent by clients`));
      await control.check();
    },
  );

  it.each(BOTH)(
    "answers or ignores acknowledgements for unknown packet ids and keeps the connection (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      raw.send({ type: PacketType.PUBACK, packetId: 7 });
      raw.send({ type: PacketType.PUBCOMP, packetId: 8 });
      raw.send({ type: PacketType.PUBREC, packetId: 9 });
      raw.send({ type: PacketType.PUBREL, packetId: 10 });
      // PUBACK and PUBCOMP for nothing are dropped; PUBREC gets PUBREL and PUBREL gets PUBCOMP
      // (5.0: 0x92 Packet Identifier not found, v5 4.3.3 / 3.6.2.1 / 3.7.2.1).
      const notFound = v === 5 ? { reasonCode: 0x92 } : {};
      expect(await raw.next()).toMatchObject({ type: PacketType.PUBREL, packetId: 9, ...notFound });
      expect(await raw.next()).toMatchObject({
        type: PacketType.PUBCOMP,
        packetId: 10,
        ...notFound,
      });
      await expectServed(raw);
      await control.check();
    },
  );

  it("closes a 5.0 client that sends AUTH without having started enhanced authentication", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x19,
      properties: { authenticationMethod: "SCRAM-SHA-1" },
    });
    await expectDisconnect(raw, PROTOCOL_ERROR);
    expectLog(broker, /broker\/conn .*AUTH with another \(or no\) authentication method/);
    await control.check();
  });

  it("closes a 5.0 client whose DISCONNECT sets a session expiry after CONNECT set 0", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    raw.send({
      type: PacketType.DISCONNECT,
      reasonCode: 0,
      properties: { sessionExpiryInterval: 60 },
    });
    // [MQTT-3.14.2-2]: a Protocol Error, answered with DISCONNECT 0x82.
    await expectDisconnect(raw, PROTOCOL_ERROR);
    expectLog(broker, /broker\/conn .*DISCONNECT set a session expiry after CONNECT set 0/);
    await control.check();
  });

  it("lets a DISCONNECT set a session expiry when CONNECT asked for one the broker capped to 0", async () => {
    // [MQTT-3.14.2-2] is about the value in the CONNECT, not what maxSessionExpiryInterval
    // made of it: no protocol error here, and the session still ends with the connection.
    const broker = await startBroker({ maxSessionExpiryInterval: 0 });
    const control = await Control.start(broker);
    const fields = { clientId: "capped", clean: false, properties: { sessionExpiryInterval: 100 } };
    const raw = await rawConnected(broker, 5, fields);
    raw.send({
      type: PacketType.DISCONNECT,
      reasonCode: 0,
      properties: { sessionExpiryInterval: 50 },
    });
    await raw.closed;
    expect(raw.packets.filter((p) => p.type === PacketType.DISCONNECT)).toEqual([]);
    const again = await RawClient.connect(broker, 5);
    expect(await again.connect(fields)).toMatchObject({ sessionPresent: false, reasonCode: 0 });
    await control.check();
  });

  it("closes a 5.0 client whose PUBLISH carries a Subscription Identifier (0x82)", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const got = await control.collect("subid/leak");
    const raw = await rawConnected(broker, 5);
    // [MQTT-3.3.4-6]: a PUBLISH from a client MUST NOT carry one; v5 4.13: Protocol Error.
    raw.write(frame(0x30, [...str("subid/leak"), ...props(5, [0x0b, 0x05]), 0x78]));
    await expectDisconnect(raw, PROTOCOL_ERROR);
    expectLog(broker, /broker\/conn .*[Ss]ubscription [Ii]dentifier/);
    await sleep(50);
    expect(got, "the offending message is not routed").toEqual([]);
    await control.check();
  });

  it("closes a 5.0 client that uses a topic alias it never set (0x82)", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    raw.send({
      type: PacketType.PUBLISH,
      topic: "",
      payload: Buffer.from("x"),
      qos: 0,
      retain: false,
      dup: false,
      properties: { topicAlias: 3 },
    });
    // v5 3.3.2.3.4: an alias with no mapping is a Protocol Error.
    await expectDisconnect(raw, PROTOCOL_ERROR);
    expectLog(broker, /broker\/conn .*topic alias 3 was never set/);
    await control.check();
  });

  it.each(BOTH)(
    "closes a client that publishes to an empty topic without an alias (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      raw.write(frame(0x30, [0, 0, ...props(v), 0x78]));
      // [MQTT-4.7.3-1]: a topic name is at least one character; 5.0: Protocol Error.
      await expectRejected(raw, v, PROTOCOL_ERROR);
      expectLog(broker, /^warning broker\/conn .*bad packet .*without a topic name or topic alias/);
      await control.check();
    },
  );
});

describe("invalid topic filters in SUBSCRIBE", () => {
  const invalid = ["a/#/b", "a/b#", "#a", "a+", "a/+b/c", "+a", "", "a//#x"];
  const valid = ["ok/1", "ok/+", "deep/#"];

  it.each(BOTH)(
    "answers each bad filter with a failure code, grants the good ones and keeps the connection (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      const filters = [
        valid[0]!,
        ...invalid.slice(0, 4),
        valid[1]!,
        ...invalid.slice(4),
        valid[2]!,
      ];
      raw.send({
        type: PacketType.SUBSCRIBE,
        packetId: 5,
        subscriptions: filters.map((topicFilter) => ({ topicFilter, qos: 1 as const })),
      });
      // 3.1.1: 0x80 per bad filter [MQTT-3.8.4-5]; 5.0: 0x8F Topic Filter invalid.
      const failure = v === 5 ? 0x8f : 0x80;
      const expected = filters.map((f) => (valid.includes(f) ? 1 : failure));
      expect(await raw.next()).toMatchObject({
        type: PacketType.SUBACK,
        packetId: 5,
        reasonCodes: expected,
      });
      expectLog(broker, /invalid topic filter/);

      // The good filters work.
      await control.publish("ok/1", "one");
      await control.publish("deep/x/y", "two");
      const a = await raw.next();
      const b = await raw.next();
      expect([a, b]).toMatchObject([
        { type: PacketType.PUBLISH, topic: "ok/1" },
        { type: PacketType.PUBLISH, topic: "deep/x/y" },
      ]);
      await expectServed(raw);
      await control.check();
    },
  );

  it("answers malformed shared subscriptions with 0x8F per filter (level 5)", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    const filters = ["$share/g", "$share//a", "$share/g+/a", "$share/g/a/#/b", "$share/g/ok"];
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 6,
      subscriptions: filters.map((topicFilter) => ({ topicFilter, qos: 0 as const })),
    });
    expect(await raw.next()).toMatchObject({
      type: PacketType.SUBACK,
      packetId: 6,
      reasonCodes: [0x8f, 0x8f, 0x8f, 0x8f, 0],
    });
    await expectServed(raw);
    await control.check();
  });

  it.each(BOTH)(
    "answers UNSUBSCRIBE of an invalid filter and keeps the connection (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      raw.send({ type: PacketType.UNSUBSCRIBE, packetId: 3, topicFilters: ["a/#/b", "x+"] });
      const p = await raw.next();
      expect(p).toMatchObject({ type: PacketType.UNSUBACK, packetId: 3 });
      if (v === 5) {
        // Either "Topic Filter invalid" or "No subscription existed" is a fair answer.
        const codes = (p as Extract<Packet, { type: 11 }>).reasonCodes ?? [];
        expect(codes).toHaveLength(2);
        for (const c of codes) expect([0x8f, 0x11]).toContain(c);
      }
      await expectServed(raw);
      await control.check();
    },
  );
});
