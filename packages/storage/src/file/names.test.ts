import { describe, expect, it } from "vitest";
import { bucketOf, clientFileName } from "./names.js";

// What a name may hold: lower-case letters, digits, "_", "-", "%XX" escapes (upper-case hex, so
// that no escape can be confused with kept lower-case letters on a case-insensitive file
// system), and "~" before the digest of a shortened name.
const NAME_CHARS = /^[a-z0-9_%~A-F-]*$/;

/** The name with its escapes and digest taken out: what is left is plain kept characters. */
function stripEscapes(name: string): string {
  return name.replace(/%[0-9A-F]{2}/g, "").replace(/~[0-9a-f]{64}$/, "");
}

describe("clientFileName", () => {
  it("turns '../x' into a name with no '/' and no '..' that could leave the directory", () => {
    const name = clientFileName("../x");
    expect(name).toBe("%2E%2E%2Fx");
    expect(name).not.toContain("/");
    expect(name).not.toContain("\\");
    expect(name).not.toContain("..");
  });

  it("makes '.' and '..' (and other path tricks) safe names", () => {
    for (const id of [".", "..", "/", "./..", "../../etc/passwd", "a/../../b", "\\..\\x", "\0"]) {
      const name = clientFileName(id);
      expect(name.length).toBeGreaterThan(0);
      expect(name).not.toContain("/");
      expect(name).not.toContain("\\");
      expect(name).not.toContain("\0");
      expect(name).not.toContain(".");
      expect(name === "." || name === "..").toBe(false);
    }
    expect(clientFileName(".")).toBe("%2E");
    expect(clientFileName("..")).toBe("%2E%2E");
  });

  it("keeps lower-case letters, digits, '_' and '-'", () => {
    expect(clientFileName("client_1-abc")).toBe("client_1-abc");
  });

  it("gives 'A' and 'a' different names, also when compared without case", () => {
    expect(clientFileName("A")).not.toBe(clientFileName("a"));
    expect(clientFileName("A").toLowerCase()).not.toBe(clientFileName("a").toLowerCase());
    expect(clientFileName("Client").toLowerCase()).not.toBe(clientFileName("client").toLowerCase());
    expect(clientFileName("%41")).not.toBe(clientFileName("A"));
  });

  it("keeps names within 180 characters, and long ids differing only at the end apart", () => {
    const base = "x".repeat(1999);
    const a = clientFileName(`${base}a`);
    const b = clientFileName(`${base}b`);
    expect(a.length).toBeLessThanOrEqual(180);
    expect(b.length).toBeLessThanOrEqual(180);
    expect(a).not.toBe(b);
    expect(a).toMatch(NAME_CHARS);
    // Escaped ids grow three times: a 2000-character id of '/' is cut too.
    const slashes = clientFileName("/".repeat(2000));
    expect(slashes.length).toBeLessThanOrEqual(180);
    expect(slashes).not.toBe(clientFileName(`${"/".repeat(1999)}.`));
    // Right at the limit: 180 kept characters stay as they are, 181 are cut.
    expect(clientFileName("y".repeat(180))).toBe("y".repeat(180));
    expect(clientFileName("y".repeat(181)).length).toBe(180);
    expect(clientFileName("y".repeat(181))).not.toBe(clientFileName("y".repeat(182)));
  });

  it("uses only [a-z0-9_%~-] and the upper-case hex digits of escapes", () => {
    const ids = [
      "Hello World",
      "ünïcödé-日本語-🌍",
      "tab\there",
      "%%%",
      "~tilde~",
      "UPPER",
      "x".repeat(3000),
      "Ü".repeat(500),
      String.fromCharCode(...Array.from({ length: 128 }, (_, i) => i)),
    ];
    for (const id of ids) {
      const name = clientFileName(id);
      expect(name).toMatch(NAME_CHARS);
      // Upper-case letters only ever appear inside %XX escapes (the last one may be cut short
      // where a long name is cut before its '~' and digest).
      expect(stripEscapes(name)).toMatch(/^[a-z0-9_-]*(?:%[0-9A-F]?)?$/);
      if (name.length < 180) expect(stripEscapes(name)).toMatch(/^[a-z0-9_-]*$/);
    }
  });

  it("is a different name for every id of a varied set", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 256; i++) ids.add(String.fromCharCode(i));
    for (const s of ["a", "A", "%41", "%", "~", "-", "_", ".", "..", "a/b", "a%2Fb"]) ids.add(s);
    const names = new Set([...ids].map((id) => clientFileName(id).toLowerCase()));
    expect(names.size).toBe(ids.size);
  });
});

describe("bucketOf", () => {
  it("is MyQtt's axl_hash_string (signed chars) modulo the hash size", () => {
    // Reference values from the C function, compiled with signed chars.
    expect(bucketOf("a", 4096)).toBe(97);
    expect(bucketOf("ab", 4096)).toBe(1650);
    expect(bucketOf("client-1", 1 << 30)).toBe(50090401);
    expect(bucketOf("myqtt/test", 1 << 30)).toBe(192019492);
    expect(bucketOf("sensor-00042", 4096)).toBe(2322);
    expect(bucketOf("héllo wörld 🌍", 1 << 30)).toBe(85096845);
    expect(bucketOf("héllo wörld 🌍", 64)).toBe(13);
    expect(
      bucketOf(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/bbbbbbbbbbbbbbbbbbbbb/ccccccccccccc",
        4096,
      ),
    ).toBe(3267);
  });

  it("is stable: the same key gives the same bucket every time", () => {
    for (const key of ["", "a", "client-1", "ünï", "x".repeat(2000)]) {
      const first = bucketOf(key, 4096);
      for (let i = 0; i < 5; i++) expect(bucketOf(key, 4096)).toBe(first);
    }
  });

  it("stays in 0..hashSize-1 for every hash size", () => {
    for (const size of [1, 2, 7, 64, 4096, 1_000_000]) {
      for (let i = 0; i < 500; i++) {
        const b = bucketOf(`key-${i}-${"é".repeat(i % 13)}`, size);
        expect(Number.isInteger(b)).toBe(true);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThan(size);
      }
    }
  });

  it("spreads 10,000 ids over 4096 buckets with no bucket holding more than 20", () => {
    // Sequential ids, and pseudo-random alphanumeric ids from a fixed seed.
    const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    let seed = 12345;
    const next = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    const sets: [string, (i: number) => string][] = [
      ["client-<n>", (i) => `client-${i}`],
      ["random 12 chars", () => Array.from({ length: 12 }, () => alphabet[next() % 36]).join("")],
    ];
    for (const [, make] of sets) {
      const counts = new Array<number>(4096).fill(0);
      for (let i = 0; i < 10_000; i++) counts[bucketOf(make(i), 4096)]!++;
      expect(Math.max(...counts)).toBeLessThanOrEqual(20);
      // At least a fifth of the buckets are used (10,000 ids cannot fill them all).
      expect(counts.filter((c) => c > 0).length).toBeGreaterThan(4096 / 5);
    }
  });
});
