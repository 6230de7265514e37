import { describe, expect, it } from "vitest";
import {
  type AuthProperties,
  type ConnackProperties,
  type ConnectProperties,
  Decoder,
  type DisconnectProperties,
  decodePacket,
  encode,
  encodedLength,
  type Packet,
  PacketType,
  PacketWriter,
  type ProtocolVersion,
  type PublishProperties,
  type WillProperties,
} from "../src/index.js";
import { alternates } from "./fixtures/alternate.js";
import type { Fixture } from "./fixtures/types.js";
import { v3 } from "./fixtures/v3.js";
import { v5 } from "./fixtures/v5.js";
import { v311 } from "./fixtures/v311.js";

// Hand-written wire fixtures, each checked four ways as mqtt-packet's suite does: decode,
// encode, round trip, and decode from every split of the bytes.

function fromHex(hex: string): Uint8Array {
  const digits = hex.replace(/\s+/g, "");
  if (!/^(?:[0-9a-f]{2})*$/i.test(digits)) throw new Error(`not hex: ${hex}`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Hex with spaces, so a failed comparison points at the byte. */
function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Bytes compared as hex: vitest compares big typed arrays element by element, slowly. */
class Bytes {
  constructor(readonly hex: string) {}
}

/**
 * A deep copy where every byte view (a Buffer, a subarray, a Uint8Array) becomes Bytes, so
 * toStrictEqual compares bytes and keys (an `undefined` key still fails) but not view classes.
 */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Bytes(toHex(value));
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

/**
 * Where to split a frame in two: everywhere in a short frame; in a long one, everywhere in
 * its first and last 300 bytes (headers, fields, the gather buffer growing) and every 97th
 * byte between, where each split takes the same path.
 */
function splitPoints(length: number): number[] {
  const points: number[] = [];
  for (let i = 1; i < length; i++) {
    if (i <= 300 || i >= length - 300 || i % 97 === 0) points.push(i);
  }
  return points;
}

// A Buffer takes Node's native string slicing (latin1Slice/utf8Slice), a plain Uint8Array the
// portable path; both copies are fresh so no test sees another's bytes.
const INPUTS: ReadonlyArray<readonly [string, (bytes: Uint8Array) => Uint8Array]> = [
  ["Buffer", (bytes) => Buffer.from(bytes)],
  ["Uint8Array", (bytes) => new Uint8Array(bytes)],
];

/** Decodes the chunks with one Decoder; `protocolVersion` undefined leaves the default (4). */
function decodeChunks(
  chunks: Uint8Array[],
  protocolVersion: ProtocolVersion | undefined,
): unknown[] {
  const packets: Packet[] = [];
  const options = protocolVersion === undefined ? {} : { protocolVersion };
  const decoder = new Decoder((p) => packets.push(p), options);
  for (const chunk of chunks) decoder.push(chunk);
  expect(decoder.bufferedBytes).toBe(0);
  return packets.map(plain);
}

/** Deterministic PRNG (mulberry32), so a failing chunking can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomChunks(bytes: Uint8Array, rand: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    // Mostly small cuts (headers and fields straddle), now and then a large one (whole frames).
    const n = rand() < 0.2 ? 1 + Math.floor(rand() * 300) : 1 + Math.floor(rand() * 12);
    chunks.push(bytes.subarray(off, off + n));
    off += n;
  }
  return chunks;
}

function rowTests(row: Fixture): void {
  const v = row.protocolVersion;
  const wire = fromHex(row.hex);
  const expected = plain(row.packet);

  for (const [kind, make] of INPUTS) {
    it(`decodes from a ${kind}`, () => {
      const input = make(wire);
      expect("utf8Slice" in input).toBe(kind === "Buffer");
      expect(plain(decodePacket(input, { protocolVersion: v }))).toStrictEqual(expected);
    });

    it(`decodes from a ${kind} split at every point and byte by byte`, () => {
      const input = make(wire);
      for (const i of splitPoints(input.length)) {
        const halves = [input.subarray(0, i), input.subarray(i)];
        expect(decodeChunks(halves, v), `split at ${i}`).toStrictEqual([expected]);
      }
      const single = Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
      expect(decodeChunks(single, v)).toStrictEqual([expected]);
    });
  }

  it("encodes to the bytes", () => {
    // The decoded form must encode to the same bytes as the minimal encoder input.
    const sources = row.encodeFrom ? [row.encodeFrom, row.packet] : [row.packet];
    for (const source of sources) {
      expect(toHex(encode(source, { protocolVersion: v }))).toBe(toHex(wire));
      expect(encodedLength(source, { protocolVersion: v })).toBe(wire.length);
    }
  });

  it("round-trips encode then decode", () => {
    const bytes = encode(row.encodeFrom ?? row.packet, { protocolVersion: v });
    expect(plain(decodePacket(bytes, { protocolVersion: v }))).toStrictEqual(expected);
  });
}

const VERSIONS: ReadonlyArray<readonly [string, ProtocolVersion, Fixture[], number]> = [
  ["MQTT 3.1", 3, v3, 0x31],
  ["MQTT 3.1.1", 4, v311, 0x311],
  ["MQTT 5.0", 5, v5, 0x50],
];

for (const [label, version, rows, seed] of VERSIONS) {
  describe(`${label} fixtures`, () => {
    it("are consistent: one version, unique names, every packet type", () => {
      expect(rows.every((r) => r.protocolVersion === version)).toBe(true);
      expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
      const types = new Set(rows.map((r) => r.packet.type));
      const last = version === 5 ? PacketType.AUTH : PacketType.DISCONNECT;
      for (let t = PacketType.CONNECT; t <= last; t++)
        expect(types.has(t as never), `${t}`).toBe(true);
    });

    for (const row of rows) describe(row.name, () => rowTests(row));

    const all = concat(rows.map((r) => fromHex(r.hex)));
    const expected = rows.map((r) => plain(r.packet));

    it("decode in order as one stream cut into random chunks", () => {
      const rand = prng(seed);
      for (const [kind, make] of INPUTS) {
        for (let round = 0; round < 25; round++) {
          const chunks = randomChunks(make(all), rand);
          expect(decodeChunks(chunks, version), `${kind} round ${round}`).toStrictEqual(expected);
        }
      }
    });

    it("decode in order as one stream in a single chunk", () => {
      for (const [, make] of INPUTS)
        expect(decodeChunks([make(all)], version)).toStrictEqual(expected);
    });

    it("decode in a server Decoder told no version: the leading CONNECT sets it", () => {
      expect(rows[0]?.packet.type).toBe(PacketType.CONNECT);
      const chunks = randomChunks(Buffer.from(all), prng(seed + 1));
      expect(decodeChunks(chunks, undefined)).toStrictEqual(expected);
    });

    it("written through one PacketWriter flush to the concatenated bytes", () => {
      for (const chunkSize of [16, 65_536]) {
        const writer = new PacketWriter({ protocolVersion: version, chunkSize });
        const sizes = rows.map((r) => writer.write(r.encodeFrom ?? r.packet));
        expect(writer.length).toBe(sizes.reduce((a, b) => a + b, 0));
        const out = writer.flush();
        // Row by row first (by the sizes write returned), so a failure names the row.
        let off = 0;
        const got = rows.map((r, i) => {
          const start = off;
          off += sizes[i]!;
          return `${r.name}: ${toHex(out.subarray(start, off))}`;
        });
        expect(got).toStrictEqual(rows.map((r) => `${r.name}: ${toHex(fromHex(r.hex))}`));
        expect(toHex(out)).toBe(toHex(all));
        expect(writer.length).toBe(0);
        expect(writer.flush().length).toBe(0);
      }
    });

    it("flushed in two batches keep the first view intact", () => {
      const writer = new PacketWriter({ protocolVersion: version, chunkSize: 256 });
      const half = rows.length >> 1;
      for (const r of rows.slice(0, half)) writer.write(r.encodeFrom ?? r.packet);
      const first = writer.flush();
      const firstHex = toHex(first);
      for (const r of rows.slice(half)) writer.write(r.encodeFrom ?? r.packet);
      const second = writer.flush();
      expect(toHex(first)).toBe(firstHex);
      // Against encode() rather than the fixtures: this checks batching, not the bytes.
      const one = (r: Fixture) => encode(r.encodeFrom ?? r.packet, { protocolVersion: version });
      expect(toHex(concat([first, second]))).toBe(toHex(concat(rows.map(one))));
    });
  });
}

describe("alternate wire forms (decode only)", () => {
  for (const row of alternates) {
    describe(row.name, () => {
      const v = row.protocolVersion;
      const wire = fromHex(row.hex);
      const expected = plain(row.packet);

      for (const [kind, make] of INPUTS) {
        it(`decodes from a ${kind}, whole and at every split`, () => {
          const input = make(wire);
          expect(plain(decodePacket(input, { protocolVersion: v }))).toStrictEqual(expected);
          for (let i = 1; i < input.length; i++) {
            const halves = [input.subarray(0, i), input.subarray(i)];
            expect(decodeChunks(halves, v), `split at ${i}`).toStrictEqual([expected]);
          }
        });
      }

      const canonical = row.canonicalHex;
      if (canonical !== undefined) {
        it("encodes to the canonical form", () => {
          expect(toHex(encode(row.packet, { protocolVersion: v }))).toBe(toHex(fromHex(canonical)));
        });
      }
    });
  }
});

// Every property of these blocks appears in at least one v5 row. The key lists are checked
// against the packet types by `satisfies`, so a new property makes this fail to compile.
const CONNACK_KEYS = {
  sessionExpiryInterval: 1,
  receiveMaximum: 1,
  maximumQoS: 1,
  retainAvailable: 1,
  maximumPacketSize: 1,
  assignedClientIdentifier: 1,
  topicAliasMaximum: 1,
  reasonString: 1,
  userProperties: 1,
  wildcardSubscriptionAvailable: 1,
  subscriptionIdentifierAvailable: 1,
  sharedSubscriptionAvailable: 1,
  serverKeepAlive: 1,
  responseInformation: 1,
  serverReference: 1,
  authenticationMethod: 1,
  authenticationData: 1,
} satisfies Record<keyof ConnackProperties, 1>;
const CONNECT_KEYS = {
  sessionExpiryInterval: 1,
  receiveMaximum: 1,
  maximumPacketSize: 1,
  topicAliasMaximum: 1,
  requestResponseInformation: 1,
  requestProblemInformation: 1,
  userProperties: 1,
  authenticationMethod: 1,
  authenticationData: 1,
} satisfies Record<keyof ConnectProperties, 1>;
const WILL_KEYS = {
  willDelayInterval: 1,
  payloadFormatIndicator: 1,
  messageExpiryInterval: 1,
  contentType: 1,
  responseTopic: 1,
  correlationData: 1,
  userProperties: 1,
} satisfies Record<keyof WillProperties, 1>;
const PUBLISH_KEYS = {
  payloadFormatIndicator: 1,
  messageExpiryInterval: 1,
  topicAlias: 1,
  responseTopic: 1,
  correlationData: 1,
  userProperties: 1,
  subscriptionIdentifiers: 1,
  contentType: 1,
} satisfies Record<keyof PublishProperties, 1>;
const DISCONNECT_KEYS = {
  sessionExpiryInterval: 1,
  reasonString: 1,
  userProperties: 1,
  serverReference: 1,
} satisfies Record<keyof DisconnectProperties, 1>;
const AUTH_KEYS = {
  authenticationMethod: 1,
  reasonString: 1,
  userProperties: 1,
  authenticationData: 1,
} satisfies Record<keyof AuthProperties, 1>;

function keysUsed(blocks: Array<object | undefined>): string[] {
  return [...new Set(blocks.flatMap((b) => (b ? Object.keys(b) : [])))].sort();
}

describe("MQTT 5.0 property coverage", () => {
  const of = <T extends Packet["type"]>(type: T) =>
    v5.map((r) => r.packet).filter((p): p is Extract<Packet, { type: T }> => p.type === type);

  it.each([
    ["CONNACK", CONNACK_KEYS, () => of(PacketType.CONNACK).map((p) => p.properties)],
    ["CONNECT", CONNECT_KEYS, () => of(PacketType.CONNECT).map((p) => p.properties)],
    ["will", WILL_KEYS, () => of(PacketType.CONNECT).map((p) => p.will?.properties)],
    ["PUBLISH", PUBLISH_KEYS, () => of(PacketType.PUBLISH).map((p) => p.properties)],
    ["DISCONNECT", DISCONNECT_KEYS, () => of(PacketType.DISCONNECT).map((p) => p.properties)],
    ["AUTH", AUTH_KEYS, () => of(PacketType.AUTH).map((p) => p.properties)],
  ] as const)("every %s property appears in a row", (_, keys, blocks) => {
    expect(keysUsed(blocks())).toEqual(Object.keys(keys).sort());
  });
});
