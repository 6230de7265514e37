import { describe, expect, it } from "vitest";
import { MqttError } from "./errors.js";
import { decodeRemainingLength, encodeRemainingLength } from "./varint.js";

// MyQtt regression test_00_a: remaining length vectors.
const VECTORS: [number, number[]][] = [
  [89, [0x59]],
  [127, [0x7f]],
  [128, [0x80, 0x01]],
  [139, [0x8b, 0x01]],
  [16217, [0xd9, 0x7e]],
  [16383, [0xff, 0x7f]],
  [127364, [0x84, 0xe3, 0x07]],
  [2097151, [0xff, 0xff, 0x7f]],
  [5678945, [0xe1, 0xce, 0xda, 0x02]],
  [268435455, [0xff, 0xff, 0xff, 0x7f]],
];

describe("remaining length (MyQtt test_00_a)", () => {
  it.each(VECTORS)("encodes %i to the expected bytes and back", (value, bytes) => {
    expect([...encodeRemainingLength(value)]).toEqual(bytes);
    expect(decodeRemainingLength(Uint8Array.from(bytes))).toEqual({ value, length: bytes.length });
  });

  it("refuses to encode 1268435455, which needs a fifth byte", () => {
    expect(() => encodeRemainingLength(1268435455)).toThrow(MqttError);
    expect(() => encodeRemainingLength(-1)).toThrow(MqttError);
    expect(() => encodeRemainingLength(1.5)).toThrow(MqttError);
  });

  it("refuses to decode a fifth length byte", () => {
    const bytes = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(() => decodeRemainingLength(bytes)).toThrowError(
      expect.objectContaining({ code: "REMAINING_LENGTH_TOO_LONG", reasonCode: 0x81 }),
    );
  });

  it("asks for more bytes when the length is cut short", () => {
    expect(decodeRemainingLength(Uint8Array.from([0x80, 0x80]))).toBeNull();
    expect(decodeRemainingLength(new Uint8Array(0))).toBeNull();
    expect(decodeRemainingLength(Uint8Array.from([0, 0x80, 0x01]), 1)).toEqual({
      value: 128,
      length: 2,
    });
  });
});
