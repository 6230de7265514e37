// Every limit of BrokerOptions, set small: enforced, and only the connection that broke it is
// closed (or only the excess is refused), as src/options.ts documents.
import { type Packet, PacketType, type PublishPacket } from "@myqtt/codec";
import { ConnackCode } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { RawClient, sleep, startBroker, until } from "./helpers.js";
import {
  brokerOf,
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
  SlowReader,
  str,
  varint,
  within,
} from "./negative-helpers.js";

const BOTH = [4, 5] as const;

const publishPacket = (
  topic: string,
  payload: string | Buffer,
  qos: 0 | 1 | 2 = 0,
  packetId?: number,
): PublishPacket => {
  const p: PublishPacket = {
    type: PacketType.PUBLISH,
    topic,
    payload: typeof payload === "string" ? Buffer.from(payload) : payload,
    qos,
    retain: false,
    dup: false,
  };
  if (packetId !== undefined) p.packetId = packetId;
  return p;
};

const publishes = (packets: Packet[]): PublishPacket[] =>
  packets.filter((p): p is PublishPacket => p.type === PacketType.PUBLISH);

async function subscribe(raw: RawClient, topicFilter: string, qos: 0 | 1 | 2 = 1): Promise<void> {
  raw.send({ type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: [{ topicFilter, qos }] });
  expect(await raw.next()).toMatchObject({ type: PacketType.SUBACK, reasonCodes: [qos] });
}

describe("maximumPacketSize", () => {
  it("is announced to 5.0 clients in CONNACK", async () => {
    const broker = await startBroker({ maximumPacketSize: 1024 });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, 5);
    expect(await raw.connect()).toMatchObject({
      type: PacketType.CONNACK,
      reasonCode: 0,
      properties: { maximumPacketSize: 1024 },
    });
    await control.check();
  });

  it.each(BOTH)(
    "refuses a packet from its fixed header alone, without waiting for the body (level %i)",
    async (v) => {
      const broker = await startBroker({ maximumPacketSize: 1024 });
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      // A PUBLISH declaring 10 MiB; none of the body is ever sent.
      raw.write([0x30, ...varint(10 * 1024 * 1024)]);
      await expectRejected(raw, v, 0x95);
      expectLog(
        broker,
        /^warning broker\/conn .*bad packet .*exceeds the maximum packet size 1024/,
      );
      await control.check();
    },
  );

  it.each(BOTH)(
    "accepts a packet of exactly maximumPacketSize and refuses one byte more (level %i)",
    async (v) => {
      const broker = await startBroker({ maximumPacketSize: 1024 });
      const control = await Control.start(broker);
      const got = await control.collect("big/t");
      const raw = await rawConnected(broker, v);
      // 1 type byte + 2 length bytes + 1021 of body = 1024.
      const head = [...str("big/t"), 0, 1, ...props(v)];
      const exact = frame(0x32, [...head, ...new Array<number>(1021 - head.length).fill(0x61)]);
      expect(exact).toHaveLength(1024);
      raw.write(exact);
      expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
      await until(() => got.length === 1, 2000, "the 1024-byte message");

      const over = frame(0x32, [...head, ...new Array<number>(1022 - head.length).fill(0x62)]);
      expect(over).toHaveLength(1025);
      raw.write(over);
      await expectRejected(raw, v, 0x95);
      expectLog(broker, /packet of 1025 bytes exceeds the maximum packet size 1024/);
      await sleep(30);
      expect(got).toHaveLength(1);
      await control.check();
    },
  );
});

describe("maximumPacketSize and the CONNECT", () => {
  it.each(BOTH)(
    "refuses a CONNECT larger than maximumPacketSize even under maximumConnectPacketSize (level %i)",
    async (v) => {
      // "Largest packet accepted from a client": the CONNECT is one of them.
      const broker = await startBroker({ maximumPacketSize: 1024 });
      const control = await Control.start(broker);
      const raw = await RawClient.connect(broker, v);
      const p = await raw.connect({ username: "u".repeat(2000) });
      // 5.0 may say why (CONNACK 0x95, v5 3.2.2.2); it must not accept.
      if (p !== null) expect(p).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0x95 });
      if (v === 4) expect(p).toBeNull();
      await expectClosed(raw);
      expectLog(broker, /exceeds the maximum packet size 1024/);
      await control.check();
    },
  );
});

describe("maximumConnectPacketSize", () => {
  it("refuses a CONNECT from its fixed header alone, before buffering it", async () => {
    const broker = await startBroker({ maximumConnectPacketSize: 256 });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker);
    raw.write([0x10, ...varint(100_000)]);
    await expectClosedSilently(raw);
    expectLog(broker, /^warning broker\/conn .*exceeds the maximum packet size 256/);
    await control.check();
  });

  it("refuses a whole CONNECT larger than the limit", async () => {
    const broker = await startBroker({ maximumConnectPacketSize: 256 });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 60,
      clientId: "big-connect",
      username: "u".repeat(300),
    });
    await expectClosedSilently(raw);
    expectLog(broker, /exceeds the maximum packet size 256/);
    await control.check();
  });

  it("applies to the CONNECT only: larger packets up to maximumPacketSize follow", async () => {
    const broker = await startBroker({ maximumConnectPacketSize: 256 });
    const control = await Control.start(broker);
    const got = await control.collect("after/connect");
    const raw = await RawClient.connect(broker);
    expect(await raw.connect({ username: "u".repeat(150) })).toMatchObject({ reasonCode: 0 });
    raw.send(publishPacket("after/connect", Buffer.alloc(5000, 0x61), 1, 1));
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
    await until(() => got.length === 1, 2000, "the 5000-byte message");
    await control.check();
  });
});

describe("connectTimeoutMs", () => {
  it("closes a connection that sends nothing", async () => {
    const broker = await startBroker({ connectTimeoutMs: 300 });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker);
    const t0 = Date.now();
    await expectClosedSilently(raw);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1500);
    expectLog(broker, /^warning broker\/conn .*no CONNECT completed within 300 ms/);
    await control.check();
  });

  it("closes a connection that sends part of its CONNECT and stalls", async () => {
    const broker = await startBroker({ connectTimeoutMs: 300 });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker);
    raw.write(connectBytes().slice(0, 7));
    await expectClosedSilently(raw);
    expectLog(broker, /no CONNECT completed within 300 ms/);
    await control.check();
  });

  it("closes a connection whose CONNECT the connect hook leaves DEFERRED", async () => {
    const broker = await startBroker({ connectTimeoutMs: 300 }, (ctx) =>
      ctx.setOnConnect((_ctx, conn) =>
        conn.clientId.startsWith("deferred") ? ConnackCode.DEFERRED : ConnackCode.ACCEPTED,
      ),
    );
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 60,
      clientId: "deferred-1",
    });
    await expectClosedSilently(raw);
    expectLog(broker, /no CONNECT completed within 300 ms/);
    await control.check();
  });

  it("leaves a connection that connected in time alone", async () => {
    const broker = await startBroker({ connectTimeoutMs: 300 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker);
    await sleep(800);
    await expectServed(raw);
    await control.check();
  });
});

describe("maxInflight", () => {
  it("keeps at most maxInflight QoS 1 deliveries unacknowledged; acks release the rest, in order", async () => {
    const broker = await startBroker({ maxInflight: 3 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 4);
    await subscribe(raw, "inf/+", 1);
    for (let i = 0; i < 10; i++) await control.publish(`inf/${i}`, `m${i}`, 1);

    await until(() => raw.packets.length >= 3, 2000, "the first deliveries");
    await sleep(150);
    expect(publishes(raw.packets).map((p) => p.topic)).toEqual(["inf/0", "inf/1", "inf/2"]);

    // One ack, one more message.
    const first = raw.packets.shift() as PublishPacket;
    raw.send({ type: PacketType.PUBACK, packetId: first.packetId! });
    await until(() => raw.packets.length >= 3, 2000, "the delivery released by the ack");
    await sleep(100);
    expect(publishes(raw.packets).map((p) => p.topic)).toEqual(["inf/1", "inf/2", "inf/3"]);

    // Ack everything as it comes: all ten arrive, once each, in order.
    const seen = [first.topic];
    while (seen.length < 10) {
      const p = (await raw.next()) as PublishPacket;
      expect(p.type).toBe(PacketType.PUBLISH);
      seen.push(p.topic);
      raw.send({ type: PacketType.PUBACK, packetId: p.packetId! });
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => `inf/${i}`));
    await sleep(50);
    expect(raw.packets).toEqual([]);
    await control.check();
  });

  it("uses the smaller of maxInflight and a 5.0 client's Receive Maximum", async () => {
    const broker = await startBroker({ maxInflight: 5 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5, { properties: { receiveMaximum: 2 } });
    await subscribe(raw, "rm/+", 1);
    for (let i = 0; i < 6; i++) await control.publish(`rm/${i}`, `m${i}`, 1);
    await until(() => raw.packets.length >= 2, 2000, "the first deliveries");
    await sleep(150);
    expect(publishes(raw.packets).map((p) => p.topic)).toEqual(["rm/0", "rm/1"]);
    await control.check();
  });
});

describe("maxQueuedMessages", () => {
  it.each(BOTH)(
    "bounds the queue of an offline persistent session; the excess is dropped and logged (level %i)",
    async (v) => {
      const broker = await startBroker({ maxQueuedMessages: 3 });
      const control = await Control.start(broker);
      const clientId = `offline-${v}`;
      const persistent = v === 5 ? { properties: { sessionExpiryInterval: 60 } } : {};
      const raw = await rawConnected(broker, v, { clientId, clean: false, ...persistent });
      await subscribe(raw, "q/+", 1);
      raw.send({ type: PacketType.DISCONNECT });
      await expectClosed(raw);

      for (let i = 0; i < 6; i++) await control.publish(`q/${i}`, `m${i}`, 1);
      expectLog(
        broker,
        /^warning broker\/queue queue of offline-\d is full; message on q\/3 dropped/,
      );

      const again = await RawClient.connect(broker, v);
      expect(await again.connect({ clientId, clean: false, ...persistent })).toMatchObject({
        reasonCode: 0,
        sessionPresent: true,
      });
      await until(() => again.packets.length >= 3, 2000, "the queued messages");
      await sleep(150);
      expect(publishes(again.packets).map((p) => p.topic)).toEqual(["q/0", "q/1", "q/2"]);
      expect(again.packets).toHaveLength(3);
      await control.check();
    },
  );

  it("also bounds the messages waiting for the in-flight window of a connected client", async () => {
    const broker = await startBroker({ maxInflight: 1, maxQueuedMessages: 2 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 4);
    await subscribe(raw, "w/+", 1);
    for (let i = 0; i < 6; i++) await control.publish(`w/${i}`, `m${i}`, 1);
    // One in flight, two waiting, three dropped.
    const seen: string[] = [];
    for (;;) {
      let p: Packet | null;
      try {
        p = await raw.next(300);
      } catch {
        break;
      }
      if (p === null || p.type !== PacketType.PUBLISH) break;
      seen.push(p.topic);
      raw.send({ type: PacketType.PUBACK, packetId: p.packetId! });
    }
    expect(seen).toEqual(["w/0", "w/1", "w/2"]);
    expectLog(broker, /queue of .* is full/);
    await expectServed(raw);
    await control.check();
  });
});

describe("queueQoS0: false", () => {
  it("queues only QoS 1/2 messages for an offline persistent session", async () => {
    const broker = await startBroker({ queueQoS0: false });
    const control = await Control.start(broker);
    const clientId = "offline-qos0";
    const raw = await rawConnected(broker, 4, { clientId, clean: false });
    await subscribe(raw, "z/+", 1);
    raw.send({ type: PacketType.DISCONNECT });
    await expectClosed(raw);
    await control.publish("z/0", "qos 0", 0);
    await control.publish("z/1", "qos 1", 1);
    const again = await RawClient.connect(broker);
    expect(await again.connect({ clientId, clean: false })).toMatchObject({ sessionPresent: true });
    expect(await again.next()).toMatchObject({ type: PacketType.PUBLISH, topic: "z/1", qos: 1 });
    await sleep(100);
    expect(again.packets).toEqual([]);
    await control.check();
  });
});

describe("maxQueuedBytes", () => {
  it("bounds the bytes queued for an offline persistent session", async () => {
    // 90-byte payloads on a 4-byte topic: two fit in 250 bytes, a third does not.
    const broker = await startBroker({ maxQueuedBytes: 250 });
    const control = await Control.start(broker);
    const clientId = "offline-bytes";
    const raw = await rawConnected(broker, 4, { clientId, clean: false });
    await subscribe(raw, "qb/+", 1);
    raw.send({ type: PacketType.DISCONNECT });
    await expectClosed(raw);

    await control.publish("qb/h", "x".repeat(300), 1); // alone larger than the limit
    for (let i = 0; i < 4; i++) await control.publish(`qb/${i}`, String(i).repeat(90), 1);
    expectLog(broker, /queue of offline-bytes is full; message on qb\/h dropped/);

    const again = await RawClient.connect(broker);
    expect(await again.connect({ clientId, clean: false })).toMatchObject({ sessionPresent: true });
    await until(() => again.packets.length >= 2, 2000, "the queued messages");
    await sleep(150);
    expect(publishes(again.packets).map((p) => p.topic)).toEqual(["qb/0", "qb/1"]);
    await control.check();
  });
});

describe("maxTopicLength", () => {
  const options = { maxTopicLength: 16 };

  it.each(BOTH)(
    "closes a client publishing to a topic longer than maxTopicLength bytes (level %i)",
    async (v) => {
      const broker = await startBroker(options);
      const control = await Control.start(broker);
      const got = await control.collect("len/#");
      const raw = await rawConnected(broker, v);
      raw.send(publishPacket("len/aaaaaaaaaaaa", "ok", 1, 1)); // 16 bytes
      expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
      raw.send(publishPacket("len/aaaaaaaaaaaaa", "too long", 1, 2)); // 17 bytes
      // 5.0: DISCONNECT 0x90 (Topic Name invalid).
      await expectRejected(raw, v, 0x90);
      expectLog(broker, /^warning broker\/conn .*topic is longer than 16 bytes/);
      await sleep(30);
      expect(got).toEqual([["len/aaaaaaaaaaaa", "ok"]]);
      await control.check();
    },
  );

  it("counts UTF-8 bytes, not characters", async () => {
    const broker = await startBroker(options);
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    raw.send(publishPacket("é".repeat(8), "16 bytes", 1, 1));
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
    raw.send(publishPacket("é".repeat(9), "18 bytes in 9 characters", 1, 2));
    await expectDisconnect(raw, 0x90);
    await control.check();
  });

  it.each(BOTH)("refuses only the over-long filter of a SUBSCRIBE (level %i)", async (v) => {
    const broker = await startBroker(options);
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, v);
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 4,
      subscriptions: [
        { topicFilter: "len/#", qos: 1 },
        { topicFilter: "len/aaaaaaaaaaa/#", qos: 1 }, // 17 bytes
        { topicFilter: "len2/+", qos: 0 },
      ],
    });
    expect(await raw.next()).toMatchObject({
      type: PacketType.SUBACK,
      packetId: 4,
      reasonCodes: [1, v === 5 ? 0x8f : 0x80, 0],
    });
    await control.publish("len/x", "hello", 1);
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBLISH, topic: "len/x" });
    await expectServed(raw);
    await control.check();
  });

  it("refuses a 5.0 CONNECT whose will topic is longer than maxTopicLength (CONNACK 0x90)", async () => {
    const broker = await startBroker(options);
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, 5);
    const ack = await raw.connect({
      will: { topic: "w".repeat(17), payload: Buffer.from("x"), qos: 0, retain: false },
    });
    expect(ack).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0x90 });
    await expectClosed(raw);
    expectLog(broker, /will topic is longer than 16 bytes/);
    await control.check();
  });
});

describe("maxTopicLevels", () => {
  const options = { maxTopicLevels: 3 };

  it.each(BOTH)(
    "closes a client publishing to a topic with more than maxTopicLevels levels (level %i)",
    async (v) => {
      const broker = await startBroker(options);
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      raw.send(publishPacket("a/b/c", "ok", 1, 1));
      expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
      raw.send(publishPacket("a/b/c/", "four levels, the last empty", 1, 2));
      await expectRejected(raw, v, 0x90);
      expectLog(broker, /^warning broker\/conn .*topic has more than 3 levels/);
      await control.check();
    },
  );

  it.each(BOTH)("refuses only the too-deep filter of a SUBSCRIBE (level %i)", async (v) => {
    const broker = await startBroker(options);
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, v);
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 4,
      subscriptions: [
        { topicFilter: "a/+/#", qos: 1 },
        { topicFilter: "a/b/c/#", qos: 1 },
      ],
    });
    expect(await raw.next()).toMatchObject({
      type: PacketType.SUBACK,
      reasonCodes: [1, v === 5 ? 0x8f : 0x80],
    });
    await expectServed(raw);
    await control.check();
  });
});

describe("topic limits and shared subscriptions", () => {
  it("applies maxTopicLevels to the filter of a shared subscription, not to its $share/<group>/ prefix", async () => {
    const broker = await startBroker({ maxTopicLevels: 3 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 2,
      subscriptions: [{ topicFilter: "$share/g/a/b/c", qos: 1 }],
    });
    // The Topic Filter of "$share/g/a/b/c" is "a/b/c" (v5 4.8.2): three levels, like the
    // topic "a/b/c" that may be published.
    expect(await raw.next()).toMatchObject({ type: PacketType.SUBACK, reasonCodes: [1] });
    await control.publish("a/b/c", "shared", 1);
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBLISH, topic: "a/b/c" });
    await control.check();
  });

  it("applies maxTopicLength to the filter of a shared subscription, not to its prefix", async () => {
    const broker = await startBroker({ maxTopicLength: 16 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 2,
      subscriptions: [{ topicFilter: "$share/g/len/aaaaaaaaaaaa", qos: 1 }],
    });
    expect(await raw.next()).toMatchObject({ type: PacketType.SUBACK, reasonCodes: [1] });
    await control.publish("len/aaaaaaaaaaaa", "shared", 1);
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBLISH, topic: "len/aaaaaaaaaaaa" });
    await control.check();
  });

  it.each(BOTH)("holds the group name to maxTopicLength on its own (level %i)", async (v) => {
    // Each member keeps its group's name: unbounded, 10,000 subscriptions with 60 KB names
    // kept about 600 MB of names for one session (found by fuzzing).
    const broker = await startBroker({ maxTopicLength: 16 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, v);
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 2,
      subscriptions: [
        { topicFilter: `$share/${"g".repeat(16)}/t`, qos: 1 },
        { topicFilter: `$share/${"g".repeat(17)}/t`, qos: 1 },
      ],
    });
    expect(await raw.next()).toMatchObject({
      type: PacketType.SUBACK,
      reasonCodes: [1, v === 5 ? 0x8f : 0x80],
    });
    await expectServed(raw);
    await control.check();
  });
});

describe("maxConnections", () => {
  it("closes connections beyond the bound and accepts new ones once one closes", async () => {
    const broker = await startBroker({ maxConnections: 3 });
    const control = await Control.start(broker); // 1
    const a = await rawConnected(broker); // 2
    const b = await rawConnected(broker); // 3
    const c = await RawClient.connect(broker);
    await expectClosedSilently(c);
    expectLog(broker, /^warning broker\/listener .* is at its 3 connections; refused/);
    expect(broker.listener.connections).toBe(3);

    a.end();
    await expectClosed(a);
    await until(() => broker.listener.connections === 2, 2000, "the listener to count the close");
    const d = await rawConnected(broker);
    await expectServed(d);
    await expectServed(b);
    await control.check();
  });
});

describe("maxTopicFiltersPerPacket", () => {
  const filters = (n: number, prefix: string): string[] =>
    Array.from({ length: n }, (_, i) => `${prefix}/${i}`);

  it.each(BOTH)(
    "takes SUBSCRIBE and UNSUBSCRIBE of exactly the limit, closes a client that sends more (level %i)",
    async (v) => {
      const broker = await startBroker({ maxTopicFiltersPerPacket: 3 });
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      const three = filters(3, "f");
      raw.send({
        type: PacketType.SUBSCRIBE,
        packetId: 1,
        subscriptions: three.map((topicFilter) => ({ topicFilter, qos: 1 as const })),
      });
      expect(await raw.next()).toMatchObject({ type: PacketType.SUBACK, reasonCodes: [1, 1, 1] });
      raw.send({ type: PacketType.UNSUBSCRIBE, packetId: 2, topicFilters: three });
      expect(await raw.next()).toMatchObject({ type: PacketType.UNSUBACK, packetId: 2 });
      raw.send({ type: PacketType.UNSUBSCRIBE, packetId: 3, topicFilters: filters(4, "f") });
      await expectRejected(raw, v, 0x97);
      expectLog(broker, /^warning broker\/conn .*more than 3 topic filters in one packet/);
      await control.check();
    },
  );

  it("refuses a SUBSCRIBE of a million filters with the default limit, and serves the others", async () => {
    // Found by fuzzing: decoded and subscribed in full, such a packet froze the broker for
    // seconds and took about 1 GiB.
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    const n = 1_000_000;
    const body = Buffer.alloc(3 + 4 * n);
    body.writeUInt16BE(1, 0); // packet id; body[2] = 0: no properties
    for (let i = 0; i < n; i++) body.writeUInt32BE(0x00016100, 3 + 4 * i); // "a", QoS 0
    raw.write([0x82, ...varint(body.length)]);
    raw.write(body);
    await expectDisconnect(raw, 0x97);
    expect(brokerOf(broker).sessions.size).toBe(1); // the Control client's
    await control.check();
  });
});

describe("maxUserPropertiesPerPacket", () => {
  it("takes a PUBLISH with exactly the limit and closes a client that sends more (0x97)", async () => {
    const broker = await startBroker({ maxUserPropertiesPerPacket: 3 });
    const control = await Control.start(broker);
    const got = await control.collect("up/+");
    const raw = await rawConnected(broker, 5);
    const withProps = (n: number, packetId: number): PublishPacket => ({
      ...publishPacket(`up/${n}`, "x", 1, packetId),
      properties: {
        userProperties: Array.from({ length: n }, (_, i): [string, string] => [`k${i}`, "v"]),
      },
    });
    raw.send(withProps(3, 1));
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
    raw.send(withProps(4, 2));
    await expectDisconnect(raw, 0x97);
    expectLog(broker, /^warning broker\/conn .*more than 3 user properties in one packet/);
    await until(() => got.length === 1, 2000, "the accepted message");
    await sleep(30);
    expect(got.map(([t]) => t)).toEqual(["up/3"]);
    await control.check();
  });
});

describe("maxSubscriptionsPerClient", () => {
  it.each(BOTH)(
    "refuses new filters beyond the limit, never a replacement, and makes room on unsubscribe (level %i)",
    async (v) => {
      const broker = await startBroker({ maxSubscriptionsPerClient: 3 });
      const control = await Control.start(broker);
      const raw = await rawConnected(broker, v);
      const sub = async (packetId: number, topicFilters: string[], reasonCodes: number[]) => {
        raw.send({
          type: PacketType.SUBSCRIBE,
          packetId,
          subscriptions: topicFilters.map((topicFilter) => ({ topicFilter, qos: 1 as const })),
        });
        expect(await raw.next()).toMatchObject({ type: PacketType.SUBACK, packetId, reasonCodes });
      };
      const refused = v === 5 ? 0x97 : 0x80;
      await sub(1, ["a", "b"], [1, 1]);
      // "a" replaces; "c" is the third; "d" is one too many; "c" again replaces the one above.
      await sub(2, ["a", "c", "d", "c"], [1, 1, refused, 1]);
      await sub(3, ["e"], [refused]);
      expect([...brokerOf(broker).sessions.values()].map((s) => s.subscriptions.size)).toContain(3);
      raw.send({ type: PacketType.UNSUBSCRIBE, packetId: 4, topicFilters: ["b"] });
      expect(await raw.next()).toMatchObject({ type: PacketType.UNSUBACK, packetId: 4 });
      await sub(5, ["d", "e"], [1, refused]);
      await expectServed(raw);
      await control.check();
    },
  );
});

describe("receiveMaximum", () => {
  it("is announced to 5.0 clients and enforced on unreleased QoS 2 publishes (0x93)", async () => {
    const broker = await startBroker({ receiveMaximum: 2 });
    const control = await Control.start(broker);
    const got = await control.collect("rx/+");
    const raw = await RawClient.connect(broker, 5);
    expect(await raw.connect()).toMatchObject({ properties: { receiveMaximum: 2 } });
    raw.send(publishPacket("rx/1", "one", 2, 1));
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBREC, packetId: 1 });
    raw.send(publishPacket("rx/2", "two", 2, 2));
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBREC, packetId: 2 });
    raw.send(publishPacket("rx/3", "three", 2, 3));
    // [MQTT-3.3.4-9]: a third unacknowledged QoS 2 publish.
    await expectDisconnect(raw, 0x93);
    expectLog(broker, /^warning broker\/conn .*more than 2 publishes in flight/);
    await until(() => got.length === 2, 2000, "the two accepted messages");
    await sleep(30);
    expect(got.map(([t]) => t)).toEqual(["rx/1", "rx/2"]);
    await control.check();
  });

  it("lets a 5.0 client go on once PUBREL releases a packet id", async () => {
    const broker = await startBroker({ receiveMaximum: 2 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    for (const id of [1, 2]) {
      raw.send(publishPacket(`rx/${id}`, "m", 2, id));
      expect(await raw.next()).toMatchObject({ type: PacketType.PUBREC, packetId: id });
    }
    raw.send({ type: PacketType.PUBREL, packetId: 1 });
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBCOMP, packetId: 1 });
    raw.send(publishPacket("rx/3", "m", 2, 3));
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBREC, packetId: 3 });
    await expectServed(raw);
    await control.check();
  });

  it("counts a QoS 1 publish sent while the window is full of QoS 2 ones (0x93)", async () => {
    const broker = await startBroker({ receiveMaximum: 2 });
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5);
    for (const id of [1, 2]) {
      raw.send(publishPacket("rx/q2", "m", 2, id));
      expect(await raw.next()).toMatchObject({ type: PacketType.PUBREC, packetId: id });
    }
    raw.send(publishPacket("rx/q1", "m", 1, 3));
    await expectDisconnect(raw, 0x93);
    await control.check();
  });
});

describe("topicAliasMaximum", () => {
  it("accepts aliases up to the maximum and refuses one above it (0x94)", async () => {
    const broker = await startBroker({ topicAliasMaximum: 2 });
    const control = await Control.start(broker);
    const got = await control.collect("ta/+");
    const raw = await RawClient.connect(broker, 5);
    expect(await raw.connect()).toMatchObject({ properties: { topicAliasMaximum: 2 } });
    raw.send({ ...publishPacket("ta/x", "set"), properties: { topicAlias: 2 } });
    raw.send({ ...publishPacket("", "use"), properties: { topicAlias: 2 } });
    await until(() => got.length === 2, 2000, "the aliased messages");
    expect(got).toEqual([
      ["ta/x", "set"],
      ["ta/x", "use"],
    ]);
    raw.send({ ...publishPacket("ta/y", "over"), properties: { topicAlias: 3 } });
    await expectDisconnect(raw, 0x94);
    expectLog(broker, /broker\/conn .*topic alias 3 above the maximum/);
    await sleep(30);
    expect(got).toHaveLength(2);
    await control.check();
  });

  it("with topicAliasMaximum 0, announces none and refuses any alias (0x94)", async () => {
    const broker = await startBroker({ topicAliasMaximum: 0 });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, 5);
    const ack = await raw.connect();
    expect(ack).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0 });
    const announced = (ack as Extract<Packet, { type: 2 }>).properties?.topicAliasMaximum ?? 0;
    expect(announced).toBe(0);
    raw.send({ ...publishPacket("ta/x", "set"), properties: { topicAlias: 1 } });
    await expectDisconnect(raw, 0x94);
    await control.check();
  });
});

describe("keep alive", () => {
  it("closes silent clients after 1.5 × keep alive (5.0: DISCONNECT 0x8D) and spares one that pings", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const v5 = await rawConnected(broker, 5, { keepAlive: 1 });
    const v4 = await rawConnected(broker, 4, { keepAlive: 1 });
    const pinger = await rawConnected(broker, 4, { keepAlive: 1 });
    const t0 = Date.now();
    const closedAt = (raw: RawClient): Promise<number> => raw.closed.then(() => Date.now() - t0);
    const v5Closed = closedAt(v5);
    const v4Closed = closedAt(v4);
    let pings = 0;
    while (Date.now() - t0 < 2300) {
      await sleep(400);
      await expectServed(pinger);
      pings++;
    }
    const [e5, e4] = await within(Promise.all([v5Closed, v4Closed]), 2000, "the keep-alive closes");
    for (const elapsed of [e5, e4]) {
      // [MQTT-3.1.2-24]: one and a half keep alive periods, not before.
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      expect(elapsed).toBeLessThanOrEqual(2300);
    }
    expect(v5.packets).toMatchObject([{ type: PacketType.DISCONNECT, reasonCode: 0x8d }]);
    expect(v4.packets).toEqual([]);
    expect(pings).toBeGreaterThanOrEqual(5);
    expect(pinger.isOpen).toBe(true);
    expectLog(broker, /^warning broker\/conn .*keep alive of 1 s expired/);
    await control.check();
  });

  it("lowers a 5.0 client's keep alive to maxKeepAlive (Server Keep Alive) and enforces it", async () => {
    const broker = await startBroker({ maxKeepAlive: 1 });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, 5);
    expect(await raw.connect({ keepAlive: 60 })).toMatchObject({
      reasonCode: 0,
      properties: { serverKeepAlive: 1 },
    });
    const t0 = Date.now();
    expect(await raw.next(3000)).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x8d });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThanOrEqual(2300);
    await expectClosed(raw);
    await control.check();
  });
});

describe("maxSessionExpiryInterval", () => {
  it("caps the session expiry a 5.0 client asks for, tells it, and ends the session then", async () => {
    const broker = await startBroker({ maxSessionExpiryInterval: 1 });
    const control = await Control.start(broker);
    const clientId = "capped";
    const properties = { sessionExpiryInterval: 3600 };
    const raw = await RawClient.connect(broker, 5);
    expect(await raw.connect({ clientId, clean: true, properties })).toMatchObject({
      reasonCode: 0,
      properties: { sessionExpiryInterval: 1 },
    });
    raw.send({ type: PacketType.DISCONNECT });
    await expectClosed(raw);

    const soon = await RawClient.connect(broker, 5);
    expect(await soon.connect({ clientId, clean: false, properties })).toMatchObject({
      sessionPresent: true,
    });
    soon.send({ type: PacketType.DISCONNECT });
    await expectClosed(soon);

    await sleep(1600);
    const late = await RawClient.connect(broker, 5);
    expect(await late.connect({ clientId, clean: false, properties })).toMatchObject({
      reasonCode: 0,
      sessionPresent: false,
    });
    await control.check();
  });
});

describe("retainAvailable: false", () => {
  it("closes a 5.0 client that publishes a retained message anyway (0x9A)", async () => {
    const broker = await startBroker({ retainAvailable: false });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, 5);
    expect(await raw.connect()).toMatchObject({ properties: { retainAvailable: false } });
    raw.send({ ...publishPacket("keep/me", "r", 1, 1), retain: true });
    // v5 3.3.1.3: DISCONNECT 0x9A (Retain not supported).
    await expectDisconnect(raw, 0x9a);
    await control.check();
  });

  it("refuses a 5.0 CONNECT whose will has Will Retain set (CONNACK 0x9A)", async () => {
    const broker = await startBroker({ retainAvailable: false });
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, 5);
    const ack = await raw.connect({
      will: { topic: "will/r", payload: Buffer.from("x"), qos: 0, retain: true },
    });
    // [MQTT-3.2.2-13]: MUST reject; SHOULD say 0x9A (Retain not supported).
    expect(ack).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0x9a });
    await expectClosed(raw);
    await control.check();
  });

  it("does not keep a 3.1.1 client's retained message, but still delivers it live", async () => {
    const broker = await startBroker({ retainAvailable: false });
    const control = await Control.start(broker);
    const live = await control.collect("keep/+");
    const raw = await rawConnected(broker, 4);
    raw.send({ ...publishPacket("keep/me", "r", 1, 1), retain: true });
    expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
    await until(() => live.length === 1, 2000, "the live delivery");
    const late = await rawConnected(broker, 4);
    await subscribe(late, "keep/+", 1);
    await sleep(100);
    expect(late.packets).toEqual([]);
    await control.check();
  });
});

describe("a 5.0 client's Maximum Packet Size", () => {
  it("closes a client that cannot take its CONNACK, logged at debug level only", async () => {
    // [MQTT-3.1.2-24]: a CONNACK larger than the client accepts is not sent. It is the
    // client's doing: a critical line for it would let anyone fill the critical log.
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await RawClient.connect(broker, 5);
    // An empty client id: the CONNACK carries the assigned one and is longer than 16 bytes.
    expect(await raw.connect({ clientId: "", properties: { maximumPacketSize: 16 } })).toBeNull();
    expect(raw.isOpen).toBe(false);
    expectLog(broker, /^debug broker\/conn cannot send CONNACK/);
    expect(broker.logs.filter((l) => l.startsWith("critical"))).toEqual([]);
    await control.check();
  });

  it("drops messages larger than the client accepts and keeps the connection", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const raw = await rawConnected(broker, 5, { properties: { maximumPacketSize: 200 } });
    await subscribe(raw, "mps/+", 1);
    await control.publish("mps/big", "x".repeat(500), 1);
    await control.publish("mps/small", "y", 1);
    const p = (await raw.next()) as PublishPacket;
    expect(p).toMatchObject({ type: PacketType.PUBLISH, topic: "mps/small" });
    raw.send({ type: PacketType.PUBACK, packetId: p.packetId! });
    await expectServed(raw);
    expect(brokerOf(broker).stats.messagesDropped).toBeGreaterThanOrEqual(1);
    await control.check();
  });

  it("drops an unacknowledged message that no longer fits when the client comes back with a lower one, and frees its slot", async () => {
    // [MQTT-3.1.2-25] on resend too: kept in flight, the message held the only Receive
    // Maximum slot, and no QoS 1 message reached the session again.
    const broker = await startBroker();
    const control = await Control.start(broker);
    const session = {
      clientId: "mps-resume",
      clean: false,
      properties: { sessionExpiryInterval: 60, receiveMaximum: 1 },
    };
    const first = await rawConnected(broker, 5, session);
    await subscribe(first, "mps/#", 1);
    await control.publish("mps/big", "x".repeat(500), 1);
    expect(await first.next()).toMatchObject({ type: PacketType.PUBLISH, topic: "mps/big" });
    first.destroy(); // not acknowledged
    await until(
      () => !brokerOf(broker).connections.has("mps-resume"),
      3000,
      "the first connection to end",
    );
    const dropped = brokerOf(broker).stats.messagesDropped;

    const again = await RawClient.connect(broker, 5);
    const lower = { ...session.properties, maximumPacketSize: 100 };
    expect(await again.connect({ ...session, properties: lower })).toMatchObject({
      type: PacketType.CONNACK,
      sessionPresent: true,
    });
    await control.publish("mps/small", "y", 1);
    const p = (await again.next()) as PublishPacket;
    expect(p).toMatchObject({ type: PacketType.PUBLISH, topic: "mps/small", dup: false });
    again.send({ type: PacketType.PUBACK, packetId: p.packetId! });
    await expectServed(again);
    expect(brokerOf(broker).stats.messagesDropped).toBe(dropped + 1);
    await control.check();
  });
});

/** Publishes `size`-byte QoS 0 messages on `topic` until `stop()` or `ms` elapse; returns the count. */
async function flood(
  raw: RawClient,
  topic: string,
  size: number,
  stop: () => boolean,
  ms: number,
): Promise<number> {
  const payload = Buffer.alloc(size, 0x61);
  const deadline = Date.now() + ms;
  let sent = 0;
  while (!stop() && Date.now() < deadline) {
    for (let i = 0; i < 16; i++, sent++) raw.send(publishPacket(topic, payload));
    await sleep(5);
  }
  return sent;
}

describe("writeTimeoutMs", () => {
  it("disconnects a client that stops reading, and only it", async () => {
    const broker = await startBroker({ writeTimeoutMs: 300 });
    const control = await Control.start(broker);
    const slow = await SlowReader.connect(broker, 4, { clientId: "slow-reader" });
    slow.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: "flood/#", qos: 0 }],
    });
    await until(() => slow.packets.length > 0, 2000, "SUBACK");
    slow.pause();

    const publisher = await rawConnected(broker, 4);
    const conns = brokerOf(broker).connections;
    await flood(publisher, "flood/x", 64 * 1024, () => !conns.has("slow-reader"), 8000);
    expect(conns.has("slow-reader"), "the slow reader was disconnected").toBe(false);
    expectLog(broker, /^warning broker\/conn slow-reader stopped reading for 300 ms; disconnected/);

    slow.resume();
    await within(slow.closed, 5000, "the slow reader's socket to close");
    await expectServed(publisher);
    await control.check();
  });
});

describe("maxOutgoingBytes", () => {
  it("drops QoS 0 messages to a backed-up client, keeps its buffer bounded, loses nothing else", async () => {
    const limit = 64 * 1024;
    const size = 16 * 1024;
    const broker = await startBroker({ maxOutgoingBytes: limit });
    const control = await Control.start(broker);
    const slow = await SlowReader.connect(broker, 4, { clientId: "backed-up" });
    slow.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: "flood/#", qos: 1 }],
    });
    await until(() => slow.packets.length > 0, 2000, "SUBACK");
    slow.packets.length = 0;
    slow.pause();

    const b = brokerOf(broker);
    const conn = b.connections.get("backed-up")!;
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, conn.channel.bufferedOutgoing);
    }, 1);
    const publisher = await rawConnected(broker, 4);
    let sent = 0;
    try {
      sent = await flood(publisher, "flood/x", size, () => b.stats.messagesDropped >= 200, 8000);
      await expectServed(publisher);
      peak = Math.max(peak, conn.channel.bufferedOutgoing);
    } finally {
      clearInterval(sampler);
    }
    const dropped = b.stats.messagesDropped;
    expect(dropped, "QoS 0 messages were dropped").toBeGreaterThanOrEqual(200);
    // One message over the limit at most (the check is made before each write).
    expect(peak).toBeLessThanOrEqual(limit + size + 64);
    expect(slow.isOpen).toBe(true);

    // A QoS 1 message is not dropped for being behind: it arrives once the client reads again.
    await control.publish("flood/end", "end", 1);
    slow.resume();
    await until(
      () => slow.packets.some((p) => p.type === PacketType.PUBLISH && p.topic === "flood/end"),
      8000,
      "the QoS 1 message behind the flood",
    );
    const qos0 = publishes(slow.packets).filter((p) => p.topic === "flood/x").length;
    expect(qos0 + dropped, "every QoS 0 message was delivered or counted as dropped").toBe(sent);
    await control.check();
  });
});
