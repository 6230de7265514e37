// The connection lifecycle: CONNECT rules (client ids, protocol levels, first and second packets),
// sessions (session present, persistence, v5 expiry), takeover, keep alive, connect timeout,
// DISCONNECT reason codes both ways.
import { type ConnackPacket, type DisconnectPacket, PacketType } from "@myqtt/codec";
import { PublishCode } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { client, RawClient, sleep, startBroker, until } from "./helpers.js";
import {
  asConnack,
  attempt,
  closedEvent,
  collect,
  collecting,
  connackOf,
  disconnectEvent,
  quiet,
  rawConnectBytes,
  uid,
  watch,
} from "./lifecycle-support.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("client identifiers", () => {
  it("3.1.1: an empty client id with clean session is given an id that works", async () => {
    const seen: string[] = [];
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) => {
        seen.push(conn.clientId);
        return 0;
      }),
    );
    const a = await client(broker, { protocolVersion: 4, clientId: "", clean: true });
    const b = await client(broker, { protocolVersion: 4, clientId: "", clean: true });
    expect(seen).toHaveLength(2);
    expect(seen[0]).not.toBe("");
    expect(seen[1]).not.toBe("");
    expect(seen[0]).not.toBe(seen[1]);
    // Both work, and neither took the other over.
    const got = collect(a);
    await a.subscribeAsync("ids/empty", { qos: 1 });
    await b.publishAsync("ids/empty", "hello", { qos: 1 });
    await until(() => got.length === 1, 2000, "delivery to an assigned-id client");
    expect(got[0]?.payload).toBe("hello");
    expect(a.connected && b.connected).toBe(true);
  });

  it("3.1.1: an empty client id without clean session is refused with CONNACK 2", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 4);
    const connack = asConnack(await raw.connect({ clientId: "", clean: false }));
    expect(connack).toEqual({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: 2 });
    await raw.closed;
  });

  it("3.1: an empty client id is refused with CONNACK 2", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 3);
    const connack = asConnack(await raw.connect({ clientId: "", clean: true, protocolVersion: 3 }));
    expect(connack.reasonCode).toBe(2);
    await raw.closed;
  });

  it("3.1: a client with an id is accepted (MQIsdp level 3)", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 3);
    const connack = asConnack(await raw.connect({ clientId: "old-timer", protocolVersion: 3 }));
    expect(connack.reasonCode).toBe(0);
    raw.send({ type: PacketType.PINGREQ });
    expect((await raw.next())?.type).toBe(PacketType.PINGRESP);
  });

  it("5.0: an empty client id gets an Assigned Client Identifier in CONNACK, which works", async () => {
    const broker = await startBroker();
    const a = await client(broker, { protocolVersion: 5, clientId: "" });
    const assigned = connackOf(a)?.properties?.assignedClientIdentifier;
    expect(typeof assigned).toBe("string");
    expect(assigned!.length).toBeGreaterThan(0);
    const got = collect(a);
    await a.subscribeAsync("ids/v5", { qos: 1 });
    await a.publishAsync("ids/v5", "self", { qos: 1 });
    await until(() => got.length === 1, 2000, "delivery to the assigned id");

    // Also with Clean Start 0: 5.0 assigns an id whatever the flag.
    const raw = await RawClient.connect(broker, 5);
    const connack = asConnack(
      await raw.connect({ clientId: "", clean: false, protocolVersion: 5 }),
    );
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties?.assignedClientIdentifier).toMatch(/.+/);
    expect(connack.properties?.assignedClientIdentifier).not.toBe(assigned);
  });

  it("5.0: a client that sent an id gets no Assigned Client Identifier", async () => {
    const broker = await startBroker();
    const a = await client(broker, { protocolVersion: 5, clientId: uid("named") });
    expect(connackOf(a)?.properties?.assignedClientIdentifier).toBeUndefined();
  });
});

describe("session present and persistent sessions", () => {
  for (const protocolVersion of [4, 5] as const) {
    const persistent =
      protocolVersion === 5 ? { properties: { sessionExpiryInterval: 60 } } : ({} as const);

    it(`${protocolVersion === 4 ? "3.1.1" : "5.0"}: session present is false when new, true when resumed, false after a clean start`, async () => {
      const broker = await startBroker();
      const clientId = uid("sp");
      const first = await client(broker, {
        protocolVersion,
        clientId,
        clean: false,
        ...persistent,
      });
      expect(connackOf(first)?.sessionPresent).toBe(false);
      await first.endAsync();

      const resumed = await client(broker, {
        protocolVersion,
        clientId,
        clean: false,
        ...persistent,
      });
      expect(connackOf(resumed)?.sessionPresent).toBe(true);
      await resumed.endAsync();

      const fresh = await client(broker, { protocolVersion, clientId, clean: true });
      expect(connackOf(fresh)?.sessionPresent).toBe(false);
      await fresh.endAsync();

      // The clean session ended the old one: nothing to resume.
      const again = await client(broker, {
        protocolVersion,
        clientId,
        clean: false,
        ...persistent,
      });
      expect(connackOf(again)?.sessionPresent).toBe(false);
    });
  }

  it("3.1.1: a persistent session keeps its subscriptions and queues QoS 1 messages while away", async () => {
    const broker = await startBroker();
    const clientId = uid("persist");
    const sub = await client(broker, { protocolVersion: 4, clientId, clean: false });
    await sub.subscribeAsync("persist/+", { qos: 1 });
    await sub.endAsync();

    const pub = await client(broker, { protocolVersion: 4 });
    await pub.publishAsync("persist/a", "while-away", { qos: 1 });

    const { got } = await collecting(broker, { protocolVersion: 4, clientId, clean: false });
    // No SUBSCRIBE this time: the session's subscription is still there.
    await until(() => got.length === 1, 2000, "the queued message");
    await pub.publishAsync("persist/b", "after", { qos: 1 });
    await until(() => got.length === 2, 2000, "a message after reconnecting");
    expect(got.map((m) => [m.topic, m.payload, m.qos])).toEqual([
      ["persist/a", "while-away", 1],
      ["persist/b", "after", 1],
    ]);
  });

  it("3.1.1: a clean session's subscriptions end with its connection", async () => {
    const broker = await startBroker();
    const clientId = uid("clean");
    const sub = await client(broker, { protocolVersion: 4, clientId, clean: true });
    await sub.subscribeAsync("cleaned/x", { qos: 1 });
    await sub.endAsync();
    const back = await client(broker, { protocolVersion: 4, clientId, clean: true });
    const got = collect(back);
    const pub = await client(broker, { protocolVersion: 4 });
    await pub.publishAsync("cleaned/x", "nobody", { qos: 1 });
    await sleep(200);
    expect(got).toEqual([]);
  });
});

describe("5.0 session expiry", () => {
  it("Session Expiry Interval 0 (absent) ends the session at disconnect", async () => {
    const broker = await startBroker();
    const clientId = uid("exp0");
    const a = await client(broker, { protocolVersion: 5, clientId, clean: false });
    await a.subscribeAsync("exp0/t", { qos: 1 });
    await a.endAsync();
    const pub = await client(broker, { protocolVersion: 5 });
    await pub.publishAsync("exp0/t", "lost", { qos: 1 });
    const b = await client(broker, { protocolVersion: 5, clientId, clean: false });
    expect(connackOf(b)?.sessionPresent).toBe(false);
    const got = collect(b);
    await pub.publishAsync("exp0/t", "not subscribed", { qos: 1 });
    await sleep(150);
    expect(got).toEqual([]);
  });

  it("Session Expiry Interval 1 keeps the session (and its queue) for 1 s, then it is gone", async () => {
    const broker = await startBroker();
    const clientId = uid("exp1");
    const opts = {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 1 },
    } as const;
    const a = await client(broker, opts);
    await a.subscribeAsync("exp1/t", { qos: 1 });
    await a.endAsync();
    const pub = await client(broker, { protocolVersion: 5 });
    await pub.publishAsync("exp1/t", "kept", { qos: 1 });

    const { client: b, got } = await collecting(broker, opts);
    expect(connackOf(b)?.sessionPresent).toBe(true);
    await until(() => got.length === 1, 2000, "the message queued in the session");
    expect(got[0]?.payload).toBe("kept");
    await b.endAsync();

    await sleep(1600);
    const c = await client(broker, opts);
    expect(connackOf(c)?.sessionPresent).toBe(false);
    const late = collect(c);
    await pub.publishAsync("exp1/t", "expired subscription", { qos: 1 });
    await sleep(150);
    expect(late).toEqual([]);
  });

  it("a DISCONNECT can set the expiry to 0: the session ends", async () => {
    const broker = await startBroker();
    const clientId = uid("disc0");
    const opts = {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    } as const;
    const a = await client(broker, opts);
    await a.subscribeAsync("disc0/t", { qos: 1 });
    await new Promise<void>((resolve) =>
      a.end(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } }, () => resolve()),
    );
    await sleep(50);
    const b = await client(broker, opts);
    expect(connackOf(b)?.sessionPresent).toBe(false);
  });

  it("a DISCONNECT can lengthen a nonzero expiry", async () => {
    const broker = await startBroker();
    const clientId = uid("longer");
    const raw = await RawClient.connect(broker, 5);
    const connack = asConnack(
      await raw.connect({
        protocolVersion: 5,
        clientId,
        clean: false,
        properties: { sessionExpiryInterval: 1 },
      }),
    );
    expect(connack.reasonCode).toBe(0);
    raw.send({
      type: PacketType.DISCONNECT,
      reasonCode: 0,
      properties: { sessionExpiryInterval: 30 },
    });
    await raw.closed;
    await sleep(1600);
    const back = await RawClient.connect(broker, 5);
    const again = asConnack(
      await back.connect({
        protocolVersion: 5,
        clientId,
        clean: false,
        properties: { sessionExpiryInterval: 30 },
      }),
    );
    expect(again.sessionPresent).toBe(true);
  });

  it("a DISCONNECT that sets an expiry after CONNECT set 0 is a protocol error: DISCONNECT 0x82, the will fires, the session ends", async () => {
    const broker = await startBroker();
    const wills = await watch(broker, "will/exp/#");
    const clientId = uid("bad-exp");
    const raw = await RawClient.connect(broker, 5);
    asConnack(
      await raw.connect({
        protocolVersion: 5,
        clientId,
        clean: false,
        will: { topic: "will/exp/x", payload: enc("gone"), qos: 0, retain: false },
      }),
    );
    raw.send({
      type: PacketType.DISCONNECT,
      reasonCode: 0,
      properties: { sessionExpiryInterval: 30 },
    });
    const reply = (await raw.next()) as DisconnectPacket | null;
    expect(reply?.type).toBe(PacketType.DISCONNECT);
    expect(reply?.reasonCode).toBe(0x82);
    await raw.closed;
    await until(() => wills.length === 1, 2000, "the will of an invalid DISCONNECT");
    const back = await RawClient.connect(broker, 5);
    const again = asConnack(await back.connect({ protocolVersion: 5, clientId, clean: false }));
    expect(again.sessionPresent).toBe(false);
  });

  it("maxSessionExpiryInterval caps the requested expiry and says so in CONNACK", async () => {
    const broker = await startBroker({ maxSessionExpiryInterval: 10 });
    const a = await client(broker, {
      protocolVersion: 5,
      clientId: uid("cap"),
      properties: { sessionExpiryInterval: 3600 },
    });
    expect(connackOf(a)?.properties?.sessionExpiryInterval).toBe(10);
  });
});

describe("session takeover", () => {
  it("5.0: a second connection with the same id takes over: the first gets DISCONNECT 0x8E and is closed, its will fires", async () => {
    const broker = await startBroker();
    const wills = await watch(broker, "will/takeover/#");
    const clientId = uid("dup5");
    const first = quiet(
      await client(broker, {
        protocolVersion: 5,
        clientId,
        will: {
          topic: "will/takeover/v5",
          payload: Buffer.from("first died"),
          qos: 1,
          retain: false,
        },
      }),
    );
    const told = disconnectEvent(first);
    const firstClosed = closedEvent(first);
    const second = await client(broker, { protocolVersion: 5, clientId });
    expect((await told).reasonCode).toBe(0x8e);
    await firstClosed;
    await until(() => wills.length === 1, 2000, "the first connection's will");
    expect(wills[0]).toMatchObject({ topic: "will/takeover/v5", payload: "first died" });
    // The new connection is the live one.
    const got = collect(second);
    await second.subscribeAsync("takeover/t", { qos: 1 });
    await second.publishAsync("takeover/t", "mine", { qos: 1 });
    await until(() => got.length === 1, 2000, "delivery to the second connection");
    expect(second.connected).toBe(true);
  });

  it("3.1.1: the first connection is closed (no DISCONNECT exists in 3.1.1) and its will fires", async () => {
    const broker = await startBroker();
    const wills = await watch(broker, "will/takeover/#");
    const clientId = uid("dup4");
    const raw = await RawClient.connect(broker, 4);
    asConnack(
      await raw.connect({
        clientId,
        will: { topic: "will/takeover/v4", payload: enc("bye"), qos: 0, retain: false },
      }),
    );
    const second = await client(broker, { protocolVersion: 4, clientId });
    await raw.closed;
    expect(raw.packets).toEqual([]);
    await until(() => wills.length === 1, 2000, "the will");
    expect(second.connected).toBe(true);
  });

  it("3.1.1: taking over a persistent session resumes it (session present, subscriptions kept)", async () => {
    const broker = await startBroker();
    const clientId = uid("dup-persist");
    const first = quiet(await client(broker, { protocolVersion: 4, clientId, clean: false }));
    await first.subscribeAsync("resume/t", { qos: 1 });
    const firstClosed = closedEvent(first);
    const second = await client(broker, { protocolVersion: 4, clientId, clean: false });
    await firstClosed;
    expect(connackOf(second)?.sessionPresent).toBe(true);
    const got = collect(second);
    const pub = await client(broker);
    await pub.publishAsync("resume/t", "to the new one", { qos: 1 });
    await until(() => got.length === 1, 2000, "delivery through the resumed subscription");
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`duplicateClientId "reject": the second ${protocolVersion === 4 ? "3.1.1" : "5.0"} connection is refused (${protocolVersion === 4 ? "2" : "0x85"}) and the first stays`, async () => {
      const broker = await startBroker({ duplicateClientId: "reject" });
      const clientId = uid("reject");
      const first = await client(broker, { protocolVersion, clientId });
      const got = collect(first);
      await first.subscribeAsync("stay/t", { qos: 1 });
      const second = await attempt(broker, { protocolVersion, clientId });
      expect(second.connected).toBe(false);
      expect(second.error?.code).toBe(protocolVersion === 4 ? 2 : 0x85);
      const pub = await client(broker, { protocolVersion });
      await pub.publishAsync("stay/t", "still here", { qos: 1 });
      await until(() => got.length === 1, 2000, "delivery to the first connection");
      expect(first.connected).toBe(true);
    });
  }
});

describe("5.0 will delay", () => {
  it("a lost connection's will waits for its Will Delay Interval", async () => {
    const broker = await startBroker();
    const wills = await watch(broker, "will/delay/#");
    const raw = await RawClient.connect(broker, 5);
    asConnack(
      await raw.connect({
        protocolVersion: 5,
        clientId: uid("delayed"),
        properties: { sessionExpiryInterval: 60 },
        will: {
          topic: "will/delay/x",
          payload: enc("late"),
          qos: 0,
          retain: false,
          properties: { willDelayInterval: 1 },
        },
      }),
    );
    const start = Date.now();
    raw.destroy();
    await sleep(500);
    expect(wills).toEqual([]);
    await until(() => wills.length === 1, 2000, "the delayed will");
    expect(Date.now() - start).toBeGreaterThanOrEqual(900);
  });

  it("a takeover that resumes the session within the Will Delay Interval cancels the will [MQTT-3.1.3-9]", async () => {
    const broker = await startBroker();
    const wills = await watch(broker, "will/resume/#");
    const clientId = uid("resume-will");
    const first = quiet(
      await client(broker, {
        protocolVersion: 5,
        clientId,
        clean: false,
        properties: { sessionExpiryInterval: 60 },
        will: {
          topic: "will/resume/x",
          payload: Buffer.from("should not"),
          qos: 0,
          retain: false,
          properties: { willDelayInterval: 1 },
        },
      }),
    );
    const told = disconnectEvent(first);
    const second = await client(broker, {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    });
    expect((await told).reasonCode).toBe(0x8e);
    expect(connackOf(second)?.sessionPresent).toBe(true);
    await sleep(1400);
    expect(wills).toEqual([]);
  });
});

describe("keep alive", () => {
  it("3.1.1: a client silent for 1.5 x its keep alive is closed", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 4);
    asConnack(await raw.connect({ keepAlive: 1 }));
    const start = Date.now();
    await raw.closed;
    const elapsed = Date.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(2600);
    expect(raw.packets).toEqual([]);
  });

  it("5.0: a client silent for 1.5 x its keep alive gets DISCONNECT 0x8D, then is closed; its will fires", async () => {
    const broker = await startBroker();
    const wills = await watch(broker, "will/ka/#");
    const raw = await RawClient.connect(broker, 5);
    asConnack(
      await raw.connect({
        protocolVersion: 5,
        keepAlive: 1,
        will: { topic: "will/ka/x", payload: enc("timed out"), qos: 0, retain: false },
      }),
    );
    const start = Date.now();
    const packet = (await raw.next(3000)) as DisconnectPacket | null;
    const elapsed = Date.now() - start;
    expect(packet?.type).toBe(PacketType.DISCONNECT);
    expect(packet?.reasonCode).toBe(0x8d);
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(2600);
    await raw.closed;
    await until(() => wills.length === 1, 2000, "the will of a timed-out client");
  });

  it("clients that ping (raw and MQTT.js) stay connected; keep alive 0 is never enforced", async () => {
    const broker = await startBroker();
    const pinger = await RawClient.connect(broker, 4);
    asConnack(await pinger.connect({ keepAlive: 1 }));
    const idle = await RawClient.connect(broker, 4);
    asConnack(await idle.connect({ keepAlive: 0 }));
    const js = quiet(await client(broker, { protocolVersion: 5, keepalive: 1 }));
    let jsClosed = false;
    js.on("close", () => {
      jsClosed = true;
    });
    for (let i = 0; i < 4; i++) {
      await sleep(600);
      pinger.send({ type: PacketType.PINGREQ });
      expect((await pinger.next())?.type).toBe(PacketType.PINGRESP);
    }
    expect(pinger.isOpen).toBe(true);
    expect(idle.isOpen).toBe(true);
    expect(jsClosed).toBe(false);
    expect(js.connected).toBe(true);
  });

  it("maxKeepAlive: a 5.0 client is told a lower keep alive with Server Keep Alive", async () => {
    const broker = await startBroker({ maxKeepAlive: 10 });
    const js = await client(broker, { protocolVersion: 5, keepalive: 60 });
    expect(connackOf(js)?.properties?.serverKeepAlive).toBe(10);

    const none = await RawClient.connect(broker, 5);
    const noneAck = asConnack(await none.connect({ protocolVersion: 5, keepAlive: 0 }));
    expect(noneAck.properties?.serverKeepAlive).toBe(10);

    const within = await RawClient.connect(broker, 5);
    const withinAck = asConnack(await within.connect({ protocolVersion: 5, keepAlive: 5 }));
    expect(withinAck.properties?.serverKeepAlive).toBeUndefined();
  });

  it("maxKeepAlive: the Server Keep Alive is the one enforced", async () => {
    const broker = await startBroker({ maxKeepAlive: 1 });
    const raw = await RawClient.connect(broker, 5);
    const ack = asConnack(await raw.connect({ protocolVersion: 5, keepAlive: 60 }));
    expect(ack.properties?.serverKeepAlive).toBe(1);
    const packet = (await raw.next(3000)) as DisconnectPacket | null;
    expect(packet?.reasonCode).toBe(0x8d);
    await raw.closed;
  });
});

describe("connect timeout, first and second packet, protocol levels", () => {
  it("a socket that never sends CONNECT is closed after connectTimeoutMs", async () => {
    const broker = await startBroker({ connectTimeoutMs: 300 });
    const raw = await RawClient.connect(broker, 4);
    const start = Date.now();
    await raw.closed;
    const elapsed = Date.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1500);
    expect(raw.packets).toEqual([]);
  });

  it("a socket that sends only part of a CONNECT is closed after connectTimeoutMs", async () => {
    const broker = await startBroker({ connectTimeoutMs: 300 });
    const raw = await RawClient.connect(broker, 4);
    raw.write(rawConnectBytes("MQTT", 4).slice(0, 6));
    const start = Date.now();
    await raw.closed;
    expect(Date.now() - start).toBeLessThan(1500);
    expect(raw.packets).toEqual([]);
  });

  it("a first packet other than CONNECT closes the connection, unanswered", async () => {
    const broker = await startBroker();
    const ping = await RawClient.connect(broker, 4);
    ping.send({ type: PacketType.PINGREQ });
    await ping.closed;
    expect(ping.packets).toEqual([]);

    // A PUBLISH before CONNECT is not routed.
    const seen = await watch(broker, "early/#");
    const pub = await RawClient.connect(broker, 4);
    pub.send({
      type: PacketType.PUBLISH,
      topic: "early/x",
      payload: enc("sneaky"),
      qos: 0,
      retain: false,
      dup: false,
    });
    await pub.closed;
    await sleep(100);
    expect(seen).toEqual([]);
  });

  it("3.1.1: a second CONNECT closes the connection, and the will fires", async () => {
    const broker = await startBroker();
    const wills = await watch(broker, "will/second/#");
    const raw = await RawClient.connect(broker, 4);
    asConnack(
      await raw.connect({
        clientId: uid("twice"),
        will: { topic: "will/second/v4", payload: enc("w"), qos: 0, retain: false },
      }),
    );
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 0,
      clientId: "again",
    });
    await raw.closed;
    expect(raw.packets).toEqual([]);
    await until(() => wills.length === 1, 2000, "the will");
  });

  it("5.0: a second CONNECT gets DISCONNECT 0x82 and the connection is closed", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 5);
    asConnack(await raw.connect({ protocolVersion: 5, clientId: uid("twice5") }));
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 5,
      clean: true,
      keepAlive: 0,
      clientId: "again",
    });
    const packet = (await raw.next()) as DisconnectPacket | null;
    expect(packet).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x82 });
    await raw.closed;
  });

  it.each([
    ["MQTT", 6],
    ["MQTT", 3],
    ["MQIsdp", 4],
  ])(
    "protocol %s level %i is refused with CONNACK return code 1, then closed",
    async (name, level) => {
      const broker = await startBroker();
      const raw = await RawClient.connect(broker, 4);
      raw.write(rawConnectBytes(name, level));
      const connack = (await raw.next()) as ConnackPacket | null;
      expect(connack).toEqual({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: 1 });
      await raw.closed;
    },
  );

  it("an unknown protocol name is closed without CONNACK", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 4);
    raw.write(rawConnectBytes("MQTX", 4));
    await raw.closed;
    expect(raw.packets).toEqual([]);
  });

  it("a refused CONNECT's connection does not process what the client sent after it", async () => {
    const broker = await startBroker({}, (ctx) => ctx.setOnConnect(() => 5));
    const seen: string[] = [];
    const raw = await RawClient.connect(broker, 4);
    broker.ctx.setOnPublish((_c, _conn, msg) => {
      seen.push(msg.topic);
      return PublishCode.OK;
    });
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 0,
      clientId: "refused",
    });
    raw.send({
      type: PacketType.PUBLISH,
      topic: "after/refusal",
      payload: enc("x"),
      qos: 0,
      retain: false,
      dup: false,
    });
    const connack = asConnack(await raw.next());
    expect(connack.reasonCode).toBe(5);
    await raw.closed;
    expect(seen).toEqual([]); // [MQTT-3.1.4-5]
  });
});

describe("DISCONNECT", () => {
  it("5.0: DISCONNECT 0x04 (with will message) keeps the will", async () => {
    const broker = await startBroker();
    const wills = await watch(broker, "will/d/#");
    const c = await client(broker, {
      protocolVersion: 5,
      will: { topic: "will/d/04", payload: Buffer.from("as asked"), qos: 0, retain: false },
    });
    await new Promise<void>((resolve) => c.end(false, { reasonCode: 0x04 }, () => resolve()));
    await until(() => wills.length === 1, 2000, "the will after DISCONNECT 0x04");
    expect(wills[0]).toMatchObject({ topic: "will/d/04", payload: "as asked" });
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`${protocolVersion === 4 ? "3.1.1" : "5.0"}: a normal DISCONNECT drops the will; a lost connection publishes it`, async () => {
      const broker = await startBroker();
      const wills = await watch(broker, "will/n/#");
      const polite = await client(broker, {
        protocolVersion,
        will: { topic: "will/n/polite", payload: Buffer.from("no"), qos: 0, retain: false },
      });
      await polite.endAsync();
      const rude = await RawClient.connect(broker, protocolVersion);
      asConnack(
        await rude.connect({
          protocolVersion,
          will: { topic: "will/n/rude", payload: enc("yes"), qos: 1, retain: false },
        }),
      );
      rude.destroy();
      await until(() => wills.length === 1, 2000, "the will of the lost connection");
      await sleep(100);
      expect(wills.map((w) => w.topic)).toEqual(["will/n/rude"]);
    });
  }

  it("5.0: conn.close(0x98) from a hook sends DISCONNECT 0x98 and closes; the will fires", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnPublish((_ctx, conn, msg) => {
        if (msg.topic !== "kick/me") return PublishCode.OK;
        conn.close(0x98);
        return PublishCode.DISCARD;
      }),
    );
    const wills = await watch(broker, "will/kick/#");
    const c = quiet(
      await client(broker, {
        protocolVersion: 5,
        will: { topic: "will/kick/x", payload: Buffer.from("kicked"), qos: 0, retain: false },
      }),
    );
    const told = disconnectEvent(c);
    const closed = closedEvent(c);
    c.publish("kick/me", "please");
    expect((await told).reasonCode).toBe(0x98);
    await closed;
    await until(() => wills.length === 1, 2000, "the will of a kicked client");
  });

  it("3.1.1: conn.close() from a hook closes the connection without a packet", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnPublish((_ctx, conn) => {
        conn.close(0x98);
        return PublishCode.DISCARD;
      }),
    );
    const raw = await RawClient.connect(broker, 4);
    asConnack(await raw.connect());
    raw.send({
      type: PacketType.PUBLISH,
      topic: "any",
      payload: enc("x"),
      qos: 1,
      packetId: 1,
      retain: false,
      dup: false,
    });
    await raw.closed;
    expect(raw.packets).toEqual([]);
  });

  it("5.0: conn.shutdown() from a hook drops the connection without DISCONNECT; the will fires", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnSubscribe((_ctx, conn, filter) => {
        if (filter === "shut/me") conn.shutdown();
        return 1;
      }),
    );
    const seen = await watch(broker, "will/shut/#");
    const raw = await RawClient.connect(broker, 5);
    asConnack(
      await raw.connect({
        protocolVersion: 5,
        will: { topic: "will/shut/x", payload: enc("dropped"), qos: 0, retain: false },
      }),
    );
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: "shut/me", qos: 0 }],
    });
    await raw.closed;
    expect(raw.packets).toEqual([]);
    await until(() => seen.length === 1, 2000, "the will of a shut down client");
  });
});
