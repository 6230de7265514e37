// The server examples of the PyMyQtt manual ("Creating a MQTT server", "Enabling server side
// authentication"), written the way the architecture shows them in TypeScript.
import { connect } from "node:net";
import { PacketType, type PubackPacket } from "@myqtt/codec";
import { ConnackCode, Ctx, type Msg, PublishCode } from "@myqtt/core";
import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { createListener, getBroker, unlockListeners, waitListeners } from "../src/index.js";
import { client, onCleanup, RawClient, sleep, startBroker, until } from "./helpers.js";
import { asConnack, attempt, collect } from "./lifecycle-support.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A context made as the manual makes it, exited after the test. */
async function manualCtx(): Promise<Ctx> {
  const ctx = new Ctx();
  // if not ctx.init (): error ("Unable to init ctx, failed to start listener")
  expect(await ctx.init()).toBe(true);
  onCleanup(() => ctx.exit());
  return ctx;
}

/** Whether `p` settled within `ms`. */
async function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await sleep(ms);
  return done;
}

describe("creating an MQTT server (manual, server steps 1-3)", () => {
  it("init, storage_set_path, create_listener on port 0: the listener is ok and serves clients", async () => {
    const ctx = await manualCtx();
    ctx.storageSetPath(".myqtt-listener", 4096);
    expect(ctx.storagePath).toBe(".myqtt-listener");
    expect(ctx.storageHashSize).toBe(4096);
    const listener = await createListener(ctx, "127.0.0.1", "0");
    expect(listener.isOk()).toBe(true);
    expect(listener.errorMsg).toBeNull();
    expect(listener.host).toBe("127.0.0.1");
    expect(listener.port).toBeGreaterThan(0);
    expect(listener.port).toBeLessThan(65_536);

    // "a working MQTT server that will allow subscription and publishing to any topic"
    for (const protocolVersion of [4, 5] as const) {
      const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${listener.port}`, {
        protocolVersion,
        reconnectPeriod: 0,
      });
      onCleanup(() => sub.endAsync(true));
      const got = collect(sub);
      await sub.subscribeAsync("topic", { qos: 0 });
      await sub.publishAsync("topic", "this is a test message", { qos: 0 });
      await until(() => got.length === 1, 2000, "the manual's test message");
      expect(got[0]).toMatchObject({ topic: "topic", payload: "this is a test message", qos: 0 });
    }
    await until(() => listener.connections === 2, 1000, "two open connections");
  });

  it('a second listener on a port in use is not ok and says why ("another instance running?")', async () => {
    const ctx = await manualCtx();
    const first = await createListener(ctx, "127.0.0.1", "0");
    expect(first.isOk()).toBe(true);
    const other = await manualCtx();
    const second = await createListener(other, "127.0.0.1", String(first.port));
    expect(second.isOk()).toBe(false);
    expect(second.errorMsg).toMatch(/cannot listen/);
  });

  it("create_listener never throws: a bad port is reported through isOk() and errorMsg", async () => {
    const ctx = await manualCtx();
    const bad = await createListener(ctx, "127.0.0.1", "not-a-port");
    expect(bad.isOk()).toBe(false);
    expect(bad.errorMsg).toMatch(/invalid port/);
    const tooHigh = await createListener(ctx, "127.0.0.1", "70000");
    expect(tooHigh.isOk()).toBe(false);
  });

  it("storage_set_path refuses an empty path or a bad hash size", async () => {
    const ctx = await manualCtx();
    expect(() => ctx.storageSetPath("", 4096)).toThrow(TypeError);
    expect(() => ctx.storageSetPath(".myqtt-listener", 0)).toThrow(RangeError);
    expect(ctx.storagePath).not.toBe("");
  });

  it("several listeners in one context share one broker", async () => {
    const ctx = await manualCtx();
    const a = await createListener(ctx, "127.0.0.1", "0");
    const b = await createListener(ctx, "127.0.0.1", "0");
    expect(a.isOk() && b.isOk()).toBe(true);
    expect(a.port).not.toBe(b.port);
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.port}`, { reconnectPeriod: 0 });
    onCleanup(() => sub.endAsync(true));
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.port}`, { reconnectPeriod: 0 });
    onCleanup(() => pub.endAsync(true));
    const got = collect(sub);
    await sub.subscribeAsync("across", { qos: 1 });
    await pub.publishAsync("across", "from b to a", { qos: 1 });
    await until(() => got.length === 1, 2000, "a message across listeners");
  });

  it("wait_listeners blocks until unlock_listeners releases it (every waiter)", async () => {
    const ctx = await manualCtx();
    const listener = await createListener(ctx, "127.0.0.1", "0");
    expect(listener.isOk()).toBe(true);
    const first = waitListeners(ctx);
    const second = waitListeners(ctx);
    expect(await settles(first, 50)).toBe(false);
    // The listener keeps serving while the main flow waits.
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${listener.port}`, { reconnectPeriod: 0 });
    onCleanup(() => c.endAsync(true));
    expect(c.connected).toBe(true);
    unlockListeners(ctx);
    await first;
    await second;
    // The context is not exited by it: the broker still serves.
    expect(ctx.isReady).toBe(true);
    const d = await mqtt.connectAsync(`mqtt://127.0.0.1:${listener.port}`, { reconnectPeriod: 0 });
    onCleanup(() => d.endAsync(true));
    expect(d.connected).toBe(true);
  });

  it("wait_listeners(unlock_on_signal=True) is released by SIGINT, and stops listening for it after", async () => {
    const ctx = await manualCtx();
    const before = process.listeners("SIGINT");
    const waiting = waitListeners(ctx, { unlockOnSignal: true });
    const added = process.listeners("SIGINT").filter((l) => !before.includes(l));
    expect(added).toHaveLength(1);
    expect(await settles(waiting, 30)).toBe(false);
    // Deliver the signal to the waiter alone (emitting SIGINT would reach the test runner too).
    (added[0] as () => void)();
    await waiting;
    expect(process.listeners("SIGINT").filter((l) => !before.includes(l))).toEqual([]);
    expect(process.listeners("SIGTERM").filter((l) => added.includes(l))).toEqual([]);
  });

  it("wait_listeners without unlock_on_signal does not take SIGINT over", async () => {
    const ctx = await manualCtx();
    const before = process.listenerCount("SIGINT");
    const waiting = waitListeners(ctx);
    expect(process.listenerCount("SIGINT")).toBe(before);
    unlockListeners(ctx);
    await waiting;
  });
});

describe("stopping the server", () => {
  it("ctx.exit() closes every connection (5.0 clients are told 0x8B) and the listener", async () => {
    const ctx = await manualCtx();
    const closes: string[] = [];
    ctx.setOnClose((_c, conn) => {
      closes.push(conn.clientId);
    });
    const listener = await createListener(ctx, "127.0.0.1", "0");
    expect(listener.isOk()).toBe(true);
    const broker = {
      ctx,
      listener,
      port: listener.port,
      url: `mqtt://127.0.0.1:${listener.port}`,
      logs: [],
    };
    const v4 = await RawClient.connect(broker, 4);
    asConnack(await v4.connect({ clientId: "exit-v4" }));
    const v5 = await RawClient.connect(broker, 5);
    asConnack(await v5.connect({ protocolVersion: 5, clientId: "exit-v5" }));
    await ctx.exit();
    expect(await v5.next()).toMatchObject({ type: PacketType.DISCONNECT, reasonCode: 0x8b });
    await v4.closed;
    await v5.closed;
    expect(v4.packets).toEqual([]);
    expect(closes.sort()).toEqual(["exit-v4", "exit-v5"]);
    expect(listener.isOk()).toBe(false);
    const late = await attempt(broker, { connectTimeout: 1000 });
    expect(late.connected).toBe(false);
  });

  it("ctx.exit() releases waitListeners, and drops a peer that does not close its side", async () => {
    const ctx = await manualCtx();
    const listener = await createListener(ctx, "127.0.0.1", "0");
    const waiting = waitListeners(ctx);
    // A client that never closes its side: the broker's FIN alone would leave the socket open.
    const socket = connect({ port: listener.port, host: "127.0.0.1", allowHalfOpen: true });
    socket.on("error", () => {});
    onCleanup(() => socket.destroy());
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    let ended = false;
    let reset = false;
    socket.on("end", () => {
      ended = true;
    });
    socket.resume();
    await until(() => getBroker(ctx).allConnections.size === 1, 2000, "the connection");
    await ctx.exit();
    expect(await settles(waiting, 200)).toBe(true);
    await until(() => ended, 2000, "the broker's FIN");
    // Within the close grace (2 s), the server side is dropped: a write then gets a reset.
    const deadline = Date.now() + 4000;
    socket.on("error", () => {
      reset = true;
    });
    while (!reset && !socket.destroyed && Date.now() < deadline) {
      socket.write("x");
      await sleep(100);
    }
    expect(reset || socket.destroyed).toBe(true);
  });

  it("a listener still starting when ctx.exit() runs is not left listening", async () => {
    const ctx = await manualCtx();
    const starting = createListener(ctx, "127.0.0.1", "0");
    await ctx.exit();
    const listener = await starting;
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toBe("the context is exiting");
  });

  it("listener.close() stops accepting but keeps the open connections", async () => {
    const ctx = await manualCtx();
    const listener = await createListener(ctx, "127.0.0.1", "0");
    const url = `mqtt://127.0.0.1:${listener.port}`;
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
    onCleanup(() => c.endAsync(true));
    await listener.close();
    expect(listener.isOk()).toBe(false);
    const got = collect(c);
    await c.subscribeAsync("still", { qos: 1 });
    await c.publishAsync("still", "open", { qos: 1 });
    await until(() => got.length === 1, 2000, "a message on the open connection");
    const broker = { ctx, listener, port: listener.port, url, logs: [] };
    const late = await attempt(broker, { connectTimeout: 1000 });
    expect(late.connected).toBe(false);
  });
});

describe("controlling publishing with on_publish (manual, server step 4)", () => {
  const onPublish = (_ctx: Ctx, _conn: unknown, msg: Msg): PublishCode =>
    msg.topic === "discard/this/topic" ? PublishCode.DISCARD : PublishCode.OK;

  for (const protocolVersion of [4, 5] as const) {
    it(`${protocolVersion === 4 ? "3.1.1" : "5.0"}: a QoS 1 publish to discard/this/topic gets no PUBACK and is not routed; others are`, async () => {
      const topics: string[] = [];
      const broker = await startBroker({}, (ctx) =>
        ctx.setOnPublish((c, conn, msg) => {
          topics.push(msg.topic);
          return onPublish(c, conn, msg);
        }),
      );
      const sub = await client(broker, { protocolVersion });
      const got = collect(sub);
      await sub.subscribeAsync("#", { qos: 1 });

      const raw = await RawClient.connect(broker, protocolVersion);
      asConnack(await raw.connect({ protocolVersion }));
      raw.send({
        type: PacketType.PUBLISH,
        topic: "discard/this/topic",
        payload: enc("dropped"),
        qos: 1,
        packetId: 10,
        retain: false,
        dup: false,
      });
      await sleep(500);
      expect(raw.packets).toEqual([]);
      raw.send({
        type: PacketType.PUBLISH,
        topic: "keep/this/topic",
        payload: enc("routed"),
        qos: 1,
        packetId: 11,
        retain: false,
        dup: false,
      });
      const ack = (await raw.next()) as PubackPacket | null;
      expect(ack?.type).toBe(PacketType.PUBACK);
      expect(ack?.packetId).toBe(11);

      // MQTT.js, the positive path: acknowledged and routed.
      const pub = await client(broker, { protocolVersion });
      await pub.publishAsync("another/topic", "also routed", { qos: 1 });
      await until(() => got.length === 2, 2000, "the two routed messages");
      await sleep(100);
      expect(got.map((m) => [m.topic, m.payload])).toEqual([
        ["keep/this/topic", "routed"],
        ["another/topic", "also routed"],
      ]);
      expect(topics).toEqual(["discard/this/topic", "keep/this/topic", "another/topic"]);
    });
  }
});

describe("server side authentication with on_connect (manual)", () => {
  /** The manual's handler: when both are given they must be aspl/test; otherwise accepted. */
  const onConnect = (_ctx: Ctx, conn: { username: string | null; password: string | null }) => {
    if (conn.username && conn.password) {
      if (conn.username !== "aspl" || conn.password !== "test")
        return ConnackCode.BAD_USERNAME_OR_PASSWORD;
    }
    return ConnackCode.ACCEPTED;
  };

  for (const protocolVersion of [4, 5] as const) {
    const name = protocolVersion === 4 ? "3.1.1" : "5.0";

    it(`${name}: aspl/test is accepted`, async () => {
      const broker = await startBroker({}, (ctx) => ctx.setOnConnect(onConnect));
      const c = await client(broker, { protocolVersion, username: "aspl", password: "test" });
      expect(c.connected).toBe(true);
      const got = collect(c);
      await c.subscribeAsync("auth/ok", { qos: 1 });
      await c.publishAsync("auth/ok", "in", { qos: 1 });
      await until(() => got.length === 1, 2000, "a message of the accepted user");
    });

    it(`${name}: a wrong password or user is refused with ${protocolVersion === 4 ? "CONNACK 4" : "0x86"}`, async () => {
      const broker = await startBroker({}, (ctx) => ctx.setOnConnect(onConnect));
      for (const [username, password] of [
        ["aspl", "wrong"],
        ["someone", "test"],
      ] as const) {
        const a = await attempt(broker, { protocolVersion, username, password });
        expect(a.connected).toBe(false);
        expect(a.error?.code).toBe(protocolVersion === 4 ? 4 : 0x86);
        if (protocolVersion === 4) expect(a.connack?.returnCode).toBe(4);
        else expect(a.connack?.reasonCode).toBe(0x86);
      }
      const raw = await RawClient.connect(broker, protocolVersion);
      const connack = asConnack(
        await raw.connect({ protocolVersion, username: "aspl", password: enc("wrong") }),
      );
      expect(connack.reasonCode).toBe(protocolVersion === 4 ? 4 : 0x86);
      await raw.closed;
    });

    it(`${name}: a user name without a password, and no credentials at all, are accepted (as the manual's code does)`, async () => {
      const broker = await startBroker({}, (ctx) => ctx.setOnConnect(onConnect));
      const userOnly = await client(broker, { protocolVersion, username: "aspl" });
      expect(userOnly.connected).toBe(true);
      const anonymous = await client(broker, { protocolVersion });
      expect(anonymous.connected).toBe(true);
    });
  }
});
