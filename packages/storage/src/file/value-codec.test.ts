import { describe, expect, it } from "vitest";
import { DecodeError, decodeValue, encodeValue } from "./value-codec.js";

// Tags of the encoding (value-codec.ts), to build damaged inputs by hand.
const ARRAY = 6;
const OBJECT = 7;
const STRING = 4;
const BYTES = 5;

/** A small seeded generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const roundTrip = (value: unknown): unknown => decodeValue(encodeValue(value));

/** decodeValue(bytes): the value, or the DecodeError; any other throw fails the test. */
function decodeOrError(bytes: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: decodeValue(bytes) };
  } catch (error) {
    if (!(error instanceof DecodeError)) {
      throw new Error(`decodeValue(${bytes.toString("hex")}) threw ${String(error)}`);
    }
    return { ok: false };
  }
}

const NESTED = {
  int: 42,
  zero: 0,
  negative: -17,
  minInt32: -0x80000000,
  maxInt32: 0x7fffffff,
  aboveInt32: 0x80000000,
  belowInt32: -0x80000001,
  float: 3.25,
  negativeFloat: -0.000123,
  seq: 1.7e15,
  seqPlusOne: 1_700_000_000_000_001,
  maxSafe: Number.MAX_SAFE_INTEGER,
  huge: 1.7976931348623157e308,
  tiny: 5e-324,
  infinity: Number.POSITIVE_INFINITY,
  minusInfinity: Number.NEGATIVE_INFINITY,
  yes: true,
  no: false,
  empty: "",
  text: "héllo wörld, 日本語, emoji 🌍🚀, zero\u0000byte",
  bytes: Uint8Array.from({ length: 256 }, (_, i) => i),
  noBytes: new Uint8Array(0),
  nothing: null,
  list: [1, -1, 2.5, "two", null, true, [[], {}], new Uint8Array([9, 8, 7])],
  emptyList: [],
  object: { a: { b: { c: { d: [{ e: "deep" }] } } } },
  emptyObject: {},
  "key with spaces and ünïcode 🔑": "value",
};

describe("value codec", () => {
  it("round-trips a nested value of every kind", () => {
    const decoded = roundTrip(NESTED) as typeof NESTED;
    expect(decoded).toEqual(NESTED);
    expect(decoded.bytes).toBeInstanceOf(Uint8Array);
    expect(Object.is(decoded.seqPlusOne, 1_700_000_000_000_001)).toBe(true);
    expect(decoded.text).toBe(NESTED.text);
  });

  it("round-trips top-level scalars", () => {
    for (const v of [null, true, false, 0, -1, 7, 1.5, 1.7e15, -1.7e15, "", "x", "🌍"]) {
      expect(roundTrip(v)).toEqual(v);
    }
    expect(Number.isNaN(roundTrip(Number.NaN))).toBe(true);
  });

  it("leaves out object properties that are undefined (and keeps null ones)", () => {
    const decoded = roundTrip({ a: 1, gone: undefined, kept: null, inner: { x: undefined } });
    expect(decoded).toStrictEqual({ a: 1, kept: null, inner: {} });
    expect(Object.hasOwn(decoded as object, "gone")).toBe(false);
  });

  it("stores undefined array items (and undefined itself) as null", () => {
    expect(roundTrip([1, undefined, 2])).toStrictEqual([1, null, 2]);
    expect(roundTrip(undefined)).toBeNull();
  });

  it("returns a copy of bytes, not a view of the encoded buffer", () => {
    const encoded = encodeValue({ b: new Uint8Array([1, 2, 3]) });
    const decoded = decodeValue(encoded) as { b: Uint8Array };
    encoded.fill(0);
    expect([...decoded.b]).toEqual([1, 2, 3]);
  });

  it("round-trips a large value (1 MiB of bytes, 10,000 items)", () => {
    const big = {
      payload: Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 31) & 0xff),
      items: Array.from({ length: 10_000 }, (_, i) => ({ seq: 1.7e15 + i, topic: `t/${i}` })),
    };
    const decoded = roundTrip(big) as typeof big;
    // Compared as one Buffer: toEqual goes element by element, which takes seconds for 1 MiB.
    expect(Buffer.from(decoded.payload).equals(Buffer.from(big.payload))).toBe(true);
    expect(decoded.items).toEqual(big.items);
  });

  it("refuses what it cannot store (a function, a symbol, a bigint)", () => {
    expect(() => encodeValue(() => 1)).toThrow(TypeError);
    expect(() => encodeValue(Symbol("s"))).toThrow(TypeError);
    expect(() => encodeValue(1n)).toThrow(TypeError);
  });

  it("throws DecodeError on every truncation of a valid encoding", () => {
    const encoded = encodeValue(NESTED);
    for (let n = 0; n < encoded.length; n++) {
      expect(() => decodeValue(encoded.subarray(0, n)), `cut at ${n}`).toThrow(DecodeError);
    }
  });

  it("throws DecodeError on bytes after the value", () => {
    const encoded = encodeValue([1, 2]);
    expect(() => decodeValue(Buffer.concat([encoded, Buffer.from([0])]))).toThrow(DecodeError);
  });

  it("throws DecodeError on garbage: unknown tags, text, lengths past the end", () => {
    const cases = [
      Buffer.alloc(0),
      Buffer.from([9]),
      Buffer.from([255, 0, 0, 0]),
      Buffer.from("this is not an encoded value"),
      Buffer.from([STRING, 0xff, 0xff, 0xff, 0xff, 0x61]),
      Buffer.from([BYTES, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([ARRAY, 0xff, 0xff, 0xff, 0xff, 0]),
      Buffer.from([OBJECT, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([OBJECT, 1, 0, 0, 0, 0xff, 0, 0, 0]),
    ];
    for (const bytes of cases) {
      expect(() => decodeValue(bytes), bytes.toString("hex")).toThrow(DecodeError);
    }
  });

  it("throws DecodeError, not a stack overflow, on deeply nested arrays", () => {
    const depth = 100_000;
    const bytes = Buffer.alloc(depth * 5 + 1);
    for (let i = 0; i < depth; i++) {
      bytes[i * 5] = ARRAY;
      bytes.writeUInt32LE(1, i * 5 + 1);
    }
    expect(() => decodeValue(bytes)).toThrow(DecodeError);
  });

  it("fuzz: 2,000 random byte strings decode or throw DecodeError, quickly", () => {
    const rand = random(0xdecade);
    const started = Date.now();
    let decoded = 0;
    for (let i = 0; i < 2000; i++) {
      const length = Math.floor(rand() * 64);
      const bytes = Buffer.alloc(length);
      for (let j = 0; j < length; j++) {
        // Half the bytes are small (valid tags, short lengths), to get past the first byte.
        bytes[j] = rand() < 0.5 ? Math.floor(rand() * 10) : Math.floor(rand() * 256);
      }
      if (decodeOrError(bytes).ok) decoded++;
    }
    expect(decoded).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("fuzz: random truncations and byte changes of valid encodings decode or throw DecodeError", () => {
    const rand = random(0xc0ffee);
    const values: unknown[] = [
      NESTED,
      { clientId: "c1", deliveries: [{ seq: 1.7e15, payload: new Uint8Array(40) }] },
      [{ op: "retain", message: { topic: "a/b", payload: new Uint8Array([1, 2]) } }],
    ];
    const started = Date.now();
    for (let i = 0; i < 2000; i++) {
      const encoded = encodeValue(values[i % values.length]);
      const cut = Math.floor(rand() * encoded.length);
      expect(decodeOrError(Buffer.from(encoded.subarray(0, cut))).ok).toBe(false);
      const changed = Buffer.from(encoded);
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) {
        changed[Math.floor(rand() * changed.length)] = Math.floor(rand() * 256);
      }
      decodeOrError(changed);
    }
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
