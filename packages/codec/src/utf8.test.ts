import { describe, expect, it } from "vitest";
import { InvalidPacketError, MalformedPacketError } from "./errors.js";
import {
  decodeUtf8,
  encodeUtf8,
  isValidUtf8,
  readUtf8,
  utf8Length,
  validateUtf8,
  writeUtf8,
} from "./utf8.js";

const bytes = (...b: number[]) => Uint8Array.from(b);
const utf8 = (s: string) => Uint8Array.from(Buffer.from(s, "utf8"));

// MyQtt regression test_00_b: the strings its validator accepts...
const ACCEPTED = [
  "aspl",
  "Camión",
  "Здраво",
  "Hæ það",
  "Esto es una prueba para detectar que todo es correcto!",
  "The quick brown fox jumps over the lazy dog. ".repeat(40),
  "κόσμε",
  "\u{10FFFF}",
  "\u{1F600} emoji",
  "\uFEFFleading BOM kept [MQTT-1.5.4-3]",
  "\uFFFE\uFFFF", // noncharacters are allowed, as in MyQtt (only "SHOULD NOT")
  "tab\tnew\nline\r",
];

// ...and the byte sequences of Markus Kuhn's UTF-8 stress test that it rejects.
const REJECTED: [string, Uint8Array][] = [
  ["a lone continuation byte", bytes(0x80)],
  ["continuation bytes 80 BF", bytes(0x80, 0xbf)],
  ["all continuation bytes", Uint8Array.from({ length: 64 }, (_, i) => 0x80 + i)],
  ["a lone 2-byte start followed by space", bytes(0xc0, 0x20)],
  ["a lone 3-byte start", bytes(0xe0, 0x20)],
  ["a lone 4-byte start", bytes(0xf0, 0x20)],
  ["5-byte start F8", bytes(0xf8, 0x88, 0x80, 0x80, 0x80)],
  ["6-byte start FC", bytes(0xfc, 0x84, 0x80, 0x80, 0x80, 0x80)],
  ["2-byte sequence missing its last byte", bytes(0xdf)],
  ["3-byte sequence missing its last byte", bytes(0xef, 0xbf)],
  ["4-byte sequence missing its last byte", bytes(0xf7, 0xbf, 0xbf)],
  ["impossible byte FE", bytes(0xfe)],
  ["impossible byte FF", bytes(0xff)],
  ["impossible bytes FE FE FF FF", bytes(0xfe, 0xfe, 0xff, 0xff)],
  ["overlong '/' in 2 bytes", bytes(0xc0, 0xaf)],
  ["overlong '/' in 3 bytes", bytes(0xe0, 0x80, 0xaf)],
  ["overlong '/' in 4 bytes", bytes(0xf0, 0x80, 0x80, 0xaf)],
  ["largest overlong 2-byte", bytes(0xc1, 0xbf)],
  ["largest overlong 3-byte", bytes(0xe0, 0x9f, 0xbf)],
  ["largest overlong 4-byte", bytes(0xf0, 0x8f, 0xbf, 0xbf)],
  ["overlong NUL in 2 bytes", bytes(0xc0, 0x80)],
  ["overlong NUL in 3 bytes", bytes(0xe0, 0x80, 0x80)],
  ["high surrogate U+D800", bytes(0xed, 0xa0, 0x80)],
  ["high surrogate U+DB7F", bytes(0xed, 0xad, 0xbf)],
  ["low surrogate U+DC00", bytes(0xed, 0xb0, 0x80)],
  ["low surrogate U+DFFF", bytes(0xed, 0xbf, 0xbf)],
  ["surrogate pair U+D800 U+DC00", bytes(0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80)],
  ["above U+10FFFF", bytes(0xf4, 0x90, 0x80, 0x80)],
  ["F5 lead byte", bytes(0xf5, 0x80, 0x80, 0x80)],
  ["valid text then a stray byte", Uint8Array.from([...utf8("Camión"), 0x80])],
];

describe("UTF-8 validation (MyQtt test_00_b)", () => {
  it.each(ACCEPTED)("accepts %j", (text) => {
    const b = utf8(text);
    expect(isValidUtf8(b)).toBe(true);
    expect(readUtf8(b, 0, b.length)).toBe(text);
    expect(readUtf8(Buffer.from(b), 0, b.length)).toBe(text);
  });

  it.each(REJECTED)("rejects %s", (_, b) => {
    expect(isValidUtf8(b)).toBe(false);
    expect(() => validateUtf8(b)).toThrowError(
      expect.objectContaining({ code: "INVALID_UTF8", reasonCode: 0x81 }),
    );
    expect(() => readUtf8(b, 0, b.length)).toThrow(MalformedPacketError);
    expect(() => readUtf8(Buffer.from(b), 0, b.length)).toThrow(MalformedPacketError);
  });

  it("rejects U+0000 in ASCII and in non-ASCII text [MQTT-1.5.4-2]", () => {
    for (const b of [bytes(0x61, 0x00, 0x62), Uint8Array.from([...utf8("é"), 0])]) {
      expect(() => readUtf8(b, 0, b.length)).toThrowError(
        expect.objectContaining({ code: "NULL_CHARACTER" }),
      );
    }
  });

  it("checks only the given range", () => {
    const b = Uint8Array.from([0xff, ...utf8("ok"), 0xff]);
    expect(readUtf8(b, 1, 3)).toBe("ok");
  });
});

describe("UTF-8 encoding", () => {
  it.each(ACCEPTED)("measures and writes %j as Buffer does", (text) => {
    const len = utf8Length(text);
    expect(len).toBe(Buffer.byteLength(text, "utf8"));
    for (const out of [new Uint8Array(len), Buffer.alloc(len)]) {
      expect(writeUtf8(out, 0, text, len)).toBe(len);
      expect(Buffer.from(out).toString("utf8")).toBe(text);
    }
    expect(decodeUtf8(encodeUtf8(text))).toBe(text);
  });

  it("refuses, as the caller's mistake, a lone surrogate and U+0000 in a string to encode", () => {
    for (const bad of ["a\uD800b", "a\uDC00", "x\u0000"]) {
      expect(() => utf8Length(bad)).toThrow(InvalidPacketError);
      expect(() => utf8Length(bad)).toThrowError(
        expect.objectContaining({ code: "INVALID_PACKET", reasonCode: undefined }),
      );
    }
  });

  it("decodes payload text leniently", () => {
    expect(decodeUtf8(bytes(0x61, 0xff, 0x62))).toBe("a\uFFFDb");
  });
});
