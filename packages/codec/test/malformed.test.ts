import { describe, expect, it } from "vitest";
import { Decoder, decodePacket, encode, MqttError, type Packet } from "../src/index.js";
import {
  ACCEPTED,
  ENCODER_REFUSED,
  type ErrorClass,
  REFUSED,
  type RefusedRow,
} from "./malformed-cases.js";

function hex(text: string): Uint8Array {
  const parts = text.trim().split(/\s+/);
  for (const p of parts) if (!/^[0-9A-Fa-f]{2}$/.test(p)) throw new Error(`bad hex byte ${p}`);
  return Uint8Array.from(parts, (p) => Number.parseInt(p, 16));
}

/** Uint8Arrays (views or Buffers) as plain arrays, so packets compare by content. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value];
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

interface Expected {
  error: ErrorClass;
  code: string;
  reasonCode: number | undefined;
  fields?: Record<string, unknown>;
}

function expectMqttError(fn: () => unknown, row: Expected): void {
  expect(fn).toThrowError(
    expect.objectContaining({ code: row.code, reasonCode: row.reasonCode, ...row.fields }),
  );
  const err = caught(fn);
  expect(err).toBeInstanceOf(row.error);
  expect(err).toBeInstanceOf(MqttError);
  expect(MqttError.is(err)).toBe(true);
}

/** Pushes `bytes` one at a time, the hardest split for the decoder. */
function pushBytewise(bytes: Uint8Array, version: RefusedRow["version"]): Packet[] {
  const packets: Packet[] = [];
  const decoder = new Decoder((p) => packets.push(p), { protocolVersion: version });
  for (let i = 0; i < bytes.length; i++) decoder.push(bytes.subarray(i, i + 1));
  return packets;
}

/** Header length and remaining length, or null when the header is not a valid 1-4 byte one. */
function frame(bytes: Uint8Array): { header: number; rl: number } | null {
  let rl = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4 && i < bytes.length; i++) {
    const b = bytes[i]!;
    rl += (b & 0x7f) * multiplier;
    if (b < 0x80) return { header: i + 1, rl };
    multiplier *= 128;
  }
  return null;
}

const label = (row: { name: string; version: number }): string => `${row.name} (v${row.version})`;

describe("malformed-cases table", () => {
  it("has hand-written rows that are single, well-framed packets unless marked whole", () => {
    for (const row of [...REFUSED, ...ACCEPTED]) {
      const bytes = hex(row.hex);
      const f = frame(bytes);
      if ("whole" in row && row.whole) continue;
      if (f === null) continue; // a remaining length of 5 bytes, on purpose
      expect(bytes.length, label(row)).toBe(f.header + f.rl);
    }
  });

  it("has no two rows with the same name and version", () => {
    const names = [...REFUSED, ...ACCEPTED].map(label);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe("decoder refuses malformed and forbidden packets", () => {
  it.each(REFUSED.map((row) => [label(row), row] as const))("%s", (_, row) => {
    const bytes = hex(row.hex);
    expectMqttError(() => decodePacket(bytes, { protocolVersion: row.version }), row);
    if (row.whole) return;
    // The same verdict when the frame straddles pushes (the body is then gathered in a copy).
    const delivered: Packet[] = [];
    expectMqttError(() => delivered.push(...pushBytewise(bytes, row.version)), row);
    expect(delivered).toEqual([]);
  });
});

describe("decoder accepts what the rules allow", () => {
  it.each(ACCEPTED.map((row) => [label(row), row] as const))("%s", (_, row) => {
    const bytes = hex(row.hex);
    const packet = decodePacket(bytes, { protocolVersion: row.version });
    const present = Object.entries(row.packet).filter(([, v]) => v !== undefined);
    expect(plain(packet)).toMatchObject(Object.fromEntries(present));
    // A field expected as undefined must be absent, not merely undefined.
    for (const [k, v] of Object.entries(row.packet)) {
      if (v === undefined) expect(packet).not.toHaveProperty(k);
    }
    expect(plain(pushBytewise(bytes, row.version))).toEqual([plain(packet)]);
  });
});

describe("encoder refuses packets that cannot go on the wire", () => {
  it.each(ENCODER_REFUSED.map((row) => [row.name, row] as const))("%s", (_, row) => {
    const packet = row.packet();
    expectMqttError(() => encode(packet, row.options), row);
  });
});
