// How PacketWriter's buffer grows: doubling up to chunkSize, by half beyond it (not to the exact
// size, which copied everything pending at every packet), and never kept large after a flush.
import { afterEach, describe, expect, it, vi } from "vitest";
import { Decoder, encode, type Packet, PacketType, PacketWriter } from "../src/index.js";

/** A 100-byte QoS 0 PUBLISH carrying its number. */
function publish(i: number): Packet {
  const payload = new Uint8Array(93);
  new DataView(payload.buffer).setUint32(0, i);
  return { type: PacketType.PUBLISH, topic: "t/a", payload, qos: 0, retain: false, dup: false };
}

/** The numbers of the PUBLISH packets in `bytes`, in order. */
function numbers(bytes: Uint8Array): number[] {
  const out: number[] = [];
  new Decoder((p) => {
    if (p.type === PacketType.PUBLISH)
      out.push(new DataView(p.payload.buffer, p.payload.byteOffset).getUint32(0));
  }).push(bytes);
  return out;
}

/** Counts the buffers the writer allocates (the codec allocates through Buffer.allocUnsafe). */
function countAllocations(): { count: number; bytes: number } {
  const seen = { count: 0, bytes: 0 };
  const original = Buffer.allocUnsafe;
  vi.spyOn(Buffer, "allocUnsafe").mockImplementation((size: number) => {
    seen.count++;
    seen.bytes += size;
    return original(size);
  });
  return seen;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("PacketWriter growth", () => {
  it("writing far beyond chunkSize without a flush allocates a few buffers, not one per packet", () => {
    expect(encode(publish(0)).length).toBe(100);
    const writer = new PacketWriter({ chunkSize: 4096 });
    const allocated = countAllocations();
    const count = 5000;
    for (let i = 0; i < count; i++) writer.write(publish(i));
    expect(writer.length).toBe(count * 100);
    // Doubling from 512 to 4 KiB, then by half up to 500 KB: 17 buffers, 1.6 MB in all. Sized
    // to what each packet needed, it was one buffer per packet beyond 4 KiB: 4,964, 1.25 GB.
    expect(allocated.count).toBeLessThanOrEqual(20);
    expect(allocated.bytes).toBeLessThan(4 * count * 100);
    const out = writer.flush();
    expect(out.length).toBe(count * 100);
    // The buffer is at most half as large again as what it holds.
    expect(out.buffer.byteLength).toBeLessThanOrEqual(1.5 * out.length + 100);
    expect(numbers(out)).toEqual(Array.from({ length: count }, (_, i) => i));
  });

  it("one large packet gets a buffer of its exact size, as before", () => {
    const writer = new PacketWriter({ chunkSize: 4096 });
    writer.write(publish(0));
    const big: Packet = { ...publish(1), payload: new Uint8Array(100_000) } as Packet;
    const size = writer.write(big);
    const out = writer.flush();
    expect(out.length).toBe(100 + size);
    expect(out.buffer.byteLength).toBe(100 + size);
  });

  it("does not keep a buffer grown beyond chunkSize for the next batch", () => {
    const writer = new PacketWriter({ chunkSize: 4096 });
    for (let i = 0; i < 100; i++) writer.write(publish(i));
    const first = writer.flush();
    expect(first.buffer.byteLength).toBeGreaterThan(4096);
    writer.write(publish(100));
    const second = writer.flush();
    expect(second.buffer).not.toBe(first.buffer);
    expect(second.buffer.byteLength).toBeLessThanOrEqual(8192); // a fresh one, or a pool slab
    expect(numbers(first)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(numbers(second)).toEqual([100]);
  });
});
