// A slow reader: with subscriptionBuffer 10 the client stops reading from the server (and stops
// acknowledging) instead of dropping or buffering without bound; everything arrives, in order.
import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { connect, type Subscription } from "../src/index.js";
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
