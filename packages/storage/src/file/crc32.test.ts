import { describe, expect, it } from "vitest";
import { crc32 } from "./crc32.js";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("crc32", () => {
  it("gives the check value of CRC-32/IEEE for '123456789'", () => {
    expect(crc32(ascii("123456789"))).toBe(0xcbf43926);
  });

  it("gives 0 for no bytes", () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it("matches zlib's crc32 on other known vectors", () => {
    expect(crc32(ascii("a"))).toBe(0xe8b7be43);
    expect(crc32(ascii("The quick brown fox jumps over the lazy dog"))).toBe(0x414fa339);
    expect(crc32(Uint8Array.from({ length: 256 }, (_, i) => i))).toBe(0x29058c73);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
    expect(crc32(new Uint8Array(32).fill(0xff))).toBe(0xff6cab0b);
  });

  it("returns an unsigned 32-bit number, the same for a Buffer and a Uint8Array", () => {
    const data = ascii("123456789");
    const value = crc32(Buffer.from(data));
    expect(value).toBe(crc32(data));
    expect(value).toBeGreaterThan(0x7fffffff);
    expect(Number.isInteger(value)).toBe(true);
  });

  it("changes when any single bit changes", () => {
    const data = ascii("MQR1 record payload");
    const base = crc32(data);
    for (let i = 0; i < data.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Uint8Array.from(data);
        copy[i]! ^= 1 << bit;
        expect(crc32(copy)).not.toBe(base);
      }
    }
  });
});
