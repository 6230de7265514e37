import { describe, expect, it } from "vitest";
import { frame, readFrames } from "./frames.js";

const HEADER = 12;

function payloads(...texts: string[]): Buffer[] {
  return texts.map((t) => Buffer.from(t));
}

/** Reads `buf`, collecting the damage reports. */
function read(buf: Buffer): { records: string[]; damage: { offset: number; why: string }[] } {
  const damage: { offset: number; why: string }[] = [];
  const records = readFrames(buf, (offset, why) => damage.push({ offset, why })).map((p) =>
    p.toString(),
  );
  return { records, damage };
}

const THREE = payloads("first record", "the second record, in the middle", "third");

describe("frames", () => {
  it("reads several records back in order, reporting no damage", () => {
    const list = [...THREE, Buffer.alloc(0), Buffer.alloc(70_000, 0xab)];
    const { records, damage } = read(Buffer.concat(list.map((p) => frame(p))));
    expect(records).toEqual(list.map((p) => p.toString()));
    expect(damage).toEqual([]);
  });

  it("reads nothing from nothing", () => {
    expect(read(Buffer.alloc(0))).toEqual({ records: [], damage: [] });
  });

  it("a flipped byte in the middle record: the other two are read, damage reported once at its offset", () => {
    const framed = THREE.map((p) => frame(p));
    const start = framed[0]!.length;
    const buf = Buffer.concat(framed);
    buf[start + HEADER + 5]! ^= 0x40;
    const { records, damage } = read(buf);
    expect(records).toEqual(["first record", "third"]);
    expect(damage).toHaveLength(1);
    expect(damage[0]!.offset).toBe(start);
    expect(damage[0]!.why).toMatch(/checksum/);
  });

  it("any single bit flipped anywhere in the middle record (header too) loses only that record", () => {
    const framed = THREE.map((p) => frame(p));
    const start = framed[0]!.length;
    const clean = Buffer.concat(framed);
    for (let i = start; i < start + framed[1]!.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const buf = Buffer.from(clean);
        buf[i]! ^= 1 << bit;
        const { records, damage } = read(buf);
        expect(records, `byte ${i} bit ${bit}`).toEqual(["first record", "third"]);
        expect(damage, `byte ${i} bit ${bit}`).toHaveLength(1);
        expect(damage[0]!.offset).toBe(start);
      }
    }
  });

  it("a cut tail: the complete records are read and the cut one reported, wherever the cut is", () => {
    const framed = THREE.map((p) => frame(p));
    const whole = Buffer.concat(framed);
    const lastStart = whole.length - framed[2]!.length;
    for (let cut = 1; cut < framed[2]!.length; cut++) {
      const { records, damage } = read(whole.subarray(0, whole.length - cut));
      expect(records, `cut ${cut}`).toEqual(["first record", "the second record, in the middle"]);
      expect(damage, `cut ${cut}`).toHaveLength(1);
      expect(damage[0]!.offset).toBe(lastStart);
      expect(damage[0]!.why).toMatch(/cut short/);
    }
  });

  it("garbage before the first record: reading resyncs at the first record", () => {
    const garbage = Buffer.from("some garbage \x00\xff that is no record MQR");
    const buf = Buffer.concat([garbage, ...THREE.map((p) => frame(p))]);
    const { records, damage } = read(buf);
    expect(records).toEqual(THREE.map((p) => p.toString()));
    expect(damage).toHaveLength(1);
    expect(damage[0]!.offset).toBe(0);
    expect(damage[0]!.why).toMatch(/garbage/);
  });

  it("garbage between records, and a false magic in it, are skipped", () => {
    const [a, b, c] = THREE.map((p) => frame(p));
    const buf = Buffer.concat([
      a!,
      Buffer.from("xxMQR1\xff\xff\xff\x7fzz"),
      b!,
      Buffer.from("MQR"),
      c!,
    ]);
    const { records, damage } = read(buf);
    expect(records).toEqual(THREE.map((p) => p.toString()));
    expect(damage.length).toBeGreaterThanOrEqual(2);
    for (const d of damage) expect(d.offset).toBeGreaterThanOrEqual(a!.length);
  });

  it("fewer bytes than a header: nothing read, damage reported", () => {
    const { records, damage } = read(Buffer.from("MQR1"));
    expect(records).toEqual([]);
    expect(damage).toHaveLength(1);
  });

  it("fuzz: random buffers (some with magic and valid records inside) never throw", () => {
    let seed = 7;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let i = 0; i < 1000; i++) {
      const parts: Buffer[] = [];
      for (let p = next(6); p > 0; p--) {
        const kind = next(3);
        if (kind === 0) parts.push(frame(Buffer.from(`record ${i} ${p}`)));
        else if (kind === 1) parts.push(Buffer.from("MQR1"));
        else parts.push(Buffer.from(Array.from({ length: next(40) }, () => next(256))));
      }
      const buf = Buffer.concat(parts);
      const records = readFrames(buf, () => {});
      expect(records.length).toBeLessThanOrEqual(parts.length);
    }
  });
});
