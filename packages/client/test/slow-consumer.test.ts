// A slow reader: with subscriptionBuffer 10 the client stops reading from the server (and stops
// acknowledging) instead of dropping or buffering without bound; everything arrives, in order.
import { Decoder, PacketType } from "@myqtt/codec";
import type { Msg } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { connect, type MqttClient, type Subscription } from "../src/index.js";
import { type RecordingProxy, recordingProxy, settledWithin, take } from "./api-helpers.js";
import { client, mosquitto, onCleanup, sleep, startBroker, type TestServer } from "./helpers.js";
import { rawServer, until } from "./resilience-helpers.js";

const LIMIT = 10;

/** A raw server that answers SUBSCRIBE and then sends `count` messages in one burst. */
async function burstServer(count: number, qos: 0 | 1, payloadBytes: number) {
  let writable = 0;
  const server = await rawServer({
    onPacket: (conn, p) => {
      if (p.type !== PacketType.SUBSCRIBE) return;
      conn.send({ type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: [qos] });
      const id = p.properties?.subscriptionIdentifier;
      for (let n = 1; n <= count; n++) {
        const payload = Buffer.alloc(Math.max(payloadBytes, 8), " ");
        payload.write(String(n));
        conn.send({
          type: PacketType.PUBLISH,
          topic: "slow/t",
          payload,
          qos,
          retain: false,
          dup: false,
          ...(qos > 0 ? { packetId: n } : {}),
          ...(id !== undefined ? { properties: { subscriptionIdentifiers: [id] } } : {}),
        });
      }
      writable = conn.socket.writableLength;
    },
  });
  return { server, writableAfterBurst: () => writable };
}

async function readAll(sub: Subscription, count: number, pauseEvery = 0): Promise<number[]> {
  const got: number[] = [];
  let maxBuffered = 0;
  while (got.length < count) {
    maxBuffered = Math.max(maxBuffered, sub.buffered);
    const r = await sub.next();
    if (r.done) break;
    got.push(Number.parseInt(r.value.content, 10));
    if (pauseEvery > 0 && got.length % pauseEvery === 0) await sleep(1);
  }
  expect(maxBuffered).toBeLessThanOrEqual(LIMIT);
  return got;
}

const range = (count: number): number[] => Array.from({ length: count }, (_, i) => i + 1);

describe("a slow subscription reader (subscriptionBuffer 10)", () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`v${protocolVersion}: QoS 1 — acknowledges no more than it buffered while the reader stalls, then delivers all in order`, async () => {
      const { server } = await burstServer(200, 1, 16);
      const c = await connect(server.url, {
        protocolVersion,
        reconnect: false,
        subscriptionBuffer: LIMIT,
      });
      onCleanup(() => c.destroy());
      const sub = await c.subscribe("slow/#", { qos: 1 });
      await until(() => sub.buffered === LIMIT, 2000, "a full buffer");
      await sleep(300); // the reader stalls
      expect(sub.buffered).toBe(LIMIT);
      // Messages past the buffer were neither taken nor acknowledged (nor dropped).
      expect(server.received(PacketType.PUBACK).length).toBeLessThanOrEqual(LIMIT);
      expect(c.connected).toBe(true);
      expect(await readAll(sub, 200, 10)).toEqual(range(200));
      await until(() => server.received(PacketType.PUBACK).length === 200, 2000, "200 PUBACK");
      expect(server.received(PacketType.PUBACK).map((p) => p.packetId)).toEqual(range(200));
    });
  }

  it("QoS 0 — the client stops reading the socket: the bytes wait at the server, none is dropped", async () => {
    const COUNT = 6000;
    const { server, writableAfterBurst } = await burstServer(COUNT, 0, 2048);
    const c = await connect(server.url, { reconnect: false, subscriptionBuffer: LIMIT });
    onCleanup(() => c.destroy());
    const sub = await c.subscribe("slow/#");
    await until(() => sub.buffered === LIMIT, 2000, "a full buffer");
    await sleep(300);
    expect(sub.buffered).toBe(LIMIT);
    // About 12 MB were written; the client took only what fits its buffers: the rest waits in
    // the server's socket (TCP backpressure), not in the client's memory.
    const socket = server.conns[0]!.socket;
    expect(writableAfterBurst()).toBeGreaterThan(0);
    expect(socket.writableLength).toBeGreaterThan(1024 * 1024);
    expect(await readAll(sub, COUNT, 100)).toEqual(range(COUNT));
    await until(() => socket.writableLength === 0, 2000, "the server's buffer drained");
  });

  for (const [name, start] of [
    ["our broker", (): Promise<TestServer> => startBroker()],
    ["Mosquitto", (): Promise<TestServer> => mosquitto()],
  ] as const) {
    it(`through ${name}: 300 QoS 1 messages to a slow reader arrive once each, in order`, async () => {
      const server = await start();
      const sub = await client(server, { subscriptionBuffer: LIMIT });
      const subscription = await sub.subscribe("slow/#", { qos: 1 });
      const pub = await client(server);
      const reading = readAll(subscription, 300, 5);
      let next = 1;
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (next <= 300) await pub.publish("slow/t", String(next++), { qos: 1 });
        }),
      );
      const got = await reading;
      expect(got).toEqual(range(300));
      await sleep(100);
      expect(subscription.buffered).toBe(0); // nothing twice, nothing more
    });
  }
});

// --- a reader that waits for the server from its loop body ------------------------------------------
//
// With its buffer full the client used to stop reading while the loop body awaited a QoS 1
// publish (or subscribe, ping, request): the answer sat unread behind the messages, and the
// loop never went on. Now the client reads on while it waits for an answer, withholding the
// acknowledgement of the QoS 1/2 messages past the buffer (the server's in-flight window bounds
// them) and dropping the QoS 0 ones past it (counted, reported).

/** The server's in-flight window towards the reader in these tests. */
const WINDOW = 20;
const WINDOWED = [
  ["our broker", (): Promise<TestServer> => startBroker({ maxInflight: WINDOW })],
  ["Mosquitto", (): Promise<TestServer> => mosquitto([`max_inflight_messages ${WINDOW}`])],
] as const;

/** Counts the PUBACK and PUBREC a client sends, seen through a recording proxy. */
function acknowledgementsSent(proxy: RecordingProxy, protocolVersion: 4 | 5): () => number {
  let seen = 0;
  let count = 0;
  const decoder = new Decoder(
    (p) => {
      if (p.type === PacketType.PUBACK || p.type === PacketType.PUBREC) count++;
    },
    { protocolVersion },
  );
  return () => {
    const bytes = proxy.toServer();
    decoder.push(bytes.subarray(seen));
    seen = bytes.length;
    return count;
  };
}

/**
 * A reader (subscriptionBuffer 10, through a recording proxy) subscribed to `in/#` with `count`
 * QoS 1 messages already waiting for it at the server, and `body` run for each one in a
 * for-await loop; resolves with what the loop handled (fails after `ms` instead of hanging
 * when the loop is stuck), the most messages the Subscription held, and the most it held
 * acknowledged (taken from the server's care) but not yet taken by the loop.
 */
async function loopWithBody(
  server: TestServer,
  protocolVersion: 4 | 5,
  count: number,
  body: (reader: MqttClient, msg: Msg) => Promise<void>,
  ms = 15_000,
) {
  const proxy = await recordingProxy(server.port);
  const reader = await client(proxy, { protocolVersion, subscriptionBuffer: LIMIT });
  const acked = acknowledgementsSent(proxy, protocolVersion);
  const sub = await reader.subscribe("in/#", { qos: 1 });
  const pub = await client(server, { protocolVersion });
  for (let n = 1; n <= count; n++) await pub.publish("in/x", String(n), { qos: 1 });
  await until(() => sub.buffered === LIMIT, 3000, "the reader's buffer full");
  const handled: number[] = [];
  let maxBuffered = 0;
  let maxAckedHeld = 0;
  const loop = (async () => {
    for await (const msg of sub) {
      await body(reader, msg);
      handled.push(Number(msg.content));
      // The buffer only grows while the body runs: its largest size is seen here.
      maxBuffered = Math.max(maxBuffered, sub.buffered);
      maxAckedHeld = Math.max(maxAckedHeld, acked() - handled.length);
      if (handled.length === count) break;
    }
  })();
  const outcome = await settledWithin(loop, ms);
  if (outcome === "pending")
    throw new Error(`the loop is stuck after ${handled.length} of ${count} messages`);
  if (outcome.status === "rejected") throw outcome.reason;
  return { reader, sub, handled, maxBuffered, maxAckedHeld };
}

describe.each(WINDOWED)(
  "a for-await reader awaiting the server in its body, through %s",
  (name, start) => {
    /**
     * What the Subscription held: never more acknowledged messages than its buffer; the rest
     * was unacknowledged, so within the server's in-flight window — which our broker keeps.
     * Mosquitto 2.0 does not: each acknowledgement lets up to a whole window more go out.
     */
    function expectBounded(r: { maxBuffered: number; maxAckedHeld: number }): void {
      expect(r.maxAckedHeld).toBeLessThanOrEqual(LIMIT);
      if (name === "our broker") expect(r.maxBuffered).toBeLessThanOrEqual(LIMIT + WINDOW);
    }

    describe.each([4, 5] as const)("MQTT level %i", (protocolVersion) => {
      it("awaits a QoS 1 publish for each message: handles all, each published once, memory bounded", async () => {
        const COUNT = 60;
        const server = await start();
        const observer = await client(server, { protocolVersion });
        const out = await observer.subscribe("out/#", { qos: 1 });
        const r = await loopWithBody(server, protocolVersion, COUNT, async (reader, msg) => {
          await sleep(2);
          await reader.publish("out/x", msg.content, { qos: 1 });
        });
        expect(r.handled).toEqual(range(COUNT));
        expect(r.sub.dropped).toBe(0);
        expectBounded(r);
        expect((await take(out, COUNT)).map((m) => Number(m.content))).toEqual(range(COUNT));
        await sleep(100);
        expect(out.buffered).toBe(0); // nothing twice
      });

      it("awaits subscribe, ping and unsubscribe for each message: handles all", async () => {
        const COUNT = 30;
        const server = await start();
        const r = await loopWithBody(server, protocolVersion, COUNT, async (reader, msg) => {
          const side = await reader.subscribe(`side/${msg.content}`, { qos: 1 });
          await reader.ping();
          await side.unsubscribe();
        });
        expect(r.handled).toEqual(range(COUNT));
        expect(r.sub.dropped).toBe(0);
        expectBounded(r);
      });
    });

    it("MQTT 5.0: awaits a request() for each message (QoS 0 responses): handles all", async () => {
      const COUNT = 30;
      const server = await start();
      const responder = await client(server, { protocolVersion: 5 });
      const requests = await responder.subscribe("svc/#", { qos: 1 });
      void (async () => {
        for await (const msg of requests) {
          const { responseTopic, correlationData } = msg.properties;
          if (responseTopic === undefined) continue;
          // QoS 0: a response outside the in-flight window the reader's messages fill.
          responder
            .publish(responseTopic, `re:${msg.content}`, {
              qos: 0,
              properties: correlationData === undefined ? {} : { correlationData },
            })
            .catch(() => {});
        }
      })();
      const answers: string[] = [];
      const r = await loopWithBody(server, 5, COUNT, async (reader, msg) => {
        answers.push((await reader.request("svc/echo", msg.content, { timeoutMs: 5000 })).content);
      });
      expect(r.handled).toEqual(range(COUNT));
      expect(answers).toEqual(range(COUNT).map((n) => `re:${n}`));
      expectBounded(r);
    });
  },
);

describe("reading on while the client waits for an answer (a raw server, subscriptionBuffer 10)", () => {
  /** A raw server: SUBACK, then `count` messages of `qos` on slow/t; PINGRESP to PINGREQ. */
  async function scripted(count: number, qos: 0 | 1) {
    return rawServer({
      onPacket: (conn, p) => {
        if (p.type === PacketType.PINGREQ) conn.send({ type: PacketType.PINGRESP });
        if (p.type !== PacketType.SUBSCRIBE) return;
        conn.send({ type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: [qos] });
        const id = p.properties?.subscriptionIdentifier;
        for (let n = 1; n <= count; n++) {
          conn.send({
            type: PacketType.PUBLISH,
            topic: "slow/t",
            payload: Buffer.from(String(n)),
            qos,
            retain: false,
            dup: false,
            ...(qos > 0 ? { packetId: n } : {}),
            ...(id !== undefined ? { properties: { subscriptionIdentifiers: [id] } } : {}),
          });
        }
      },
    });
  }

  it("QoS 0 past the full buffer is dropped, counted and reported while ping() waits; none else", async () => {
    const server = await scripted(30, 0);
    const c = await connect(server.url, { reconnect: false, subscriptionBuffer: LIMIT });
    onCleanup(() => c.destroy());
    const drops: string[] = [];
    c.on("drop", (msg, subscription) => {
      expect(subscription).toBe(sub);
      drops.push(msg.content);
    });
    const sub = await c.subscribe("slow/#");
    await until(() => sub.buffered === LIMIT, 2000, "a full buffer");
    await sleep(100);
    expect(sub.dropped).toBe(0); // nothing awaited: reading paused, nothing dropped
    expect(await settledWithin(c.ping(), 2000)).toEqual({ status: "fulfilled", value: undefined });
    // The PINGRESP came behind messages 11..30: read, and dropped for the full buffer.
    expect(sub.dropped).toBe(20);
    expect(drops).toEqual(range(30).slice(LIMIT).map(String));
    expect(sub.buffered).toBe(LIMIT);
    expect(await readAll(sub, LIMIT)).toEqual(range(LIMIT));
  });

  it("QoS 1 past the full buffer is kept unacknowledged while ping() waits; acknowledged in order once read", async () => {
    const server = await scripted(30, 1);
    const c = await connect(server.url, { reconnect: false, subscriptionBuffer: LIMIT });
    onCleanup(() => c.destroy());
    const sub = await c.subscribe("slow/#", { qos: 1 });
    await until(() => sub.buffered === LIMIT, 2000, "a full buffer");
    expect(await settledWithin(c.ping(), 2000)).toEqual({ status: "fulfilled", value: undefined });
    expect(sub.buffered).toBe(30);
    expect(sub.dropped).toBe(0);
    await sleep(100);
    // Only what was taken below the bound is acknowledged.
    expect(server.received(PacketType.PUBACK).map((p) => p.packetId)).toEqual(range(LIMIT - 1));
    const got: number[] = [];
    for (let n = 0; n < 30; n++) {
      const r = await sub.next();
      got.push(Number(r.value!.content));
    }
    expect(got).toEqual(range(30));
    await until(() => server.received(PacketType.PUBACK).length === 30, 2000, "30 PUBACK");
    expect(server.received(PacketType.PUBACK).map((p) => p.packetId)).toEqual(range(30));
  });

  it("5.0: a server sending more unacknowledged QoS 1 than the client's Receive Maximum is disconnected (0x93)", async () => {
    const server = await scripted(30, 1);
    const c = await connect(server.url, {
      protocolVersion: 5,
      reconnect: false,
      subscriptionBuffer: 3,
      properties: { receiveMaximum: 5 },
    });
    onCleanup(() => c.destroy());
    const closed = new Promise<void>((resolve) => c.once("close", () => resolve()));
    const sub = await c.subscribe("slow/#", { qos: 1 });
    await until(() => sub.buffered === 3, 2000, "a full buffer");
    const ping = c.ping().catch(() => {});
    await closed;
    await ping;
    const disconnect = server.received(PacketType.DISCONNECT);
    expect(disconnect.map((p) => p.reasonCode)).toEqual([0x93]);
    // Messages 1 and 2 were taken below the bound; 3..7 withheld; 8 was one too many.
    expect(server.received(PacketType.PUBACK).map((p) => p.packetId)).toEqual([1, 2]);
    // What it took stays readable; message 8 was neither taken nor acknowledged.
    expect(await readAll(sub, 8)).toEqual(range(7));
  });
});
