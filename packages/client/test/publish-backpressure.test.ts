// Publishing to a server that stops reading (connected, no FIN): the connection holds at most
// maxOutgoingBytes unsent, plus one packet. Past it, publishes of any QoS wait in the publish
// queue under its one bound (QueueFullError beyond it, at once), a QoS 0 publish resolving
// only once it is handed to the connection; when the server reads again, everything accepted
// arrives once, in order.
import { PacketType, type PublishPacket } from "@myqtt/codec";
import type { PacketChannel } from "@myqtt/core";
import { Ctx } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import {
  Conn,
  ConnectionClosedError,
  type InflightEntry,
  type InflightStore,
  type MqttClient,
  QueueFullError,
  TimeoutError,
} from "../src/index.js";
import { client, onCleanup, sleep, until } from "./helpers.js";
import { rawServer, settle } from "./resilience-helpers.js";

const MARK = 256 * 1024;
const PAYLOAD = 1000;
const TOPIC = "bp/t";
/** A 3.1.1 PUBLISH of TOPIC and PAYLOAD bytes, QoS 1 (QoS 0 is 2 bytes less). */
const PACKET = 1 + 2 + 2 + TOPIC.length + 2 + PAYLOAD;
/** More than the loopback socket buffers of both ends take (about 4.5 MB here) plus the mark. */
const N = 20_000;

function payload(i: number): Uint8Array {
  const p = new Uint8Array(PAYLOAD);
  p.set(new TextEncoder().encode(String(i).padStart(8, "0")));
  return p;
}

function indexOf(p: PublishPacket): number {
  return Number(new TextDecoder().decode(p.payload.subarray(0, 8)));
}

/** Bytes the client's connection holds unsent: packed in its writer, or in the socket. */
function outgoing(c: MqttClient): number {
  const link = (c as unknown as { link: { channel: PacketChannel } | null }).link;
  return link === null ? 0 : link.channel.bufferedOutgoing;
}

/**
 * A raw 3.1.1 server that answers CONNECT, then reads nothing until `resume()`; it
 * acknowledges every QoS 1 PUBLISH it reads.
 */
async function stallingServer() {
  const server = await rawServer({
    onPacket(conn, packet) {
      if (packet.type === PacketType.CONNECT) conn.socket.pause();
      else if (packet.type === PacketType.PUBLISH && packet.qos === 1)
        conn.send({ type: PacketType.PUBACK, packetId: packet.packetId! });
    },
  });
  return {
    server,
    resume: (): void => {
      server.conns[0]!.socket.resume();
    },
    /** The index of every PUBLISH the server read, in order. */
    received: (): number[] => server.received(PacketType.PUBLISH).map(indexOf),
    publishes: (): PublishPacket[] => server.received(PacketType.PUBLISH),
  };
}

/** Waits until `count()` stopped changing for `quietMs` (or `ms` passed). */
async function stalled(count: () => number, quietMs = 300, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const now = count();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await sleep(10);
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

describe("publishing to a server that stops reading", () => {
  it("QoS 0: a loop awaiting each publish stalls at maxOutgoingBytes instead of growing the client; once the server reads, every message arrives once, in order", async () => {
    const s = await stallingServer();
    const c = await client(s.server, { maxOutgoingBytes: MARK, keepAlive: 0 });
    let done = 0;
    let peak = 0;
    const loop = (async () => {
      for (let i = 0; i < N; i++) {
        await c.publish(TOPIC, payload(i), { qos: 0 });
        done++;
        peak = Math.max(peak, outgoing(c));
      }
    })();
    await stalled(() => done);
    // Stalled: the socket buffers took what they could, the client holds the mark.
    expect(done).toBeLessThan(N);
    expect(done).toBeGreaterThan(MARK / PACKET);
    expect(peak).toBeLessThanOrEqual(MARK + PACKET);
    expect(outgoing(c)).toBeLessThanOrEqual(MARK + PACKET);
    expect(outgoing(c)).toBeGreaterThan(MARK - 64 * 1024);
    // The one the loop awaits waits in the publish queue.
    expect(c.pendingPublishes).toBe(1);
    s.resume();
    await loop;
    await until(() => s.received().length >= N, 10_000, "every message at the server");
    await sleep(50);
    expect(s.received()).toEqual(range(0, N));
    expect(peak).toBeLessThanOrEqual(MARK + PACKET);
  });

  it("QoS 0 fired without awaiting: past the mark they queue within offlineQueue.maxMessages, beyond it QueueFullError at once; the accepted arrive once, in order", async () => {
    const s = await stallingServer();
    const c = await client(s.server, {
      maxOutgoingBytes: MARK,
      keepAlive: 0,
      offlineQueue: { maxMessages: 100 },
    });
    const fired = await fireAllChecked(c, 0, 100);
    s.resume();
    const all = await Promise.all(fired.results);
    expect(all.filter((r) => r.ok).length).toBe(fired.accepted);
    await until(() => s.received().length >= fired.accepted, 10_000, "the accepted messages");
    await sleep(50);
    expect(s.received()).toEqual(range(0, fired.accepted));
  });

  it("QoS 1 at 3.1.1 (window 65,535) fired without awaiting: no more than the mark goes out, the rest queue within the bound or are refused at once; the accepted arrive once, in order", async () => {
    const s = await stallingServer();
    const c = await client(s.server, {
      maxOutgoingBytes: MARK,
      keepAlive: 0,
      offlineQueue: { maxMessages: 100 },
    });
    const fired = await fireAllChecked(c, 1, 100);
    // In flight: what the socket buffers and the mark hold, far below the window.
    expect(fired.accepted).toBeLessThan(N);
    s.resume();
    const all = await Promise.all(fired.results);
    expect(all.filter((r) => r.ok).length).toBe(fired.accepted);
    expect(c.pendingPublishes).toBe(0);
    await sleep(50);
    expect(s.received()).toEqual(range(0, fired.accepted));
    expect(s.publishes().every((p) => !p.dup)).toBe(true);
  });

  it("QoS 1 with an in-flight store that answers later: packets waiting for the store count against the mark", async () => {
    const s = await stallingServer();
    const entries = new Map<number, InflightEntry>();
    const later = (): Promise<void> => new Promise((r) => setImmediate(r));
    const store: InflightStore = {
      load: () => [],
      put: (_id, e) => {
        entries.set(e.packetId, e);
        return later();
      },
      delete: (_id, packetId) => {
        entries.delete(packetId);
        return later();
      },
      clear: () => {},
    };
    const c = await client(s.server, {
      maxOutgoingBytes: MARK,
      keepAlive: 0,
      offlineQueue: { maxMessages: 100 },
      inflightStore: store,
    });
    let peak = 0;
    const sample = setInterval(() => {
      peak = Math.max(peak, outgoing(c));
    }, 1);
    try {
      const fired = await fireAllChecked(c, 1, 100);
      await stalled(() => s.received().length + outgoing(c));
      peak = Math.max(peak, outgoing(c));
      expect(peak).toBeLessThanOrEqual(MARK + PACKET);
      s.resume();
      const all = await Promise.all(fired.results);
      expect(all.filter((r) => r.ok).length).toBe(fired.accepted);
      await sleep(50);
      expect(s.received()).toEqual(range(0, fired.accepted));
    } finally {
      clearInterval(sample);
    }
  });

  it("keep alive still goes: a server that stopped reading (and answering) is declared dead, and the publish waiting is rejected, not lost silently", async () => {
    const s = await stallingServer();
    const c = await client(s.server, { maxOutgoingBytes: MARK, keepAlive: 1 });
    let closeError: unknown = null;
    c.on("error", () => {});
    const started = Date.now();
    const loop = (async () => {
      for (let i = 0; i < N; i++) await c.publish(TOPIC, payload(i), { qos: 0 });
    })().catch((error: unknown) => {
      closeError = error;
    });
    await until(() => c.state === "closed", 5000, "the client to give up on the server");
    await loop;
    // At most 2 × keep alive after the last packet received (the CONNACK), with some slack.
    expect(Date.now() - started).toBeLessThan(3500);
    expect(closeError).toBeInstanceOf(ConnectionClosedError);
    expect((closeError as ConnectionClosedError).cause).toBeInstanceOf(TimeoutError);
  });
});

/**
 * Fires N publishes of `qos` without awaiting them; checks that a prefix was accepted and the
 * rest refused at once with QueueFullError, that at most `maxMessages` of the accepted wait in
 * the publish queue, and that the connection holds no more than the mark plus one packet.
 */
async function fireAllChecked(c: MqttClient, qos: 0 | 1, maxMessages: number) {
  const errors: unknown[] = [];
  const results = Array.from({ length: N }, (_, i) =>
    settle(c.publish(TOPIC, payload(i), { qos })).then((r) => {
      if (!r.ok) errors[i] = r.error;
      return r;
    }),
  );
  const afterFiring = outgoing(c);
  // Refusals come at once, before the event loop turns.
  await new Promise((r) => setImmediate(r));
  const refused = range(0, N).filter((i) => errors[i] !== undefined);
  expect(refused.length).toBeGreaterThan(0);
  for (const i of refused) expect(errors[i]).toBeInstanceOf(QueueFullError);
  const accepted = refused[0]!;
  // What was refused is everything after what was accepted.
  expect(refused).toEqual(range(accepted, N));
  expect(afterFiring).toBeLessThanOrEqual(MARK + PACKET);
  expect(outgoing(c)).toBeLessThanOrEqual(MARK + PACKET);
  expect(c.pendingPublishes - (qos === 1 ? countInflight(c) : 0)).toBeLessThanOrEqual(maxMessages);
  return { results, accepted };
}

function countInflight(c: MqttClient): number {
  return (c as unknown as { inflight: Map<number, unknown> }).inflight.size;
}

describe("Conn.pub on a connection over the mark", () => {
  it("wait 0 never blocks and says false once the queue refuses; a wait bounds QoS 0 too", async () => {
    const stall = await stallingServer();
    const ctx = new Ctx();
    await ctx.init();
    onCleanup(() => ctx.exit());
    const conn = await Conn.connect(ctx, "127.0.0.1", stall.server.port, "bp-conn", true);
    onCleanup(() => conn.shutdown());
    expect(conn.isOk()).toBe(true);
    // Default bounds: 1 MiB on the connection, 1000 messages in the publish queue. Wait 0
    // returns at once, also once messages wait in the queue.
    const client = conn.client!;
    let accepted = 0;
    while (accepted < N && client.pendingPublishes === 0)
      expect(await conn.pub(TOPIC, payload(accepted++), 0, false, 0)).toBe(true);
    // Over the mark: a wait bounds QoS 0 as it does QoS 1/2 (not handed over within it; the
    // message stays queued and goes later).
    const start = Date.now();
    expect(await conn.pub(TOPIC, payload(accepted++), 0, false, 1)).toBe(false);
    expect(Date.now() - start).toBeGreaterThanOrEqual(900);
    // False with wait 0 only once the queue refuses the message.
    while (accepted < N && (await conn.pub(TOPIC, payload(accepted), 0, false, 0))) accepted++;
    expect(client.pendingPublishes).toBe(1000);
    expect(accepted).toBeLessThan(N);
    expect(await conn.pub(TOPIC, payload(accepted), 1, false, 0)).toBe(false);

    stall.resume();
    await until(() => stall.received().length >= accepted, 10_000, "every accepted message");
    expect(stall.received().slice(0, accepted)).toEqual(range(0, accepted));
  });
});
