import { MAX_REMAINING_LENGTH } from "./constants.js";
import { InvalidPacketError, MalformedPacketError } from "./errors.js";

/** How many bytes the variable byte integer `value` takes (1 to 4). */
export function varintSize(value: number): number {
  if (value < 128) return 1;
  if (value < 16_384) return 2;
  if (value < 2_097_152) return 3;
  return 4;
}

/** Writes `value` (known to be in range) as a variable byte integer; returns the new offset. */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  while (value >= 128) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[pos++] = value;
  return pos;
}

/**
 * Encodes a remaining length (v5 1.5.5, 3.1.1 2.2.3). Throws for values above 268,435,455,
 * which need a fifth byte.
 */
export function encodeRemainingLength(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > MAX_REMAINING_LENGTH) {
    throw new InvalidPacketError(
      `remaining length ${value} is outside 0..${MAX_REMAINING_LENGTH} [MQTT-1.5.5]`,
    );
  }
  const out = new Uint8Array(varintSize(value));
  writeVarint(out, 0, value);
  return out;
}

/** A decoded variable byte integer and the number of bytes it used. */
export interface DecodedVarint {
  value: number;
  length: number;
}

/**
 * Decodes a remaining length at `offset`. Returns null when more bytes are needed; throws
 * a MalformedPacketError when a fifth byte would be needed.
 */
export function decodeRemainingLength(buf: Uint8Array, offset = 0): DecodedVarint | null {
  let value = 0;
  let multiplier = 1;
  for (let i = 0; i < 4; i++) {
    if (offset + i >= buf.length) return null;
    const byte = buf[offset + i]!;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return { value, length: i + 1 };
    multiplier *= 128;
  }
  throw new MalformedPacketError(
    "REMAINING_LENGTH_TOO_LONG",
    "variable byte integer longer than 4 bytes [MQTT-1.5.5]",
  );
}
