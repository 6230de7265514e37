// Our client (@myqtt/client) over WebSocket against our broker: the idiomatic MqttClient with
// useWebSocket, reconnects (the server drops the socket; the broker restarts on the same port)
// with QoS 1 resent, and MyQtt's Conn.connect with ConnOpts.
import { Conn, ConnOpts, connect, type MqttClient, type Subscription } from "@myqtt/client";
import { Ctx, PublishCode } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { useWebSocket, WebSocketTransport } from "../src/index.js";
import {
  mqttjs,
  nextMessage,
  onCleanup,
  sleep,
  startWsBroker,
  until,
  type WsBroker,
} from "./helpers.js";

const FAST = { initialDelayMs: 50, maxDelayMs: 200 };

/** Our client over ws to `b`, destroyed after the test. */
async function wsClient(
  b: WsBroker,
  options: Parameters<typeof connect>[0] & object = {},
): Promise<MqttClient> {
  const c = await connect(
    useWebSocket(
      { host: "127.0.0.1", port: b.port, reconnect: false, connectTimeoutMs: 5000, ...options },
      { connectTimeoutMs: 5000 },
    ),
  );
  onCleanup(() => c.destroy());
  return c;
}

async function nextContent(sub: Subscription, ms = 5000): Promise<string> {
  const timeout = sleep(ms).then(() => {
    throw new Error("no message arrived on the subscription");
  });
  const r = await Promise.race([sub.next(), timeout]);
  if (r.done) throw new Error("the subscription ended");
  return r.value.content;
}

function events(c: MqttClient): string[] {
  const seen: string[] = [];
  c.on("offline", () => seen.push("offline"));
  c.on("reconnect", () => seen.push("reconnect"));
  c.on("error", () => {});
  return seen;
}

describe("our client over ws against our broker", () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`v${protocolVersion}: publishes and receives at QoS 0, 1 and 2 over a WebSocketTransport`, async () => {
      const b = await startWsBroker();
      const sub = await wsClient(b, { protocolVersion, clientId: `ours-sub-${protocolVersion}` });
      const pub = await wsClient(b, { protocolVersion, clientId: `ours-pub-${protocolVersion}` });
      expect(sub.transport).toBeInstanceOf(WebSocketTransport);
      expect(sub.transport?.tls).toBe(false);
      expect(sub.remoteAddress).toBe("127.0.0.1");
      const subscription = await sub.subscribe("ours/#", { qos: 2 });
      for (const qos of [0, 1, 2] as const) {
        await pub.publish(`ours/${qos}`, `at qos ${qos}`, { qos });
        expect(await nextContent(subscription)).toBe(`at qos ${qos}`);
      }
      // And with MQTT.js on the other side.
      const js = await mqttjs(`${b.base}/mqtt`, { protocolVersion, clientId: "js" });
      await js.subscribeAsync("to-js/#", { qos: 1 });
      const got = nextMessage(js, "to-js/1");
      await pub.publish("to-js/1", "from ours", { qos: 1 });
      expect((await got).payload.toString()).toBe("from ours");
      expect(b.conns.map((c) => c.tls)).toEqual([false, false, false]);
    });
  }

  it("a 1 MiB message both ways", async () => {
    const b = await startWsBroker();
    const c = await wsClient(b, { clientId: "big" });
    const subscription = await c.subscribe("big/#", { qos: 1 });
    const big = new Uint8Array(1024 * 1024).map((_, i) => i & 0xff);
    await c.publish("big/1", big, { qos: 1 });
    const r = await Promise.race([subscription.next(), sleep(5000).then(() => null)]);
    expect(r && !r.done && Buffer.compare(Buffer.from(r.value.payload), Buffer.from(big))).toBe(0);
  });

  it("reconnects after the server drops the socket, resubscribes, and delivers again", async () => {
    const b = await startWsBroker();
    const c = await wsClient(b, { clientId: "dropped", reconnect: FAST });
    const seen = events(c);
    const subscription = await c.subscribe("drop/#", { qos: 1 });
    const first = c.transport;
    b.conns.at(-1)!.shutdown();
    await until(() => seen.includes("reconnect"), 5000, "reconnect");
    expect(seen).toEqual(["offline", "reconnect"]);
    expect(c.transport).toBeInstanceOf(WebSocketTransport);
    expect(c.transport).not.toBe(first);
    const pub = await wsClient(b, { clientId: "dropper" });
    // The resubscription may still be on its way.
    await until(() => b.conns.length === 3, 3000, "the publisher");
    await sleep(50);
    await pub.publish("drop/1", "after the drop", { qos: 1 });
    expect(await nextContent(subscription)).toBe("after the drop");
  });

  it("comes back to a broker restarted on the same port and resends an unacknowledged QoS 1 publish", async () => {
    // The first broker never acknowledges: its publish hook does not answer.
    const first = await startWsBroker({}, {}, (ctx) =>
      ctx.setOnPublish(() => new Promise<PublishCode>(() => {})),
    );
    const port = first.port;
    const c = await wsClient(first, { clientId: "resender", reconnect: FAST });
    const seen = events(c);
    let done = false;
    const published = c.publish("resend/1", "in flight", { qos: 1 }).then((r) => {
      done = true;
      return r;
    });
    await until(() => first.conns.length === 1, 3000, "the connection");
    await sleep(100);
    expect(done).toBe(false);

    await first.ctx.exit();
    await until(() => seen.includes("offline"), 3000, "offline");
    // Published while nothing listens: kept in the offline queue.
    const queued = c.publish("resend/2", "while down", { qos: 1 });
    await sleep(300); // a few failed attempts
    expect(c.state).toBe("reconnecting");

    let dups = 0;
    const second = await startWsBroker({}, { port }, (ctx) =>
      ctx.setOnPublish((_ctx, _conn, msg) => {
        if (msg.dup) dups++;
        return PublishCode.OK;
      }),
    );
    expect(second.port).toBe(port);
    const watcher = await mqttjs(`${second.base}/mqtt`, { clientId: "watcher" });
    await watcher.subscribeAsync("resend/#", { qos: 1 });
    const got: string[] = [];
    watcher.on("message", (_t, payload) => got.push(payload.toString()));
    await until(() => seen.includes("reconnect"), 5000, "reconnect");
    await Promise.race([
      Promise.all([published, queued]),
      sleep(5000).then(() => {
        throw new Error("the publishes did not complete");
      }),
    ]);
    await until(() => got.length === 2, 3000, "both messages");
    expect(got.sort()).toEqual(["in flight", "while down"]);
    expect(dups).toBe(1);
  });
});

describe("MyQtt Conn over ws", () => {
  it("Conn.connect with useWebSocket(opts) subscribes, publishes and receives", async () => {
    const b = await startWsBroker({ anyPath: true });
    const ctx = new Ctx();
    await ctx.init();
    onCleanup(() => ctx.exit());
    const opts = new ConnOpts();
    // MyQtt's WebSocket clients request "/" and no subprotocol.
    expect(useWebSocket(opts, { path: "/", protocol: null })).toBe(opts);
    const conn = await Conn.connect(ctx, "127.0.0.1", b.port, "myqtt-ws", true, 30, opts);
    expect(conn.isOk()).toBe(true);
    const transport = conn.client?.transport;
    expect(transport).toBeInstanceOf(WebSocketTransport);
    expect((transport as WebSocketTransport).ws.protocol).toBe("");
    const [ok, qos] = await conn.sub("this/is/a/test/20", 2, 10);
    expect([ok, qos]).toEqual([true, 2]);
    // MyQtt drops a message nobody waits for: wait first.
    const next = conn.getNext(5000);
    expect(await conn.pub("this/is/a/test/20", "ws message", 2, true, 10)).toBe(true);
    const msg = await next;
    expect(msg?.content).toBe("ws message");
    await conn.close();
  });

  it("a refused upgrade leaves the Conn not ok with the HTTP status in errorMsg", async () => {
    const b = await startWsBroker();
    const ctx = new Ctx();
    await ctx.init();
    onCleanup(() => ctx.exit());
    const opts = useWebSocket(new ConnOpts(), { path: "/wrong" });
    opts.connectTimeoutMs = 5000;
    const conn = await Conn.connect(ctx, "127.0.0.1", b.port, "refused", true, 30, opts);
    expect(conn.isOk()).toBe(false);
    expect(conn.errorMsg).toMatch(/HTTP 404/);
  });
});
