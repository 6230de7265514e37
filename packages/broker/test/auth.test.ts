// Authentication: user name and password through the connect hook (plain and async look-ups,
// binary passwords, the 5.0 password without user name), and MQTT 5.0 enhanced authentication
// (v5 4.12) through ctx.setOnAuth: multi-step exchanges, failures, re-authentication.
import { type AuthPacket, type DisconnectPacket, PacketType } from "@myqtt/codec";
import { type AuthRequest, ConnackCode, type OnAuthHandler, PublishCode } from "@myqtt/core";
import type { MqttClient } from "mqtt";
import { describe, expect, it } from "vitest";
import { client, RawClient, sleep, startBroker, type TestBroker, until } from "./helpers.js";
import { asConnack, attempt, collect, uid } from "./lifecycle-support.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);

const USERS = new Map([
  ["aspl", "test"],
  ["bob", "hunter2"],
]);

describe("user name and password in the connect hook", () => {
  it("an async look-up (a database, say) decides the CONNACK for 3.1.1 and 5.0", async () => {
    const lookups: string[] = [];
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect(async (_ctx, conn) => {
        lookups.push(conn.username ?? "(none)");
        await sleep(30);
        return conn.username !== null && USERS.get(conn.username) === conn.password
          ? ConnackCode.ACCEPTED
          : ConnackCode.BAD_USERNAME_OR_PASSWORD;
      }),
    );
    for (const protocolVersion of [4, 5] as const) {
      const good = await attempt(broker, { protocolVersion, username: "bob", password: "hunter2" });
      expect(good.connected).toBe(true);
      const bad = await attempt(broker, { protocolVersion, username: "bob", password: "nope" });
      expect(bad.connected).toBe(false);
      expect(bad.error?.code).toBe(protocolVersion === 4 ? 4 : 0x86);
      const unknown = await attempt(broker, {
        protocolVersion,
        username: "mallory",
        password: "x",
      });
      expect(unknown.error?.code).toBe(protocolVersion === 4 ? 4 : 0x86);
    }
    expect(lookups).toEqual(["bob", "bob", "mallory", "bob", "bob", "mallory"]);
  });

  it("a refused client cannot publish or subscribe: nothing it pipelined is routed", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect(async (_ctx, conn) => {
        await sleep(20);
        return conn.password === "right" ? ConnackCode.ACCEPTED : ConnackCode.NOT_AUTHORIZED;
      }),
    );
    const watcher = await client(broker, { username: "w", password: "right" });
    const seen = collect(watcher);
    await watcher.subscribeAsync("#", { qos: 0 });
    const raw = await RawClient.connect(broker, 4);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 0,
      clientId: "intruder",
      username: "intruder",
      password: enc("wrong"),
    });
    raw.send({
      type: PacketType.PUBLISH,
      topic: "owned",
      payload: enc("x"),
      qos: 0,
      retain: false,
      dup: false,
    });
    expect(asConnack(await raw.next()).reasonCode).toBe(5);
    await raw.closed;
    await sleep(100);
    expect(seen).toEqual([]);
  });

  it("binary passwords reach the hook as passwordBytes", async () => {
    let bytes: number[] | null = null;
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) => {
        bytes = conn.passwordBytes && [...conn.passwordBytes];
        return ConnackCode.ACCEPTED;
      }),
    );
    const raw = await RawClient.connect(broker, 4);
    const connack = asConnack(
      await raw.connect({ username: "u", password: Uint8Array.from([0, 0xff, 0xc3, 0x28]) }),
    );
    expect(connack.reasonCode).toBe(0);
    expect(bytes).toEqual([0, 0xff, 0xc3, 0x28]);
  });

  it("5.0: a password without a user name is allowed and reaches the hook", async () => {
    let seen: [string | null, string | null] | null = null;
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) => {
        seen = [conn.username, conn.password];
        return conn.password === "token-123" ? 0 : 0x87;
      }),
    );
    const raw = await RawClient.connect(broker, 5);
    const connack = asConnack(
      await raw.connect({ protocolVersion: 5, password: enc("token-123") }),
    );
    expect(connack.reasonCode).toBe(0);
    expect(seen).toEqual([null, "token-123"]);
  });
});

/** A two-step exchange: "client-first" → 0x18 "server-first"; "client-final" → 0 "server-final". */
function twoStep(requests: AuthRequest[]): OnAuthHandler {
  return (_ctx, _conn, request) => {
    requests.push(request);
    if (request.method !== "SCRAM-TEST") return { reasonCode: 0x8c };
    const data = dec(request.data);
    if (request.step === 0 && (data === "client-first" || data === "re-first"))
      return { reasonCode: 0x18, data: enc("server-first") };
    if (request.step === 1 && data === "client-final")
      return { reasonCode: 0, data: enc("server-final") };
    if (request.reauthenticate && data === "quick") return { reasonCode: 0, data: enc("ok") };
    return { reasonCode: 0x87 };
  };
}

async function authenticated(broker: TestBroker, clientId = uid("auth")): Promise<RawClient> {
  const raw = await RawClient.connect(broker, 5);
  raw.send({
    type: PacketType.CONNECT,
    protocolVersion: 5,
    clean: true,
    keepAlive: 60,
    clientId,
    properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-first") },
  });
  expect(await raw.next()).toMatchObject({ type: PacketType.AUTH, reasonCode: 0x18 });
  raw.send({
    type: PacketType.AUTH,
    reasonCode: 0x18,
    properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-final") },
  });
  const connack = asConnack(await raw.next());
  expect(connack.reasonCode).toBe(0);
  return raw;
}

describe("5.0 enhanced authentication", () => {
  it("a CONNECT with an Authentication Method and no auth hook gets CONNACK 0x8C", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 5);
    const connack = asConnack(
      await raw.connect({ protocolVersion: 5, properties: { authenticationMethod: "SCRAM-TEST" } }),
    );
    expect(connack.reasonCode).toBe(0x8c);
    await raw.closed;
    const js = await attempt(broker, {
      protocolVersion: 5,
      properties: { authenticationMethod: "SCRAM-TEST" },
    });
    expect(js.connected).toBe(false);
    expect(js.error?.code).toBe(0x8c);
  });

  it("a multi-step exchange with MQTT.js ends in a CONNACK carrying the method and the last data", async () => {
    const requests: AuthRequest[] = [];
    let connectHookSaw: string | null = null;
    const broker = await startBroker({}, (ctx) => {
      ctx.setOnAuth(twoStep(requests));
      ctx.setOnConnect((_ctx, conn) => {
        connectHookSaw = conn.clientId;
        return ConnackCode.ACCEPTED;
      });
    });
    const serverAuth: (string | undefined)[] = [];
    const result = await attempt(
      broker,
      {
        protocolVersion: 5,
        clientId: "scram-js",
        properties: {
          authenticationMethod: "SCRAM-TEST",
          authenticationData: Buffer.from("client-first"),
        },
      },
      (c: MqttClient) => {
        c.handleAuth = (packet, callback) => {
          serverAuth.push(dec(packet.properties?.authenticationData));
          callback(undefined, {
            cmd: "auth",
            reasonCode: 0x18,
            properties: {
              authenticationMethod: "SCRAM-TEST",
              authenticationData: Buffer.from("client-final"),
            },
          });
        };
      },
    );
    expect(result.error).toBeNull();
    expect(result.connected).toBe(true);
    expect(serverAuth).toEqual(["server-first"]);
    expect(result.connack?.properties?.authenticationMethod).toBe("SCRAM-TEST");
    expect(dec(result.connack?.properties?.authenticationData)).toBe("server-final");
    expect(requests.map((r) => [r.method, dec(r.data), r.step, r.reauthenticate])).toEqual([
      ["SCRAM-TEST", "client-first", 0, false],
      ["SCRAM-TEST", "client-final", 1, false],
    ]);
    // The connect hook runs once authentication succeeded.
    expect(connectHookSaw).toBe("scram-js");
    const got = collect(result.client);
    await result.client.subscribeAsync("authed/t", { qos: 1 });
    await result.client.publishAsync("authed/t", "in", { qos: 1 });
    await until(() => got.length === 1, 2000, "a message on the authenticated connection");
  });

  it("the server's AUTH 0x18 carries the method and the hook's data (raw)", async () => {
    const broker = await startBroker({}, (ctx) => ctx.setOnAuth(twoStep([])));
    const raw = await RawClient.connect(broker, 5);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 5,
      clean: true,
      keepAlive: 60,
      clientId: "raw-scram",
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-first") },
    });
    const auth = (await raw.next()) as AuthPacket | null;
    expect(auth?.type).toBe(PacketType.AUTH);
    expect(auth?.reasonCode).toBe(0x18);
    expect(auth?.properties?.authenticationMethod).toBe("SCRAM-TEST");
    expect(dec(auth?.properties?.authenticationData)).toBe("server-first");
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x18,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-final") },
    });
    const connack = asConnack(await raw.next());
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties?.authenticationMethod).toBe("SCRAM-TEST");
    expect(dec(connack.properties?.authenticationData)).toBe("server-final");
  });

  it("an async auth hook works the same", async () => {
    const inner = twoStep([]);
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnAuth(async (c, conn, request, data) => {
        await sleep(20);
        return inner(c, conn, request, data);
      }),
    );
    const raw = await authenticated(broker);
    raw.send({ type: PacketType.PINGREQ });
    expect((await raw.next())?.type).toBe(PacketType.PINGRESP);
  });

  it("a failing first step is answered with a CONNACK carrying that code, then closed", async () => {
    const broker = await startBroker({}, (ctx) => ctx.setOnAuth(() => ({ reasonCode: 0x8a })));
    const raw = await RawClient.connect(broker, 5);
    const connack = asConnack(
      await raw.connect({
        protocolVersion: 5,
        properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("x") },
      }),
    );
    expect(connack.reasonCode).toBe(0x8a);
    await raw.closed;
  });

  it("a failing later step is answered with a CONNACK carrying that code; MQTT.js sees the refusal", async () => {
    const broker = await startBroker({}, (ctx) => ctx.setOnAuth(twoStep([])));
    const raw = await RawClient.connect(broker, 5);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 5,
      clean: true,
      keepAlive: 60,
      clientId: "bad-proof",
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-first") },
    });
    expect((await raw.next())?.type).toBe(PacketType.AUTH);
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x18,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("forged") },
    });
    expect(asConnack(await raw.next()).reasonCode).toBe(0x87);
    await raw.closed;

    const js = await attempt(
      broker,
      {
        protocolVersion: 5,
        properties: {
          authenticationMethod: "SCRAM-TEST",
          authenticationData: Buffer.from("client-first"),
        },
      },
      (c) => {
        c.handleAuth = (_packet, callback) =>
          callback(undefined, {
            cmd: "auth",
            reasonCode: 0x18,
            properties: {
              authenticationMethod: "SCRAM-TEST",
              authenticationData: Buffer.from("forged"),
            },
          });
      },
    );
    expect(js.connected).toBe(false);
    expect(js.error?.code).toBe(0x87);
  });

  it("the connect hook may still refuse after a successful exchange", async () => {
    const broker = await startBroker({}, (ctx) => {
      ctx.setOnAuth(twoStep([]));
      ctx.setOnConnect(() => 0x8a);
    });
    const raw = await RawClient.connect(broker, 5);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 5,
      clean: true,
      keepAlive: 60,
      clientId: "banned",
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-first") },
    });
    expect((await raw.next())?.type).toBe(PacketType.AUTH);
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x18,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-final") },
    });
    expect(asConnack(await raw.next()).reasonCode).toBe(0x8a);
    await raw.closed;
  });

  it("an auth hook that throws is logged as critical and answered with CONNACK 0x80", async () => {
    const broker = await startBroker({}, (ctx) =>
      ctx.setOnAuth(() => {
        throw new Error("auth backend down");
      }),
    );
    const raw = await RawClient.connect(broker, 5);
    const connack = asConnack(
      await raw.connect({ protocolVersion: 5, properties: { authenticationMethod: "SCRAM-TEST" } }),
    );
    expect(connack.reasonCode).toBe(0x80);
    await raw.closed;
    expect(
      broker.logs.some((l) => l.startsWith("critical") && l.includes("auth backend down")),
    ).toBe(true);
    const ok = await client(broker, { protocolVersion: 5 });
    expect(ok.connected).toBe(true);
  });

  for (const [what, value] of [
    ["undefined", undefined],
    ["an empty object", {}],
  ] as const) {
    it(`an auth hook that returns ${what} (a forgotten return) fails: CONNACK 0x80, logged`, async () => {
      const broker = await startBroker({}, (ctx) => ctx.setOnAuth(() => value as never));
      const raw = await RawClient.connect(broker, 5);
      const connack = asConnack(
        await raw.connect({
          protocolVersion: 5,
          properties: { authenticationMethod: "SCRAM-TEST" },
        }),
      );
      expect(connack.reasonCode).toBe(0x80);
      await raw.closed;
      expect(broker.logs.some((l) => /^critical .*auth hook failed/.test(l))).toBe(true);
    });
  }

  it("a packet other than AUTH during the exchange closes the connection without accepting it", async () => {
    const seen: string[] = [];
    const broker = await startBroker({}, (ctx) => {
      ctx.setOnAuth(twoStep([]));
      ctx.setOnPublish((_c, _conn, msg) => {
        seen.push(msg.topic);
        return PublishCode.OK;
      });
    });
    const raw = await RawClient.connect(broker, 5);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 5,
      clean: true,
      keepAlive: 60,
      clientId: "impatient",
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-first") },
    });
    expect((await raw.next())?.type).toBe(PacketType.AUTH);
    // [MQTT-3.1.2-30]: only AUTH or DISCONNECT until the CONNACK.
    raw.send({
      type: PacketType.PUBLISH,
      topic: "too/early",
      payload: enc("x"),
      qos: 0,
      retain: false,
      dup: false,
    });
    await raw.closed;
    expect(raw.packets.filter((p) => p.type === PacketType.CONNACK && p.reasonCode === 0)).toEqual(
      [],
    );
    expect(seen).toEqual([]);
  });

  it("AUTH packets before the CONNACK are held to maximumConnectPacketSize; larger packets follow it", async () => {
    const broker = await startBroker({ maximumConnectPacketSize: 512 }, (ctx) =>
      ctx.setOnAuth(twoStep([])),
    );
    const raw = await RawClient.connect(broker, 5);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 5,
      clean: true,
      keepAlive: 60,
      clientId: "big-auth",
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-first") },
    });
    expect((await raw.next())?.type).toBe(PacketType.AUTH);
    // Not trusted yet: an AUTH no larger than a CONNECT could be.
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x18,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: new Uint8Array(600) },
    });
    await raw.closed;
    expect(raw.packets.some((p) => p.type === PacketType.CONNACK && p.reasonCode === 0)).toBe(
      false,
    );
    expect(broker.logs.some((l) => l.includes("exceeds the maximum packet size 512"))).toBe(true);

    // Once the exchange succeeded, packets up to maximumPacketSize are read.
    const trusted = await authenticated(broker);
    trusted.send({
      type: PacketType.PUBLISH,
      topic: "big/after/auth",
      payload: new Uint8Array(5000),
      qos: 1,
      packetId: 7,
      retain: false,
      dup: false,
    });
    expect(await trusted.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 7 });
  });

  it("an exchange that stalls is closed after connectTimeoutMs", async () => {
    const broker = await startBroker({ connectTimeoutMs: 300 }, (ctx) =>
      ctx.setOnAuth(twoStep([])),
    );
    const raw = await RawClient.connect(broker, 5);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 5,
      clean: true,
      keepAlive: 0,
      clientId: "stalled",
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-first") },
    });
    expect((await raw.next())?.type).toBe(PacketType.AUTH);
    const start = Date.now();
    await raw.closed;
    expect(Date.now() - start).toBeLessThan(1500);
    expect(raw.packets).toEqual([]);
  });

  it("an AUTH 0x00 or 0x18 from the client outside an exchange gets DISCONNECT 0x82", async () => {
    const broker = await startBroker({}, (ctx) => ctx.setOnAuth(twoStep([])));
    for (const reasonCode of [0x00, 0x18]) {
      const raw = await authenticated(broker);
      raw.send({
        type: PacketType.AUTH,
        reasonCode,
        properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("quick") },
      });
      expect(await raw.next()).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x82 });
      await raw.closed;
    }
  });

  it("re-authentication: AUTH 0x19 on a live connection is answered AUTH 0x00 (one step and two steps)", async () => {
    const requests: AuthRequest[] = [];
    const broker = await startBroker({}, (ctx) => ctx.setOnAuth(twoStep(requests)));
    const raw = await authenticated(broker);
    requests.length = 0;

    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x19,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("quick") },
    });
    const done = (await raw.next()) as AuthPacket | null;
    expect(done?.type).toBe(PacketType.AUTH);
    expect(done?.reasonCode).toBe(0);
    expect(done?.properties?.authenticationMethod).toBe("SCRAM-TEST");
    expect(dec(done?.properties?.authenticationData)).toBe("ok");

    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x19,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("re-first") },
    });
    expect(await raw.next()).toMatchObject({ type: PacketType.AUTH, reasonCode: 0x18 });
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x18,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("client-final") },
    });
    expect(await raw.next()).toMatchObject({ type: PacketType.AUTH, reasonCode: 0 });
    expect(requests.map((r) => [dec(r.data), r.step, r.reauthenticate])).toEqual([
      ["quick", 0, true],
      ["re-first", 0, true],
      ["client-final", 1, true],
    ]);
    // The connection goes on.
    raw.send({ type: PacketType.PINGREQ });
    expect((await raw.next())?.type).toBe(PacketType.PINGRESP);
    expect(raw.isOpen).toBe(true);
  });

  it("a failing re-authentication gets DISCONNECT with its code", async () => {
    const broker = await startBroker({}, (ctx) => ctx.setOnAuth(twoStep([])));
    const raw = await authenticated(broker);
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x19,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("stale") },
    });
    const packet = (await raw.next()) as DisconnectPacket | null;
    expect(packet).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x87 });
    await raw.closed;
  });

  it("an AUTH with another method gets DISCONNECT 0x82", async () => {
    const broker = await startBroker({}, (ctx) => ctx.setOnAuth(twoStep([])));
    const raw = await authenticated(broker);
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x19,
      properties: { authenticationMethod: "OTHER", authenticationData: enc("quick") },
    });
    expect(await raw.next()).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x82 });
    await raw.closed;
  });

  it("an AUTH on a connection that did not use enhanced authentication gets DISCONNECT 0x82", async () => {
    const broker = await startBroker({}, (ctx) => ctx.setOnAuth(twoStep([])));
    const raw = await RawClient.connect(broker, 5);
    expect(asConnack(await raw.connect({ protocolVersion: 5 })).reasonCode).toBe(0);
    raw.send({
      type: PacketType.AUTH,
      reasonCode: 0x19,
      properties: { authenticationMethod: "SCRAM-TEST", authenticationData: enc("quick") },
    });
    expect(await raw.next()).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x82 });
    await raw.closed;
  });
});
