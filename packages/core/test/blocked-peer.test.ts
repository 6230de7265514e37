// A peer that stops reading: what the channel holds for it must cost about what it counts
// (bufferedOutgoing), however small and scattered the packets sent to it are.
import type { Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Decoder, type Packet, PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { until } from "../../../tooling/testing/wait.mjs";
import { PacketChannel, type Transport, type TransportHandlers } from "../src/index.js";
import { tcpPair } from "./tcp-pair.js";

// A full collection before each reading of memoryUsage(), so that garbage is not counted.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** The real transport, counting the writes made while the channel is blocked. */
class CountingTransport implements Transport {
  channel: PacketChannel | null = null;
  blockedWrites = 0;
  blockedBytes = 0;

  constructor(private readonly inner: Transport) {}

  get remoteAddress(): string {
    return this.inner.remoteAddress;
  }
  get remotePort(): number {
    return this.inner.remotePort;
  }
  get localAddress(): string {
    return this.inner.localAddress;
  }
  get localPort(): number {
    return this.inner.localPort;
  }
  get serverName(): string | null {
    return this.inner.serverName;
  }
  get tls(): boolean {
    return this.inner.tls;
  }
  get writableLength(): number {
    return this.inner.writableLength;
  }
  get closed(): boolean {
    return this.inner.closed;
  }
  start(handlers: TransportHandlers): void {
    this.inner.start(handlers);
  }
  write(chunk: Uint8Array): boolean {
    if (this.channel !== null && this.channel.blockedSince !== 0) {
      this.blockedWrites++;
      this.blockedBytes += chunk.length;
    }
    return this.inner.write(chunk);
  }
  pause(): void {
    this.inner.pause();
  }
  resume(): void {
    this.inner.resume();
  }
  end(): void {
    this.inner.end();
  }
  destroy(error?: Error): void {
    this.inner.destroy(error);
  }
}

/** A core server transport (wrapped) and a raw client socket connected to it. */
async function pair(): Promise<{ transport: CountingTransport; client: Socket }> {
  const { server, client } = await tcpPair();
  return { transport: new CountingTransport(server), client };
}

/** A 100-byte QoS 0 PUBLISH whose topic and payload carry its number. */
function publish(i: number): Packet {
  const payload = new Uint8Array(88);
  new DataView(payload.buffer).setUint32(0, i);
  payload.fill(i & 0xff, 4);
  return {
    type: PacketType.PUBLISH,
    topic: `t/${i % 10_000}`.padEnd(8, "/"),
    payload,
    qos: 0,
    retain: false,
    dup: false,
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const MiB = 1024 * 1024;

describe("a peer that stops reading", () => {
  it("costs about the bytes counted for it, in few writes, and gets every packet once it reads", async () => {
    const { transport, client } = await pair();
    const channel = new PacketChannel(transport, {
      onPacket: () => undefined,
      onError: () => {},
      onClose: () => {},
    });
    transport.channel = channel;
    client.pause(); // the peer reads nothing from now on
    gc();
    const before = process.memoryUsage();
    // 100,000 packets of 100 bytes, one per event-loop turn: each turn's flush is one small
    // batch (the worst case: each used to become a chunk of its own in Node's Writable).
    const count = 100_000;
    for (let i = 0; i < count; i++) {
      expect(channel.send(publish(i))).toBe(100);
      await turn();
    }
    await turn();
    expect(channel.blockedSince).toBeGreaterThan(0);
    gc();
    const after = process.memoryUsage();
    // Buffers and the JavaScript objects that keep them queued.
    const held = after.arrayBuffers - before.arrayBuffers + (after.heapUsed - before.heapUsed);
    const counted = channel.bufferedOutgoing;
    // Most of the 10 MB wait in this process (the kernel takes a few MiB at most).
    expect(counted).toBeGreaterThan(4 * MiB);
    // Before: 30.8 MB of ArrayBuffers and 10 MB of heap held for 6.0 MB counted, in 59,700
    // writes while blocked. Now 6.1 MB and 0.3 MB, in 90 writes.
    expect(held).toBeLessThan(1.5 * counted + MiB);
    // While blocked, bytes leave in chunks of at least 64 KiB, not one write per turn.
    expect(transport.blockedWrites).toBeLessThanOrEqual(transport.blockedBytes / 65_536 + 1);

    // The peer reads again: every packet arrives, intact and in order.
    let received = 0;
    let bad = "";
    const decoder = new Decoder((p) => {
      if (p.type !== PacketType.PUBLISH) {
        bad ||= `packet type ${p.type} at ${received}`;
        return;
      }
      const expected = publish(received) as typeof p;
      if (p.topic !== expected.topic || Buffer.compare(p.payload, expected.payload) !== 0) {
        bad ||= `packet ${received} differs`;
      }
      received++;
    });
    client.on("data", (d) => decoder.push(d));
    client.resume();
    await until(() => received === count || bad !== "", 10_000, "every packet at the peer");
    expect(bad).toBe("");
    expect(received).toBe(count);
    await until(() => channel.blockedSince === 0 && channel.bufferedOutgoing === 0, 2000);
  });

  it("end() while blocked still sends what waits in the channel, then ends", async () => {
    const { transport, client } = await pair();
    const channel = new PacketChannel(transport, {
      onPacket: () => undefined,
      onError: () => {},
      onClose: () => {},
    });
    transport.channel = channel;
    client.pause();
    const count = 60_000;
    for (let i = 0; i < count; i++) {
      channel.send(publish(i));
      await turn();
    }
    expect(channel.blockedSince).toBeGreaterThan(0);
    channel.send(publish(count)); // still in the channel when end() is called
    channel.end();
    let received = 0;
    let last = -1;
    const decoder = new Decoder((p) => {
      if (p.type === PacketType.PUBLISH) {
        last = new DataView(p.payload.buffer, p.payload.byteOffset).getUint32(0);
        received++;
      }
    });
    const ended = new Promise<void>((resolve) => client.on("end", resolve));
    client.on("data", (d) => decoder.push(d));
    client.resume();
    await ended;
    expect(received).toBe(count + 1);
    expect(last).toBe(count);
  });
});
