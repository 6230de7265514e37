// The server hooks of a Ctx: connect (codes, DEFERRED, redirection, the ServerConnection the hook
// sees), publish, subscribe, unsubscribe and close; each as a plain value and as a Promise; and
// hooks that throw or reject.

import type { Socket } from "node:net";
import {
  type ConnackPacket,
  type DisconnectPacket,
  PacketType,
  type SubackPacket,
  type UnsubackPacket,
} from "@myqtt/codec";
import {
  ConnackCode,
  type ConnectReply,
  type Msg,
  PublishCode,
  QOS_DENIED,
  type ServerConnection,
} from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { client, RawClient, sleep, startBroker, until } from "./helpers.js";
import {
  asConnack,
  attempt,
  closedEvent,
  collect,
  connackOf,
  expectCount,
  quiet,
  uid,
  watch,
} from "./lifecycle-support.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const later = <T>(value: T, ms = 20): Promise<T> =>
  new Promise((resolve) => setTimeout(() => resolve(value), ms));
const FORMS = ["value", "promise"] as const;
type Form = (typeof FORMS)[number];
/** Answers `value` directly or through a Promise, as the test asks. */
const answer = <T>(form: Form, value: T): T | Promise<T> =>
  form === "value" ? value : later(value);
const VERSIONS = [4, 5] as const;
const vname = (v: 4 | 5): string => (v === 4 ? "3.1.1" : "5.0");

function publishPacket(topic: string, qos: 0 | 1 | 2, packetId: number, payload = "x") {
  return {
    type: PacketType.PUBLISH,
    topic,
    payload: enc(payload),
    qos,
    retain: false,
    dup: false,
    ...(qos > 0 ? { packetId } : {}),
  } as const;
}

describe("connect hook", () => {
  const V5_OF: Record<number, number> = { 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87 };

  for (const form of FORMS) {
    it(`MyQtt codes 0-5 (as a ${form}): 3.1.1 clients get them as is, 5.0 clients as reason codes`, async () => {
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnConnect((_ctx, conn) => answer(form, Number(conn.username))),
      );
      for (const code of [1, 2, 3, 4, 5]) {
        const v4 = await attempt(broker, { protocolVersion: 4, username: String(code) });
        expect(v4.connected).toBe(false);
        expect(v4.connack?.returnCode).toBe(code);
        const v5 = await attempt(broker, { protocolVersion: 5, username: String(code) });
        expect(v5.connected).toBe(false);
        expect(v5.connack?.reasonCode).toBe(V5_OF[code]);
      }
      for (const protocolVersion of VERSIONS) {
        const ok = await attempt(broker, { protocolVersion, username: "0" });
        expect(ok.connected).toBe(true);
      }
    });
  }

  it("5.0 reason codes from the hook reach 5.0 clients as is and 3.1.1 clients as the nearest return code", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) => Number(conn.username)),
    );
    const cases: [number, number][] = [
      [0x80, 5],
      [0x84, 1],
      [0x85, 2],
      [0x86, 4],
      [0x87, 5],
      [0x88, 3],
      [0x89, 3],
      [0x8a, 5],
      [0x8c, 4],
      [0x97, 3],
      [0x9f, 3],
    ];
    for (const [v5code, v4code] of cases) {
      const v5 = await attempt(broker, { protocolVersion: 5, username: String(v5code) });
      expect(v5.connack?.reasonCode, `0x${v5code.toString(16)} on 5.0`).toBe(v5code);
      const v4 = await attempt(broker, { protocolVersion: 4, username: String(v5code) });
      expect(v4.connack?.returnCode, `0x${v5code.toString(16)} on 3.1.1`).toBe(v4code);
    }
  });

  it("a refused CONNECT is answered, then the connection is closed", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect(() => ConnackCode.NOT_AUTHORIZED),
    );
    for (const protocolVersion of VERSIONS) {
      const raw = await RawClient.connect(broker, protocolVersion);
      const connack = asConnack(await raw.connect({ protocolVersion }));
      expect(connack.reasonCode).toBe(protocolVersion === 4 ? 5 : 0x87);
      expect(connack.sessionPresent).toBe(false);
      await raw.closed;
    }
  });

  for (const protocolVersion of VERSIONS) {
    it(`${vname(protocolVersion)}: DEFERRED, then sendConnectReply(ACCEPTED) from a timer: CONNACK arrives late, the connection works (test_23)`, async () => {
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnConnect((_ctx, conn) => {
          setTimeout(() => conn.sendConnectReply(ConnackCode.ACCEPTED), 300);
          return ConnackCode.DEFERRED;
        }),
      );
      const start = Date.now();
      const a = await attempt(broker, { protocolVersion, clientId: "test_23" });
      const elapsed = Date.now() - start;
      expect(a.connected).toBe(true);
      expect(elapsed).toBeGreaterThanOrEqual(280);
      expect(a.connack?.sessionPresent).toBe(false);
      const got = collect(a.client);
      await a.client.subscribeAsync("myqtt/test/deferred", { qos: 1 });
      await a.client.publishAsync("myqtt/test/deferred", "this is a 24 byte msg...", { qos: 1 });
      await until(() => got.length === 1, 2000, "the deferred client's message");
      expect(got[0]?.payload).toHaveLength(24);
    });
  }

  it("DEFERRED, then a refusal: CONNACK 5 / 0x87 arrives late and the connection closes", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) => {
        setTimeout(() => conn.sendConnectReply(ConnackCode.NOT_AUTHORIZED), 150);
        return ConnackCode.DEFERRED;
      }),
    );
    for (const protocolVersion of VERSIONS) {
      const raw = await RawClient.connect(broker, protocolVersion);
      const start = Date.now();
      const connack = asConnack(await raw.connect({ protocolVersion }));
      expect(Date.now() - start).toBeGreaterThanOrEqual(130);
      expect(connack.reasonCode).toBe(protocolVersion === 4 ? 5 : 0x87);
      await raw.closed;
    }
  });

  for (const protocolVersion of VERSIONS) {
    it(`${vname(protocolVersion)}: packets sent right after CONNECT wait for a DEFERRED CONNACK instead of closing the connection`, async () => {
      // Clients need not wait for CONNACK (3.1.1 3.1.4, v5 3.1.4).
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnConnect((_ctx, conn) => {
          setTimeout(() => conn.sendConnectReply(ConnackCode.ACCEPTED), 200);
          return ConnackCode.DEFERRED;
        }),
      );
      const raw = await RawClient.connect(broker, protocolVersion);
      raw.send({
        type: PacketType.CONNECT,
        protocolVersion,
        clean: true,
        keepAlive: 30,
        clientId: uid("pipe"),
      });
      raw.send({
        type: PacketType.SUBSCRIBE,
        packetId: 7,
        subscriptions: [{ topicFilter: "pipe/t", qos: 1 }],
      });
      const connack = (await raw.next()) as ConnackPacket | null;
      expect(connack).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0 });
      const suback = (await raw.next()) as SubackPacket | null;
      expect(suback).toMatchObject({ type: PacketType.SUBACK, packetId: 7, reasonCodes: [1] });
      expect(raw.isOpen).toBe(true);
    });
  }

  it("a DEFERRED CONNECT never answered is closed after connectTimeoutMs, without CONNACK", async () => {
    let closes = 0;
    const broker = await startBroker({ connectTimeoutMs: 300 }, (ctx) => {
      ctx.setOnConnect(() => ConnackCode.DEFERRED);
      ctx.setOnClose(() => {
        closes++;
      });
    });
    const raw = await RawClient.connect(broker, 5);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 5,
      clean: true,
      keepAlive: 0,
      clientId: "forgotten",
    });
    const start = Date.now();
    await raw.closed;
    expect(Date.now() - start).toBeLessThan(1500);
    expect(raw.packets).toEqual([]);
    expect(closes).toBe(0);
  });

  it("a DEFERRED client that leaves before the reply: the late sendConnectReply is harmless", async () => {
    let pending: ServerConnection | null = null;
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) => {
        if (pending !== null) return ConnackCode.ACCEPTED;
        pending = conn;
        return ConnackCode.DEFERRED;
      }),
    );
    const raw = await RawClient.connect(broker, 4);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 0,
      clientId: "impatient",
    });
    await until(() => pending !== null, 2000, "the deferred hook");
    raw.destroy();
    await sleep(50);
    (pending as unknown as ServerConnection).sendConnectReply(ConnackCode.ACCEPTED);
    expect((pending as unknown as ServerConnection).isOk()).toBe(false);
    const other = await client(broker, { clientId: "impatient" });
    expect(other.connected).toBe(true);
  });

  for (const when of ["before the hook returns", "in a microtask, while an async hook runs"]) {
    it(`DEFERRED with sendConnectReply ${when}: the early reply is kept and answered at once`, async () => {
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnConnect(
          when.startsWith("before")
            ? (_ctx, conn) => {
                conn.sendConnectReply(ConnackCode.ACCEPTED);
                return ConnackCode.DEFERRED;
              }
            : async (_ctx, conn) => {
                // A lookup that resolves at once (a cache hit) answers before the hook returned.
                void Promise.resolve().then(() => conn.sendConnectReply(ConnackCode.ACCEPTED));
                return ConnackCode.DEFERRED;
              },
        ),
      );
      const raw = await RawClient.connect(broker, 5);
      const start = Date.now();
      expect(asConnack(await raw.connect({ protocolVersion: 5 })).reasonCode).toBe(0);
      expect(Date.now() - start).toBeLessThan(500);
    });
  }

  it("sendConnectReply(DEFERRED) is ignored (and logged): the later reply still lets the client in", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) => {
        setTimeout(() => conn.sendConnectReply(ConnackCode.DEFERRED), 20);
        setTimeout(() => conn.sendConnectReply(ConnackCode.ACCEPTED), 60);
        return ConnackCode.DEFERRED;
      }),
    );
    const raw = await RawClient.connect(broker, 5);
    expect(asConnack(await raw.connect({ protocolVersion: 5 })).reasonCode).toBe(0);
    // Before, the second DEFERRED kept what the client sent next held back for good.
    raw.send({ type: PacketType.PINGREQ });
    expect((await raw.next(2000))?.type).toBe(PacketType.PINGRESP);
    expect(broker.logs.some((l) => /sendConnectReply\(DEFERRED\) ignored/.test(l))).toBe(true);
  });

  it("sendConnectReply with something that is no reply throws a TypeError at the call", async () => {
    let conn: ServerConnection | null = null;
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, c) => {
        conn = c;
        return ConnackCode.DEFERRED;
      }),
    );
    const raw = await RawClient.connect(broker, 4);
    const reply = raw.connect({ clientId: "t" });
    await until(() => conn !== null, 2000, "the hook");
    const c = conn as unknown as ServerConnection;
    expect(() => c.sendConnectReply(undefined as unknown as ConnectReply)).toThrow(
      /sendConnectReply needs a CONNACK code/,
    );
    c.sendConnectReply(ConnackCode.ACCEPTED);
    expect(asConnack(await reply).reasonCode).toBe(0);
  });

  for (const form of FORMS) {
    for (const [what, value] of [
      ["undefined", undefined],
      ["null", null],
      ["an empty object", {}],
    ] as const) {
      it(`${form}: a connect hook that returns ${what} (a forgotten return) fails: CONNACK 5 / 0x80, logged`, async () => {
        const broker = await startBroker({}, (ctx) =>
          ctx.setOnConnect(() => answer(form, value) as unknown as ConnectReply),
        );
        for (const protocolVersion of VERSIONS) {
          const raw = await RawClient.connect(broker, protocolVersion);
          const connack = asConnack(await raw.connect({ protocolVersion }));
          expect(connack.reasonCode).toBe(protocolVersion === 4 ? 5 : 0x80);
          await raw.closed;
        }
        expect(broker.logs.some((l) => /critical .*connect hook failed/.test(l))).toBe(true);
      });
    }
  }

  it("sendConnectReply on a connection that is not waiting for one is ignored (and logged)", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnPublish((_ctx, conn) => {
        conn.sendConnectReply(ConnackCode.NOT_AUTHORIZED);
        return PublishCode.OK;
      }),
    );
    const raw = await RawClient.connect(broker, 4);
    asConnack(await raw.connect());
    raw.send(publishPacket("late/reply", 1, 3));
    expect(await raw.next()).toEqual({ type: PacketType.PUBACK, packetId: 3 });
    raw.send({ type: PacketType.PINGREQ });
    expect((await raw.next())?.type).toBe(PacketType.PINGRESP);
    expect(raw.isOpen).toBe(true);
    expect(broker.logs.some((l) => l.includes("sendConnectReply ignored"))).toBe(true);
  });

  it("server redirection: 0x9C with a Server Reference reaches a 5.0 client; a 3.1.1 client gets 3", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) =>
        conn.username === "moved"
          ? { reasonCode: 0x9d, properties: { serverReference: "new-home:1883" } }
          : { reasonCode: 0x9c, properties: { serverReference: "other:1883" } },
      ),
    );
    const v5 = await attempt(broker, { protocolVersion: 5 });
    expect(v5.connected).toBe(false);
    expect(v5.connack?.reasonCode).toBe(0x9c);
    expect(v5.connack?.properties?.serverReference).toBe("other:1883");
    const moved = await attempt(broker, { protocolVersion: 5, username: "moved" });
    expect(moved.connack?.reasonCode).toBe(0x9d);
    expect(moved.connack?.properties?.serverReference).toBe("new-home:1883");

    const raw4 = await RawClient.connect(broker, 4);
    expect(asConnack(await raw4.connect())).toEqual({
      type: PacketType.CONNACK,
      sessionPresent: false,
      reasonCode: 3,
    });
    await raw4.closed;
  });

  it("an accepting reply object adds its CONNACK properties for 5.0 clients", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect(
        (): ConnectReply => ({
          reasonCode: 0,
          properties: { responseInformation: "resp/base", userProperties: [["tier", "gold"]] },
        }),
      ),
    );
    const v5 = await client(broker, { protocolVersion: 5 });
    expect(connackOf(v5)?.properties?.responseInformation).toBe("resp/base");
    expect(connackOf(v5)?.properties?.userProperties).toEqual({ tier: "gold" });
    const v4 = await client(broker, { protocolVersion: 4 });
    expect(connackOf(v4)?.returnCode).toBe(0);
  });

  it("3.1.1: the hook sees the CONNECT on its ServerConnection, and setData is kept across hooks", async () => {
    const seen: Record<string, unknown> = {};
    const tags: unknown[] = [];
    let closes = 0;
    const broker = await startBroker({}, (ctx) => {
      ctx.setOnConnect((_ctx, conn) => {
        Object.assign(seen, {
          id: conn.id,
          clientId: conn.clientId,
          username: conn.username,
          password: conn.password,
          passwordBytes: conn.passwordBytes && [...conn.passwordBytes],
          host: conn.host,
          port: conn.port,
          localPort: conn.localPort,
          protocolVersion: conn.protocolVersion,
          cleanSession: conn.cleanSession,
          keepAlive: conn.keepAlive,
          will: conn.will && {
            topic: conn.will.topic,
            payload: new TextDecoder().decode(conn.will.payload),
            qos: conn.will.qos,
            retain: conn.will.retain,
          },
          role: conn.role,
          connectProperties: conn.connectProperties,
          tls: conn.tls,
        });
        conn.setData("tag", { id: conn.id });
        return ConnackCode.ACCEPTED;
      });
      const tagged = (conn: ServerConnection): void => {
        tags.push(conn.getData<{ id: number }>("tag")?.id === conn.id && conn.id === seen.id);
      };
      ctx.setOnSubscribe((_ctx, conn, _f, qos) => {
        tagged(conn);
        return qos;
      });
      ctx.setOnPublish((_ctx, conn) => {
        tagged(conn);
        return PublishCode.OK;
      });
      ctx.setOnUnsubscribe((_ctx, conn) => {
        tagged(conn);
        return true;
      });
      ctx.setOnClose((_ctx, conn) => {
        tagged(conn);
        closes++;
      });
    });
    const c = await client(broker, {
      protocolVersion: 4,
      clientId: "fields-v4",
      username: "alice",
      password: "s3cret",
      keepalive: 42,
      clean: false,
      will: { topic: "wills/alice", payload: Buffer.from("bye"), qos: 1, retain: true },
    });
    const socket = c.stream as unknown as Socket;
    expect(seen).toEqual({
      id: expect.any(Number),
      clientId: "fields-v4",
      username: "alice",
      password: "s3cret",
      passwordBytes: [...Buffer.from("s3cret")],
      host: "127.0.0.1",
      port: socket.localPort,
      localPort: broker.port,
      protocolVersion: 4,
      cleanSession: false,
      keepAlive: 42,
      will: { topic: "wills/alice", payload: "bye", qos: 1, retain: true },
      role: "listener",
      connectProperties: {},
      tls: false,
    });
    await c.subscribeAsync("fields/t", { qos: 1 });
    await c.publishAsync("fields/t", "x", { qos: 1 });
    await c.unsubscribeAsync("fields/t");
    await c.endAsync();
    await until(() => closes === 1, 2000, "the close hook");
    expect(tags).toEqual([true, true, true, true]);
  });

  it("5.0: the hook sees the CONNECT properties, the will properties and a clean start", async () => {
    let seen: ServerConnection | null = null;
    let snapshot: Record<string, unknown> = {};
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect(async (_ctx, conn) => {
        seen = conn;
        snapshot = {
          protocolVersion: conn.protocolVersion,
          cleanSession: conn.cleanSession,
          keepAlive: conn.keepAlive,
          username: conn.username,
          password: conn.password,
          connectProperties: conn.connectProperties,
          willProperties: conn.will?.properties,
        };
        return ConnackCode.ACCEPTED;
      }),
    );
    const c = await client(broker, {
      protocolVersion: 5,
      clientId: "fields-v5",
      keepalive: 15,
      clean: true,
      properties: {
        sessionExpiryInterval: 30,
        receiveMaximum: 20,
        maximumPacketSize: 100_000,
        userProperties: { app: "tests" },
      },
      will: {
        topic: "wills/v5",
        payload: Buffer.from("bye"),
        qos: 0,
        retain: false,
        properties: { contentType: "text/plain", willDelayInterval: 5 },
      },
    });
    expect(c.connected).toBe(true);
    expect(seen).not.toBeNull();
    expect(snapshot).toEqual({
      protocolVersion: 5,
      cleanSession: true,
      keepAlive: 15,
      username: null,
      password: null,
      connectProperties: {
        sessionExpiryInterval: 30,
        receiveMaximum: 20,
        maximumPacketSize: 100_000,
        userProperties: [["app", "tests"]],
      },
      willProperties: { contentType: "text/plain", willDelayInterval: 5 },
    });
  });
});

describe("publish hook", () => {
  function decide(topic: string): PublishCode {
    if (topic.startsWith("discard/")) return PublishCode.DISCARD;
    if (topic.startsWith("close/")) return PublishCode.CONN_CLOSE;
    if (topic.startsWith("dunno/")) return PublishCode.DUNNO;
    return PublishCode.OK;
  }

  for (const form of FORMS) {
    for (const protocolVersion of VERSIONS) {
      it(`${vname(protocolVersion)}, ${form}: OK and DUNNO route and acknowledge; DISCARD neither acknowledges nor routes`, async () => {
        const broker = await startBroker({}, (ctx) =>
          ctx.setOnPublish((_ctx, _conn, msg) => answer(form, decide(msg.topic))),
        );
        const seen = await watch(broker, "#");
        const pub = await client(broker, { protocolVersion });
        await pub.publishAsync("ok/a", "1", { qos: 1 });
        await pub.publishAsync("dunno/b", "2", { qos: 2 });
        await until(() => seen.length === 2, 2000, "OK and DUNNO messages");

        const raw = await RawClient.connect(broker, protocolVersion);
        asConnack(await raw.connect({ protocolVersion }));
        raw.send(publishPacket("discard/q1", 1, 1));
        raw.send(publishPacket("discard/q2", 2, 2));
        raw.send(publishPacket("discard/q0", 0, 0));
        raw.send({ type: PacketType.PINGREQ });
        // The PINGRESP comes first: no PUBACK or PUBREC was sent for the discarded messages.
        expect((await raw.next())?.type).toBe(PacketType.PINGRESP);
        await sleep(400);
        expect(raw.packets).toEqual([]);
        expect(seen.map((m) => m.topic)).toEqual(["ok/a", "dunno/b"]);
        expect(raw.isOpen).toBe(true);
      });
    }

    it(`CONN_CLOSE (${form}) closes the publisher without an ack, does not route, and the will fires`, async () => {
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnPublish((_ctx, _conn, msg) => answer(form, decide(msg.topic))),
      );
      const seen = await watch(broker, "#");
      for (const protocolVersion of VERSIONS) {
        const raw = await RawClient.connect(broker, protocolVersion);
        asConnack(
          await raw.connect({
            protocolVersion,
            will: {
              topic: `will/v${protocolVersion}`,
              payload: enc("closed"),
              qos: 0,
              retain: false,
            },
          }),
        );
        raw.send(publishPacket("close/me", 1, 1));
        await raw.closed;
        expect(raw.packets).toEqual([]);
      }
      await expectCount(seen, 2, "the two wills");
      expect(seen.map((m) => m.topic).sort()).toEqual(["will/v4", "will/v5"]);
    });
  }

  it("an async hook delays routing but keeps the order of one client's messages", async () => {
    let calls = 0;
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnPublish(async (_ctx, _conn, msg) => {
        calls++;
        // The first message waits longest: if order were not kept it would arrive last.
        await sleep(msg.content === "0" ? 200 : Math.floor(Math.random() * 15));
        return PublishCode.OK;
      }),
    );
    for (const protocolVersion of VERSIONS) {
      calls = 0;
      const sub = await client(broker, { protocolVersion });
      const got = collect(sub);
      await sub.subscribeAsync(`order/v${protocolVersion}`, { qos: 1 });
      const pub = await client(broker, { protocolVersion });
      const start = Date.now();
      let firstAt = 0;
      sub.once("message", () => {
        firstAt = Date.now() - start;
      });
      const sent: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) {
        sent.push(
          pub.publishAsync(`order/v${protocolVersion}`, String(i), { qos: (i % 2) as 0 | 1 }),
        );
      }
      await Promise.all(sent);
      await until(() => got.length === 20, 4000, "twenty messages");
      expect(got.map((m) => m.payload)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
      expect(firstAt).toBeGreaterThanOrEqual(180);
      expect(calls).toBe(20);
    }
  });

  it("the hook sees the message: topic, payload, QoS, retain, and 5.0 properties", async () => {
    const msgs: Msg[] = [];
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnPublish((_ctx, _conn, msg) => {
        msgs.push(msg);
        return PublishCode.OK;
      }),
    );
    const v4 = await client(broker, { protocolVersion: 4 });
    await v4.publishAsync("look/v4", "hello", { qos: 1, retain: true });
    const v5 = await client(broker, { protocolVersion: 5 });
    await v5.publishAsync("look/v5", "world", {
      qos: 2,
      properties: { contentType: "text/plain", userProperties: { k: "v" } },
    });
    expect(msgs).toHaveLength(2);
    expect(msgs[0]).toMatchObject({
      topic: "look/v4",
      content: "hello",
      qos: 1,
      retain: true,
      size: 5,
    });
    expect(msgs[0]?.packetId).toBeGreaterThan(0);
    expect(msgs[1]).toMatchObject({ topic: "look/v5", content: "world", qos: 2, retain: false });
    expect(msgs[1]?.properties).toMatchObject({
      contentType: "text/plain",
      userProperties: [["k", "v"]],
    });
  });
});

describe("subscribe hook", () => {
  for (const form of FORMS) {
    for (const protocolVersion of VERSIONS) {
      it(`${vname(protocolVersion)}, ${form}: a lower granted QoS shows in SUBACK and downgrades delivery; QOS_DENIED gives 0x80 and nothing`, async () => {
        const asked: [string, number][] = [];
        const broker = await startBroker({}, (ctx) =>
          ctx.setOnSubscribe((_ctx, _conn, filter, qos) => {
            asked.push([filter, qos]);
            return answer(form, filter.startsWith("denied/") ? QOS_DENIED : Math.min(qos, 1));
          }),
        );
        const sub = await client(broker, { protocolVersion });
        const got = collect(sub);
        const granted = await sub.subscribeAsync("lower/t", { qos: 2 });
        expect(granted.map((g) => g.qos)).toEqual([1]);
        await expect(sub.subscribeAsync("denied/t", { qos: 1 })).rejects.toMatchObject({
          packet: { granted: [0x80] },
        });
        expect(asked).toEqual([
          ["lower/t", 2],
          ["denied/t", 1],
        ]);
        const pub = await client(broker, { protocolVersion });
        await pub.publishAsync("denied/t", "no", { qos: 1 });
        await pub.publishAsync("lower/t", "yes", { qos: 2 });
        await until(() => got.length === 1, 2000, "the downgraded message");
        await sleep(100);
        expect(got).toEqual([{ topic: "lower/t", payload: "yes", qos: 1, retain: false }]);
      });
    }
  }

  it("is asked for each filter of a SUBSCRIBE, in order, and the SUBACK answers each", async () => {
    const asked: string[] = [];
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnSubscribe(async (_ctx, _conn, filter, qos) => {
        asked.push(filter);
        await sleep(filter === "a/#" ? 50 : 0);
        if (filter.startsWith("denied/")) return QOS_DENIED;
        if (filter.startsWith("forbidden/")) return 0x87;
        return Math.min(qos, 1);
      }),
    );
    for (const protocolVersion of VERSIONS) {
      asked.length = 0;
      const raw = await RawClient.connect(broker, protocolVersion);
      asConnack(await raw.connect({ protocolVersion }));
      raw.send({
        type: PacketType.SUBSCRIBE,
        packetId: 9,
        subscriptions: [
          { topicFilter: "a/#", qos: 2 },
          { topicFilter: "denied/b", qos: 1 },
          { topicFilter: "c", qos: 0 },
          { topicFilter: "forbidden/d", qos: 1 },
        ],
      });
      const suback = (await raw.next()) as SubackPacket | null;
      expect(suback).toMatchObject({
        type: PacketType.SUBACK,
        packetId: 9,
        reasonCodes: [1, 0x80, 0, protocolVersion === 5 ? 0x87 : 0x80],
      });
      expect(asked).toEqual(["a/#", "denied/b", "c", "forbidden/d"]);
    }
  });
});

describe("a hook that is still pending when the client goes away", () => {
  for (const hook of ["publish", "subscribe"] as const) {
    it(`${hook}: the close is seen at once: the will fires and the close hook runs`, async () => {
      let closes = 0;
      const never = new Promise<never>(() => {});
      const broker = await startBroker({}, (ctx) => {
        ctx.setOnPublish((_c, _conn, msg) => (msg.topic === "hang" ? never : PublishCode.OK));
        ctx.setOnSubscribe((_c, _conn, filter, qos) => (filter === "hang" ? never : qos));
        ctx.setOnClose(() => closes++);
      });
      const wills = await watch(broker, "will/#");
      const raw = await RawClient.connect(broker, 4);
      asConnack(
        await raw.connect({
          clientId: `gone-${hook}`,
          will: { topic: `will/${hook}`, payload: enc("gone"), qos: 0, retain: false },
        }),
      );
      raw.send(
        hook === "publish"
          ? publishPacket("hang", 1, 1)
          : {
              type: PacketType.SUBSCRIBE,
              packetId: 1,
              subscriptions: [{ topicFilter: "hang", qos: 1 }],
            },
      );
      // A packet behind the pending one: the connection stops reading for it.
      raw.send({ type: PacketType.PINGREQ });
      await sleep(100);
      expect(raw.packets).toEqual([]);
      raw.destroy();
      // The FIN is still read: the connection ends now, not when the hook settles (never).
      await until(() => wills.length === 1 && closes === 1, 3000, "the will and the close hook");
      expect(wills[0]?.topic).toBe(`will/${hook}`);
    });
  }
});

describe("subscribe hook answers that are no QoS", () => {
  it("a QoS above the one asked is lowered to it; 3..127 or a forgotten return fail the filter with 0x80, logged", async () => {
    const answers: Record<string, unknown> = { "up/t": 2, "bad/t": 42, "none/t": undefined };
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnSubscribe((_ctx, _conn, filter) => answers[filter] as number),
    );
    const raw = await RawClient.connect(broker, 5);
    asConnack(await raw.connect({ protocolVersion: 5 }));
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 3,
      subscriptions: Object.keys(answers).map((topicFilter) => ({ topicFilter, qos: 0 })),
    });
    // 3.9.3: the server may grant less than asked, not more.
    expect(await raw.next()).toMatchObject({
      type: PacketType.SUBACK,
      reasonCodes: [0, 0x80, 0x80],
    });
    expect(broker.logs.filter((l) => /^critical .*subscribe hook failed/.test(l))).toHaveLength(2);
  });
});

describe("unsubscribe hook", () => {
  for (const form of FORMS) {
    for (const protocolVersion of VERSIONS) {
      it(`${vname(protocolVersion)}, ${form}: false keeps the subscription (UNSUBACK still sent); true removes it`, async () => {
        const broker = await startBroker({}, (ctx) =>
          ctx.setOnUnsubscribe((_ctx, _conn, filter) => answer(form, !filter.startsWith("keep/"))),
        );
        const sub = await client(broker, { protocolVersion });
        const got = collect(sub);
        await sub.subscribeAsync(["keep/t", "drop/t"], { qos: 1 });
        await sub.unsubscribeAsync("keep/t");
        await sub.unsubscribeAsync("drop/t");
        const pub = await client(broker, { protocolVersion });
        await pub.publishAsync("drop/t", "gone", { qos: 1 });
        await pub.publishAsync("keep/t", "kept", { qos: 1 });
        await until(() => got.length >= 1, 2000, "the kept subscription's message");
        await sleep(100);
        expect(got.map((m) => m.payload)).toEqual(["kept"]);
      });
    }
  }

  it("5.0: UNSUBACK says 0x87 for a refused filter, 0x00 for a removed one, 0x11 for none", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnUnsubscribe((_ctx, _conn, filter) => (filter === "keep/t" ? false : undefined)),
    );
    const raw = await RawClient.connect(broker, 5);
    asConnack(await raw.connect({ protocolVersion: 5 }));
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [
        { topicFilter: "keep/t", qos: 0 },
        { topicFilter: "drop/t", qos: 0 },
      ],
    });
    expect((await raw.next())?.type).toBe(PacketType.SUBACK);
    raw.send({
      type: PacketType.UNSUBSCRIBE,
      packetId: 2,
      topicFilters: ["keep/t", "drop/t", "never/t"],
    });
    const unsuback = (await raw.next()) as UnsubackPacket | null;
    expect(unsuback).toMatchObject({
      type: PacketType.UNSUBACK,
      packetId: 2,
      reasonCodes: [0x87, 0x00, 0x11],
    });
  });
});

describe("close hook", () => {
  it("is called once for each accepted connection that closes, whatever the way", async () => {
    const closed: string[] = [];
    const okInHook: boolean[] = [];
    const broker = await startBroker({}, (ctx) => {
      ctx.setOnClose((_ctx, conn) => {
        closed.push(conn.clientId);
        okInHook.push(conn.isOk());
      });
      ctx.setOnPublish((_ctx, conn, msg) => {
        if (msg.topic === "kick") conn.close(0x98);
        return PublishCode.OK;
      });
    });
    // A DISCONNECT.
    const polite = await client(broker, { clientId: "polite" });
    await polite.endAsync();
    // A lost socket.
    const lost = await RawClient.connect(broker, 4);
    asConnack(await lost.connect({ clientId: "lost" }));
    lost.destroy();
    // A takeover.
    const first = quiet(await client(broker, { clientId: "taken", protocolVersion: 5 }));
    const firstGone = closedEvent(first);
    await client(broker, { clientId: "taken", protocolVersion: 5 });
    await firstGone;
    // Closed by the server.
    const kicked = await RawClient.connect(broker, 5);
    asConnack(await kicked.connect({ protocolVersion: 5, clientId: "kicked" }));
    kicked.send(publishPacket("kick", 0, 0));
    expect(((await kicked.next()) as DisconnectPacket | null)?.reasonCode).toBe(0x98);
    await kicked.closed;
    await expectCount(closed, 4, "four close calls", 200);
    expect(closed.sort()).toEqual(["kicked", "lost", "polite", "taken"]);
    expect(okInHook).toEqual([false, false, false, false]);
  });

  it("an async close hook is called", async () => {
    const closed: string[] = [];
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnClose(async (_ctx, conn) => {
        await sleep(10);
        closed.push(conn.clientId);
      }),
    );
    const c = await client(broker, { clientId: "async-close" });
    await c.endAsync();
    await until(() => closed.length === 1, 2000, "the async close hook");
    expect(closed).toEqual(["async-close"]);
  });
});

describe("hooks that throw or reject", () => {
  for (const form of ["throws", "rejects"] as const) {
    const fail = (): never | Promise<never> => {
      if (form === "throws") throw new Error("hook exploded");
      return Promise.reject(new Error("hook exploded"));
    };

    it(`a connect hook that ${form} is logged as critical and answered 0x80 (5.0) / 5 (3.1.1); others are served`, async () => {
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnConnect((_ctx, conn) =>
          conn.username === "boom" ? fail() : ConnackCode.ACCEPTED,
        ),
      );
      const v5 = await attempt(broker, { protocolVersion: 5, username: "boom" });
      expect(v5.connected).toBe(false);
      expect(v5.connack?.reasonCode).toBe(0x80);
      const v4 = await attempt(broker, { protocolVersion: 4, username: "boom" });
      expect(v4.connected).toBe(false);
      expect(v4.connack?.returnCode).toBe(5);
      expect(broker.logs.some((l) => l.startsWith("critical") && l.includes("hook exploded"))).toBe(
        true,
      );
      const ok = await attempt(broker, { protocolVersion: 5, username: "fine" });
      expect(ok.connected).toBe(true);
    });

    it(`a publish hook that ${form} is logged as critical; the message is discarded unacknowledged; others are served`, async () => {
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnPublish((_ctx, _conn, msg) => (msg.topic === "boom" ? fail() : PublishCode.OK)),
      );
      const seen = await watch(broker, "#");
      for (const protocolVersion of VERSIONS) {
        const raw = await RawClient.connect(broker, protocolVersion);
        asConnack(await raw.connect({ protocolVersion }));
        raw.send(publishPacket("boom", 1, 5));
        raw.send({ type: PacketType.PINGREQ });
        expect((await raw.next())?.type).toBe(PacketType.PINGRESP);
        // The publisher's connection still works.
        raw.send(publishPacket("fine/after", 1, 6));
        expect(await raw.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 6 });
      }
      const other = await client(broker, { protocolVersion: 5 });
      await other.publishAsync("fine/other", "x", { qos: 1 });
      await until(() => seen.length === 3, 2000, "the good messages");
      expect(seen.map((m) => m.topic)).toEqual(["fine/after", "fine/after", "fine/other"]);
      expect(broker.logs.some((l) => l.startsWith("critical") && l.includes("hook exploded"))).toBe(
        true,
      );
    });

    it(`a subscribe hook that ${form} is logged as critical and gives SUBACK 0x80`, async () => {
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnSubscribe((_ctx, _conn, filter, qos) => (filter === "boom" ? fail() : qos)),
      );
      for (const protocolVersion of VERSIONS) {
        const raw = await RawClient.connect(broker, protocolVersion);
        asConnack(await raw.connect({ protocolVersion }));
        raw.send({
          type: PacketType.SUBSCRIBE,
          packetId: 2,
          subscriptions: [
            { topicFilter: "boom", qos: 1 },
            { topicFilter: "fine", qos: 1 },
          ],
        });
        expect(await raw.next()).toMatchObject({ type: PacketType.SUBACK, reasonCodes: [0x80, 1] });
      }
      expect(broker.logs.some((l) => l.startsWith("critical") && l.includes("hook exploded"))).toBe(
        true,
      );
    });

    it(`an unsubscribe hook that ${form} is logged as critical, UNSUBACK is still sent (0x80 on 5.0)`, async () => {
      const broker = await startBroker({}, (ctx) => ctx.setOnUnsubscribe(() => fail()));
      for (const protocolVersion of VERSIONS) {
        const raw = await RawClient.connect(broker, protocolVersion);
        asConnack(await raw.connect({ protocolVersion }));
        raw.send({ type: PacketType.UNSUBSCRIBE, packetId: 4, topicFilters: ["x"] });
        const unsuback = (await raw.next()) as UnsubackPacket | null;
        expect(unsuback?.type).toBe(PacketType.UNSUBACK);
        if (protocolVersion === 5) expect(unsuback?.reasonCodes).toEqual([0x80]);
        expect(raw.isOpen).toBe(true);
      }
      expect(broker.logs.some((l) => l.startsWith("critical") && l.includes("hook exploded"))).toBe(
        true,
      );
    });

    it(`a close hook that ${form} is logged and the broker keeps serving`, async () => {
      let calls = 0;
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnClose(() => {
          calls++;
          return fail() as unknown as undefined;
        }),
      );
      const a = await client(broker, { protocolVersion: 4 });
      await a.endAsync();
      await until(() => calls === 1, 2000, "the close hook");
      await until(
        () =>
          broker.logs.some((l) => l.includes("close hook failed") && l.includes("hook exploded")),
        1000,
        "the close hook's failure in the log",
      );
      const b = await client(broker, { protocolVersion: 5 });
      const got = collect(b);
      await b.subscribeAsync("still/serving", { qos: 1 });
      await b.publishAsync("still/serving", "yes", { qos: 1 });
      await until(() => got.length === 1, 2000, "a message after the failed close hook");
    });
  }

  it("5.0: a hook that closes the connection it is asked about gets the client a DISCONNECT, not a crash", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnSubscribe((_ctx, conn) => {
        conn.close(0x87);
        return 1;
      }),
    );
    const raw = await RawClient.connect(broker, 5);
    asConnack(await raw.connect({ protocolVersion: 5 }));
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: "x", qos: 1 }],
    });
    expect(await raw.next()).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x87 });
    await raw.closed;
    // Nothing after the DISCONNECT [MQTT-4.13.2-1 / v5 3.14]: no SUBACK for a closed connection.
    expect(raw.packets).toEqual([]);
    const other = await client(broker, { protocolVersion: 4 });
    expect(other.connected).toBe(true);
  });
});
