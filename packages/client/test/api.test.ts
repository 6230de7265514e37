// The idiomatic API of @myqtt/client (MqttClient): connecting, publishing, subscribing,
// iterating, unsubscribing, ping, end/destroy, events, typed errors and AbortSignal. The core
// flows run against our broker and a real Mosquitto, for MQTT 3.1.1 and 5.0.
import { InvalidTopicError, ReasonCode } from "@myqtt/codec";
import { ConnackCode, PublishCode, QOS_DENIED } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import {
  AbortedError,
  ConnackError,
  ConnectionError,
  connect,
  MqttClient,
  NotConnectedError,
  PublishError,
  SubscribeError,
} from "../src/index.js";
import {
  closedPort,
  recorder,
  recordingProxy,
  SERVERS,
  settledWithin,
  silentServer,
  take,
} from "./api-helpers.js";
import { client, onCleanup, sleep, startBroker, until } from "./helpers.js";

describe.each(SERVERS)("MqttClient against %s", (_name, start) => {
  describe.each([4, 5] as const)("MQTT level %i", (protocolVersion) => {
    it("connects with a URL and with an options object", async () => {
      const server = await start();
      const a = await connect(server.url, { protocolVersion, reconnect: false, clientId: "api-a" });
      onCleanup(() => a.destroy());
      expect(a).toBeInstanceOf(MqttClient);
      expect(a.connected).toBe(true);
      expect(a.state).toBe("connected");
      expect(a.clientId).toBe("api-a");
      expect(a.options.protocolVersion).toBe(protocolVersion);
      expect(a.remoteAddress).toBe("127.0.0.1");

      const b = await connect({
        host: "127.0.0.1",
        port: server.port,
        protocolVersion,
        reconnect: false,
      });
      onCleanup(() => b.destroy());
      expect(b.connected).toBe(true);
      // No id given: made up (3.1.1) or assigned by the server (5.0), never empty.
      expect(b.clientId).not.toBe("");
      expect(b.clientId).not.toBe(a.clientId);
      expect(b.serverPort).toBe(server.port);

      await a.end();
      await b.end();
      expect(a.state).toBe("closed");
      expect(b.connected).toBe(false);
    });

    it("publishes QoS 0, 1 and 2 and resolves each with a PublishResult", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const sub = await c.subscribe("res/#", { qos: 2 });
      const r0 = await c.publish("res/0", "q0", { qos: 0 });
      const r1 = await c.publish("res/1", "q1", { qos: 1 });
      const r2 = await c.publish("res/2", "q2", { qos: 2 });
      expect(r0.reasonCode).toBe(0);
      expect(r0.packetId).toBeUndefined();
      for (const r of [r1, r2]) {
        expect(r.reasonCode).toBe(0);
        expect(Number.isInteger(r.packetId)).toBe(true);
        expect(r.packetId).toBeGreaterThanOrEqual(1);
        expect(r.packetId).toBeLessThanOrEqual(65_535);
      }
      expect(c.pendingPublishes).toBe(0);
      const got = await take(sub, 3);
      expect(got.map((m) => [m.topic, m.content, m.qos])).toEqual([
        ["res/0", "q0", 0],
        ["res/1", "q1", 1],
        ["res/2", "q2", 2],
      ]);
    });

    it("subscribes to one filter and to several, reporting the granted QoS", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const one = await c.subscribe("g/one", { qos: 1 });
      expect(one.granted).toEqual([1]);
      expect(one.filters).toEqual(["g/one"]);
      const several = await c.subscribe(["g/a/+", "g/b/#"], { qos: 2 });
      expect(several.granted).toEqual([2, 2]);
      expect(several.filters).toEqual(["g/a/+", "g/b/#"]);
      const zero = await c.subscribe("g/zero");
      expect(zero.granted).toEqual([0]);

      await c.publish("g/a/x", "ax", { qos: 1 });
      await c.publish("g/b/y/z", "byz", { qos: 2 });
      await c.publish("g/one", "one", { qos: 1 });
      await c.publish("g/zero", "zero", { qos: 1 });
      expect((await take(several, 2)).map((m) => [m.topic, m.content, m.qos])).toEqual([
        ["g/a/x", "ax", 1],
        ["g/b/y/z", "byz", 2],
      ]);
      expect((await take(one, 1)).map((m) => m.content)).toEqual(["one"]);
      // Delivered at the granted QoS: 1 published, 0 granted.
      expect((await take(zero, 1)).map((m) => [m.content, m.qos])).toEqual([["zero", 0]]);
    });

    it("for await … break unsubscribes: later messages no longer arrive", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const rec = await recorder(c);
      const sub = await c.subscribe("loop/#", { qos: 1 });
      await c.publish("loop/1", "first", { qos: 1 });
      const got: string[] = [];
      for await (const msg of sub) {
        got.push(msg.content);
        break;
      }
      expect(got).toEqual(["first"]);
      expect(sub.active).toBe(false);
      expect(await sub.next()).toEqual({ value: undefined, done: true });

      rec.contents.length = 0;
      await c.publish("loop/2", "after break", { qos: 1 });
      await rec.barrier();
      expect(rec.contents).toEqual([]);
      expect(c.connected).toBe(true);
    });

    it("Subscription.unsubscribe() ends a waiting iteration and stops delivery", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const rec = await recorder(c);
      const sub = await c.subscribe("uns/#", { qos: 1 });
      const waiting = sub.next();
      await sub.unsubscribe();
      expect(await waiting).toEqual({ value: undefined, done: true });
      await c.publish("uns/x", "not for us", { qos: 1 });
      await rec.barrier();
      expect(rec.contents).toEqual([]);
      // A second unsubscribe is harmless.
      await sub.unsubscribe();
    });

    it("await using disposes subscriptions (unsubscribe) and clients (end)", async () => {
      const server = await start();
      const watcher = await client(server, { protocolVersion });
      const rec = await recorder(watcher);
      let disposedClient: MqttClient | null = null;
      {
        await using c = await connect(server.url, { protocolVersion, reconnect: false });
        disposedClient = c;
        {
          await using sub = await c.subscribe("disp/#", { qos: 1 });
          await watcher.publish("disp/1", "inside", { qos: 1 });
          expect((await take(sub, 1)).map((m) => m.content)).toEqual(["inside"]);
        }
        // Disposed: the server no longer sends disp/# to c.
        const seen: string[] = [];
        c.on("message", (topic) => seen.push(topic));
        await watcher.subscribe("disp/#", { qos: 1, iterate: false });
        await watcher.publish("disp/2", "outside", { qos: 1 });
        await until(() => rec.contents.includes("outside"));
        await sleep(50);
        expect(seen).toEqual([]);
      }
      expect(disposedClient.state).toBe("closed");
    });

    it("overlapping subscriptions each get their own messages", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const all = await c.subscribe("ov/#", { qos: 1 });
      const some = await c.subscribe("ov/+/x", { qos: 1 });
      await c.publish("ov/a/x", "1", { qos: 1 });
      await c.publish("ov/b/y", "2", { qos: 1 });
      await c.publish("ov/c/x", "3", { qos: 1 });
      if (protocolVersion === 5) {
        // Subscription identifiers say exactly which subscription a message is for.
        expect(all.identifier).toBeDefined();
        expect(some.identifier).toBeDefined();
        expect(all.identifier).not.toBe(some.identifier);
        expect((await take(all, 3)).map((m) => m.content)).toEqual(["1", "2", "3"]);
        expect((await take(some, 2)).map((m) => m.content)).toEqual(["1", "3"]);
        await sleep(100);
        expect(all.buffered).toBe(0);
        expect(some.buffered).toBe(0);
      } else {
        // 3.1.1 lets a server send one copy per matching subscription (3.3.5): count distinct.
        await until(() => all.buffered >= 3 && some.buffered >= 2);
        await sleep(100);
        const a = await take(all, all.buffered);
        const s = await take(some, some.buffered);
        expect([...new Set(a.map((m) => m.content))]).toEqual(["1", "2", "3"]);
        expect([...new Set(s.map((m) => m.content))]).toEqual(["1", "3"]);
      }
    });

    it("two subscriptions to the same filter both get its messages, also after one leaves", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const first = await c.subscribe("same/x", { qos: 1 });
      const second = await c.subscribe("same/x", { qos: 1 });
      await c.publish("same/x", "both", { qos: 1 });
      expect((await take(first, 1)).map((m) => m.content)).toEqual(["both"]);
      expect((await take(second, 1)).map((m) => m.content)).toEqual(["both"]);
      // The filter stays subscribed on the server while one Subscription still uses it.
      await second.unsubscribe();
      await c.publish("same/x", "first only", { qos: 1 });
      expect((await take(first, 1)).map((m) => m.content)).toEqual(["first only"]);
    });

    it("unsubscribe(filters) resolves with a reason code per filter and ends the subscriptions", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const rec = await recorder(c);
      const a = await c.subscribe("u/a", { qos: 1 });
      const b = await c.subscribe("u/b", { qos: 1 });
      const codes = await c.unsubscribe(["u/a", "u/b", "u/never"]);
      expect(codes).toEqual(
        protocolVersion === 5 ? [0, 0, ReasonCode.NO_SUBSCRIPTION_EXISTED] : [0, 0, 0],
      );
      expect(a.active).toBe(false);
      expect(b.active).toBe(false);
      expect(await a.next()).toEqual({ value: undefined, done: true });
      await c.publish("u/a", "gone", { qos: 1 });
      await c.publish("u/b", "gone", { qos: 1 });
      await rec.barrier();
      expect(rec.contents).toEqual([]);
      expect(await c.unsubscribe("u/a")).toEqual([
        protocolVersion === 5 ? ReasonCode.NO_SUBSCRIPTION_EXISTED : 0,
      ]);
    });

    it("ping() resolves with the PINGRESP", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      await expect(c.ping()).resolves.toBeUndefined();
      await Promise.all([c.ping(), c.ping(), c.ping()]);
      await c.end();
      await expect(c.ping()).rejects.toBeInstanceOf(NotConnectedError);
    });

    it("end() sends DISCONNECT: the will is not published, close fires once", async () => {
      const server = await start();
      const watcher = await client(server, { protocolVersion });
      const rec = await recorder(watcher);
      await watcher.subscribe("will/#", { qos: 1, iterate: false });
      const c = await client(server, {
        protocolVersion,
        will: { topic: "will/end", payload: "gone", qos: 1 },
      });
      let closes = 0;
      c.on("close", () => closes++);
      await c.end();
      expect(c.state).toBe("closed");
      expect(closes).toBe(1);
      await sleep(100);
      await rec.barrier();
      expect(rec.topics).toEqual([]);
      // A closed client refuses work instead of hanging.
      await expect(c.publish("x", "y", { qos: 1 })).rejects.toBeInstanceOf(NotConnectedError);
      await c.end();
      expect(closes).toBe(1);
    });

    it("destroy() drops the connection without DISCONNECT: the will is published", async () => {
      const server = await start();
      const watcher = await client(server, { protocolVersion });
      const wills = await watcher.subscribe("will/#", { qos: 1 });
      const c = await client(server, {
        protocolVersion,
        will: { topic: "will/destroy", payload: "I died", qos: 1 },
      });
      let closes = 0;
      c.on("close", () => closes++);
      c.destroy();
      const [will] = await take(wills, 1);
      expect(will?.topic).toBe("will/destroy");
      expect(will?.content).toBe("I died");
      expect(will?.qos).toBe(1);
      await until(() => closes === 1);
      expect(c.state).toBe("closed");
    });

    it("emits message events with topic, payload and the Msg", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const events: [string, string, number, number][] = [];
      c.on("message", (topic, payload, msg) =>
        events.push([topic, Buffer.from(payload).toString(), msg.qos, msg.size]),
      );
      await c.subscribe("ev/#", { qos: 2, iterate: false });
      await c.publish("ev/1", "héllo", { qos: 1 });
      await c.publish("ev/2", "", { qos: 2 });
      await until(() => events.length === 2);
      expect(events).toEqual([
        ["ev/1", "héllo", 1, 6],
        ["ev/2", "", 2, 0],
      ]);
    });

    it("a message listener that throws does not break delivery; the error is emitted", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const errors: string[] = [];
      c.on("error", (e) => errors.push(e.message));
      const got: string[] = [];
      c.on("message", (_topic, _payload, msg) => {
        got.push(msg.content);
        if (msg.content === "boom") throw new Error("listener exploded");
      });
      await c.subscribe("thr/#", { qos: 2, iterate: false });
      await c.publish("thr/1", "boom", { qos: 2 });
      await c.publish("thr/2", "fine", { qos: 2 });
      await until(() => got.length === 2);
      expect(got).toEqual(["boom", "fine"]);
      expect(errors).toEqual(["listener exploded"]);
      expect(c.connected).toBe(true);
    });

    it("an AbortSignal aborted before the send rejects with AbortedError; nothing is delivered", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion });
      const rec = await recorder(c);
      await c.subscribe("ab/#", { qos: 2, iterate: false });
      for (const qos of [0, 1, 2] as const) {
        const signal = AbortSignal.abort("changed my mind");
        await expect(c.publish(`ab/${qos}`, "never", { qos, signal })).rejects.toBeInstanceOf(
          AbortedError,
        );
      }
      await expect(c.subscribe("ab2/#", { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
        AbortedError,
      );
      expect(c.pendingPublishes).toBe(0);
      await rec.barrier();
      expect(rec.contents).toEqual([]);
      // The client is still usable.
      await c.publish("ab/ok", "fine", { qos: 1 });
      await until(() => rec.contents.includes("fine"));
    });

    it("an invalid topic name or filter is refused locally with InvalidTopicError", async () => {
      const server = await start();
      const proxy = await recordingProxy(server.port);
      const c = await client(proxy, { protocolVersion, clientId: "api-invalid" });
      for (const topic of ["bad/+/name", "bad/#", "", "bad\u0000nul"]) {
        await expect(c.publish(topic, "x", { qos: 1 }), topic).rejects.toBeInstanceOf(
          InvalidTopicError,
        );
      }
      await expect(c.publish("bad/+", "x", { qos: 0 })).rejects.toBeInstanceOf(InvalidTopicError);
      for (const filter of ["bad/#/filter", "bad+", "bad/#x", ""]) {
        await expect(c.subscribe(filter), filter).rejects.toBeInstanceOf(InvalidTopicError);
      }
      await expect(c.subscribe(["ok/x", "bad/#/y"])).rejects.toBeInstanceOf(InvalidTopicError);
      expect(c.pendingPublishes).toBe(0);
      // Nothing went out, and the connection is fine.
      await c.ping();
      expect(proxy.toServer().includes(Buffer.from("bad"))).toBe(false);
      expect(c.connected).toBe(true);
    });

    it("unsubscribe() refuses an invalid filter locally with InvalidTopicError", async () => {
      const server = await start();
      const proxy = await recordingProxy(server.port);
      const c = await client(proxy, { protocolVersion, clientId: "api-invalid-unsub" });
      const error = await c.unsubscribe(["ok/x", "bad/#/filter"]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidTopicError);
      // Nothing went out (Mosquitto would drop the connection for it), the connection is fine.
      expect(c.connected).toBe(true);
      await c.ping();
      expect(proxy.toServer().includes(Buffer.from("bad/#/filter"))).toBe(false);
    });
  });
});

describe("MqttClient typed rejections (our broker)", () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`bad credentials reject with ConnackError and the reason code (level ${protocolVersion})`, async () => {
      const server = await startBroker({}, (ctx) =>
        ctx.setOnConnect((_ctx, conn) =>
          conn.username === "aspl" && conn.password === "test"
            ? ConnackCode.ACCEPTED
            : ConnackCode.BAD_USERNAME_OR_PASSWORD,
        ),
      );
      const error = await connect(server.url, {
        protocolVersion,
        reconnect: false,
        username: "aspl",
        password: "wrong",
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnackError);
      expect((error as ConnackError).reasonCode).toBe(
        protocolVersion === 5 ? ReasonCode.BAD_USER_NAME_OR_PASSWORD : 4,
      );
      expect((error as ConnackError).name).toBe("ConnackError");
      // Credentials in the URL are used.
      const ok = await connect(`mqtt://aspl:test@127.0.0.1:${server.port}`, {
        protocolVersion,
        reconnect: false,
      });
      onCleanup(() => ok.destroy());
      expect(ok.connected).toBe(true);
    });
  }

  it("a closed port rejects with ConnectionError", async () => {
    const port = await closedPort();
    const started = Date.now();
    const error = await connect(`mqtt://127.0.0.1:${port}`, { reconnect: false }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("connectTimeoutMs rejects with ConnectionError when the server never answers", async () => {
    const silent = await silentServer();
    const started = Date.now();
    const error = await connect({
      host: "127.0.0.1",
      port: silent.port,
      connectTimeoutMs: 300,
      reconnect: false,
    }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(ConnectionError);
    expect(silent.accepted()).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
  });

  for (const qos of [1, 2] as const) {
    it(`5.0: QoS ${qos} with nobody subscribed resolves with reason code 0x10; 3.1.1 with 0`, async () => {
      const server = await startBroker();
      const v5 = await client(server, { protocolVersion: 5 });
      const r = await v5.publish("nobody/listens", "x", { qos });
      expect(r.reasonCode).toBe(ReasonCode.NO_MATCHING_SUBSCRIBERS);
      const v4 = await client(server, { protocolVersion: 4 });
      expect((await v4.publish("nobody/listens", "x", { qos })).reasonCode).toBe(0);
      // With a subscriber: success.
      await v4.subscribe("nobody/listens", { iterate: false });
      expect((await v5.publish("nobody/listens", "x", { qos })).reasonCode).toBe(0);
    });
  }

  it("5.0: a refused publish ($ topic → 0x87) rejects with PublishError; the connection stays", async () => {
    const server = await startBroker();
    const c = await client(server, { protocolVersion: 5 });
    for (const [qos, packetType] of [
      [1, 4],
      [2, 5],
    ] as const) {
      const error = await c.publish("$SYS/mine", "x", { qos }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PublishError);
      expect((error as PublishError).reasonCode).toBe(ReasonCode.NOT_AUTHORIZED);
      expect((error as PublishError).packetType).toBe(packetType);
    }
    expect(c.connected).toBe(true);
    expect(c.pendingPublishes).toBe(0);
    expect((await c.publish("fine", "x", { qos: 1 })).reasonCode).toBe(
      ReasonCode.NO_MATCHING_SUBSCRIBERS,
    );
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`a refused subscription rejects with SubscribeError; granted siblings are undone (level ${protocolVersion})`, async () => {
      const unsubscribed: string[] = [];
      const server = await startBroker({}, (ctx) => {
        ctx.setOnSubscribe((_ctx, _conn, filter, qos) =>
          filter.startsWith("denied/") ? QOS_DENIED : qos,
        );
        ctx.setOnUnsubscribe((_ctx, _conn, filter) => {
          unsubscribed.push(filter);
          return true;
        });
      });
      const c = await client(server, { protocolVersion });
      const rec = await recorder(c);
      const single = await c.subscribe("denied/one", { qos: 1 }).catch((e: unknown) => e);
      expect(single).toBeInstanceOf(SubscribeError);
      expect((single as SubscribeError).reasonCode).toBe(0x80);
      expect((single as SubscribeError).topicFilter).toBe("denied/one");

      const mixed = await c.subscribe(["ok/a", "denied/b"], { qos: 1 }).catch((e: unknown) => e);
      expect(mixed).toBeInstanceOf(SubscribeError);
      expect((mixed as SubscribeError).topicFilter).toBe("denied/b");
      await until(() => unsubscribed.includes("ok/a"), 2000, "the granted filter to be undone");
      await c.publish("ok/a", "should not arrive", { qos: 1 });
      await rec.barrier();
      expect(rec.contents).toEqual([]);
      expect(c.connected).toBe(true);
    });
  }

  it("end() waits for QoS 1 publishes in flight before DISCONNECT", async () => {
    const seen: string[] = [];
    const server = await startBroker({}, (ctx) =>
      ctx.setOnPublish(async (_ctx, _conn, msg) => {
        await sleep(200);
        seen.push(msg.content);
        return PublishCode.OK;
      }),
    );
    const c = await client(server, { protocolVersion: 4 });
    const order: string[] = [];
    const p1 = c.publish("slow", "one", { qos: 1 }).then(() => order.push("publish 1"));
    const p2 = c.publish("slow", "two", { qos: 2 }).then(() => order.push("publish 2"));
    await c.end().then(() => order.push("end"));
    await Promise.all([p1, p2]);
    expect(order).toEqual(["publish 1", "publish 2", "end"]);
    expect(seen).toEqual(["one", "two"]);
  });

  it("5.0: a server DISCONNECT emits disconnect with its reason code, then close", async () => {
    const server = await startBroker({}, (ctx) =>
      ctx.setOnPublish((_ctx, conn, msg) => {
        if (msg.topic === "kick/me") conn.close(ReasonCode.ADMINISTRATIVE_ACTION);
        return PublishCode.OK;
      }),
    );
    const c = await client(server, { protocolVersion: 5 });
    const events: string[] = [];
    c.on("disconnect", (code) => events.push(`disconnect ${code}`));
    c.on("close", () => events.push("close"));
    await c.publish("kick/me", "bye", { qos: 0 });
    await until(() => events.includes("close"));
    expect(events).toEqual([`disconnect ${ReasonCode.ADMINISTRATIVE_ACTION}`, "close"]);
    expect(c.state).toBe("closed");
  });

  it("connect, offline and reconnect events follow a lost connection", async () => {
    const server = await startBroker({}, (ctx) =>
      ctx.setOnPublish((_ctx, _conn, msg) =>
        msg.topic === "kick/me" ? PublishCode.CONN_CLOSE : PublishCode.OK,
      ),
    );
    const c = await client(server, {
      protocolVersion: 5,
      clientId: "events-client",
      reconnect: { initialDelayMs: 50, maxDelayMs: 50 },
    });
    const events: string[] = [];
    c.on("offline", () => events.push("offline"));
    c.on("connect", (connack) => events.push(`connect ${connack.reasonCode}`));
    c.on("reconnect", () => events.push("reconnect"));
    c.on("close", () => events.push("close"));
    await c.publish("kick/me", "bye");
    await until(() => events.includes("reconnect"));
    expect(events).toEqual(["offline", "connect 0", "reconnect"]);
    expect(c.connected).toBe(true);
    await c.end();
    expect(events.at(-1)).toBe("close");
  });

  it("an abort after the send only stops the waiting: the message is still delivered", async () => {
    const server = await startBroker({}, (ctx) =>
      ctx.setOnPublish(async () => {
        await sleep(150);
        return PublishCode.OK;
      }),
    );
    const c = await client(server, { protocolVersion: 5 });
    const sub = await c.subscribe("abort/late", { qos: 1 });
    const controller = new AbortController();
    const p = c.publish("abort/late", "sent", { qos: 1, signal: controller.signal });
    await sleep(20);
    controller.abort();
    const settled = await settledWithin(p, 100);
    expect(settled).not.toBe("pending");
    expect(settled !== "pending" && settled.status === "rejected" && settled.reason).toBeInstanceOf(
      AbortedError,
    );
    expect((await take(sub, 1)).map((m) => m.content)).toEqual(["sent"]);
    await until(() => c.pendingPublishes === 0);
  });
});
