import vm from "node:vm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Decoder,
  decodePacket,
  encode,
  MqttError,
  type Packet,
  type ProtocolVersion,
} from "../src/index.js";

// Bounded and reproducible: a fixed seed, a fixed number of runs and a time limit per property
// (well under 10 s for the file), so CI never waits on it.
const SEED = 0x6d717474;
const TIME_LIMIT_MS = 2_000;
/** A single input taking this long means the decoder loops. */
const HANG_MS = 1_000;
const VERSIONS: readonly ProtocolVersion[] = [3, 4, 5];
/** Reason codes a decoding error may carry: malformed, protocol, version, topics, alias, size. */
const DECODE_REASON_CODES = new Set([0x81, 0x82, 0x84, 0x8f, 0x90, 0x94, 0x95]);

function params(numRuns: number): fc.Parameters<unknown> {
  return {
    seed: SEED,
    numRuns,
    interruptAfterTimeLimit: TIME_LIMIT_MS,
    markInterruptAsFailure: false,
  };
}

// A synchronous infinite loop cannot be caught by a test timeout; vm's watchdog terminates any
// JavaScript running on the isolate, the decoder's included.
const sandbox = vm.createContext({ job: undefined as (() => void) | undefined });
const runJob = new vm.Script("job()");

function withinTime(job: () => void): void {
  sandbox.job = job;
  try {
    runJob.runInContext(sandbox, { timeout: HANG_MS });
  } catch (err) {
    if ((err as { code?: unknown }).code === "ERR_SCRIPT_EXECUTION_TIMEOUT") {
      throw new Error(`the decoder did not return within ${HANG_MS} ms`);
    }
    throw err;
  } finally {
    sandbox.job = undefined;
  }
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

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A handful of valid packets of every type, with every field the version has. */
function samplePackets(v: ProtocolVersion): Packet[] {
  const v5 = v === 5;
  const packets: Packet[] = [
    {
      type: 1,
      protocolVersion: v,
      clean: true,
      keepAlive: 30,
      clientId: "fuzz",
      will: {
        topic: "w/t",
        payload: text("bye"),
        qos: 1,
        retain: true,
        ...(v5
          ? { properties: { willDelayInterval: 5, contentType: "t", responseTopic: "r" } }
          : {}),
      },
      username: "u",
      password: text("pw"),
      ...(v5
        ? {
            properties: {
              sessionExpiryInterval: 60,
              receiveMaximum: 10,
              maximumPacketSize: 4096,
              requestProblemInformation: true,
              userProperties: [["k", "v"]],
              authenticationMethod: "m",
              authenticationData: text("d"),
            },
          }
        : {}),
    },
    { type: 1, protocolVersion: v, clean: false, keepAlive: 0, clientId: "" },
    {
      type: 2,
      sessionPresent: true,
      reasonCode: 0,
      ...(v5
        ? { properties: { topicAliasMaximum: 4, maximumQoS: 1, retainAvailable: false } }
        : {}),
    },
    { type: 3, topic: "a/b", payload: text("hello"), qos: 0, retain: false, dup: false },
    {
      type: 3,
      topic: "\u00e9/\u{1f600}",
      payload: new Uint8Array([0, 255, 128]),
      qos: 1,
      packetId: 1,
      retain: true,
      dup: true,
      ...(v5
        ? {
            properties: {
              payloadFormatIndicator: 1,
              messageExpiryInterval: 100,
              topicAlias: 3,
              responseTopic: "r/s",
              correlationData: text("id"),
              userProperties: [["a", "b"]],
              subscriptionIdentifiers: [1, 300],
              contentType: "c",
            },
          }
        : {}),
    },
    {
      type: 3,
      topic: "q2",
      payload: new Uint8Array(0),
      qos: 2,
      packetId: 65535,
      retain: false,
      dup: false,
    },
    { type: 4, packetId: 1 },
    { type: 5, packetId: 3 },
    { type: 6, packetId: 3 },
    { type: 7, packetId: 3 },
    {
      type: 8,
      packetId: 4,
      subscriptions: [
        { topicFilter: "a/+", qos: 1 },
        v5
          ? { topicFilter: "#", qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 1 }
          : { topicFilter: "#", qos: 2 },
      ],
      ...(v5 ? { properties: { subscriptionIdentifier: 7 } } : {}),
    },
    { type: 9, packetId: 4, reasonCodes: [1, 0x80] },
    { type: 10, packetId: 5, topicFilters: ["a/+", "$share/g/x"] },
    { type: 11, packetId: 5, ...(v5 ? { reasonCodes: [0, 0x11] } : {}) },
    { type: 12 },
    { type: 13 },
    { type: 14 },
  ];
  if (v5) {
    packets.push(
      {
        type: 3,
        topic: "",
        payload: text("x"),
        qos: 0,
        retain: false,
        dup: false,
        properties: { topicAlias: 2 },
      },
      { type: 4, packetId: 2, reasonCode: 0x10, properties: { reasonString: "r" } },
      { type: 14, reasonCode: 4, properties: { sessionExpiryInterval: 0, reasonString: "bye" } },
      {
        type: 15,
        reasonCode: 0x18,
        properties: { authenticationMethod: "m", authenticationData: text("a") },
      },
      { type: 15, reasonCode: 0 },
    );
  }
  return packets;
}

const SAMPLES = new Map(
  VERSIONS.map((v) => [v, samplePackets(v).map((p) => encode(p, { protocolVersion: v }))]),
);

interface Delivered {
  packet: Packet;
  version: ProtocolVersion;
}

/** Splits `bytes` at the given positions (taken modulo its length). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const to of [...at, bytes.length]) {
    chunks.push(bytes.subarray(from, to));
    from = to;
  }
  return chunks;
}

/**
 * Pushes the chunks into a Decoder. The only outcomes allowed: packets, then at most one thrown
 * MqttError. Anything else thrown (RangeError, TypeError, a hang) fails.
 */
function feed(version: ProtocolVersion, chunks: readonly Uint8Array[]): Delivered[] {
  const delivered: Delivered[] = [];
  let error: unknown;
  withinTime(() => {
    const decoder: Decoder = new Decoder(
      (packet) => delivered.push({ packet, version: decoder.protocolVersion }),
      { protocolVersion: version },
    );
    let pushed = 0;
    try {
      for (const chunk of chunks) {
        decoder.push(chunk);
        pushed += chunk.length;
        if (decoder.bufferedBytes > pushed) throw new Error("buffers more than it received");
      }
    } catch (err) {
      if (!MqttError.is(err)) throw err;
      error = err;
    }
  });
  if (error !== undefined) {
    expect(error).toBeInstanceOf(MqttError);
    const e = error as MqttError;
    expect(typeof e.code).toBe("string");
    expect(e.code).not.toBe("INVALID_PACKET"); // that one is for encoder input
    expect(DECODE_REASON_CODES.has(e.reasonCode ?? -1), `reasonCode of ${e.code}`).toBe(true);
  }
  return delivered;
}

/** (c) what the decoder accepts, the encoder must take, and it must decode back the same. */
function roundTrip({ packet, version }: Delivered): void {
  let bytes: Uint8Array;
  try {
    bytes = encode(packet, { protocolVersion: version });
  } catch (err) {
    throw new Error(
      `a decoded packet does not re-encode (v${version}): ${String(err)}\n${JSON.stringify(plain(packet))}`,
    );
  }
  expect(plain(decodePacket(bytes, { protocolVersion: version }))).toEqual(plain(packet));
}

function check(version: ProtocolVersion, bytes: Uint8Array, cuts: readonly number[]): void {
  for (const d of feed(version, split(bytes, cuts))) roundTrip(d);
}

type Mutation =
  | { kind: "set"; at: number; value: number }
  | { kind: "flip"; at: number; bit: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "truncate"; at: number };

// Bytes that sit on the boundaries the decoder checks: flags, continuation bits, UTF-8, wildcards.
const byte = fc.oneof(
  fc.integer({ min: 0, max: 255 }),
  fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xc0, 0xed, 0xf4, 0xff, 0x23, 0x2b),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: byte }),
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  const out = [...input];
  for (const m of mutations) {
    const n = out.length;
    switch (m.kind) {
      case "set":
        if (n > 0) out[m.at % n] = m.value;
        break;
      case "flip":
        if (n > 0) out[m.at % n]! ^= 1 << m.bit;
        break;
      case "insert":
        out.splice(m.at % (n + 1), 0, ...m.bytes);
        break;
      case "delete":
        if (n > 0) out.splice(m.at % n, m.count);
        break;
      case "truncate":
        out.length = m.at % (n + 1);
        break;
    }
  }
  return Uint8Array.from(out);
}

const version = fc.constantFrom(...VERSIONS);
const cuts = fc.array(fc.nat(), { maxLength: 6 });

describe("decoder fuzz", () => {
  it("every sample packet round-trips, whole and split in two anywhere", () => {
    for (const v of VERSIONS) {
      for (const bytes of SAMPLES.get(v)!) {
        const whole = feed(v, [bytes]);
        expect(whole).toHaveLength(1);
        roundTrip(whole[0]!);
        for (let at = 0; at <= bytes.length; at++) {
          expect(plain(feed(v, split(bytes, [at])))).toEqual(plain(whole));
        }
      }
    }
  });

  it("(a) random bytes: packets or an MqttError, nothing else", () => {
    fc.assert(
      fc.property(version, fc.uint8Array({ maxLength: 64 }), cuts, (v, bytes, c) =>
        check(v, bytes, c),
      ),
      params(3_000),
    );
  });

  it("(a) random bodies behind well-formed fixed headers", () => {
    const first = fc.constantFrom(
      0x10,
      0x20,
      0x30,
      0x32,
      0x34,
      0x3b,
      0x40,
      0x50,
      0x62,
      0x70,
      0x82,
      0x90,
      0xa2,
      0xb0,
      0xc0,
      0xd0,
      0xe0,
      0xf0,
    );
    const frame = fc
      .tuple(first, fc.uint8Array({ maxLength: 40 }))
      .map(([f, body]) => Uint8Array.from([f, body.length, ...body]));
    fc.assert(
      fc.property(version, fc.array(frame, { minLength: 1, maxLength: 3 }), cuts, (v, frames, c) =>
        check(v, Uint8Array.from(frames.flatMap((f) => [...f])), c),
      ),
      params(4_000),
    );
  });

  it("(b) valid packets mutated, truncated and extended, in random chunks", () => {
    fc.assert(
      fc.property(
        version,
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        fc.array(mutation, { maxLength: 4 }),
        cuts,
        (v, picks, mutations, c) => {
          const samples = SAMPLES.get(v)!;
          const stream = picks.flatMap((i) => [...samples[i % samples.length]!]);
          check(v, mutate(Uint8Array.from(stream), mutations), c);
        },
      ),
      params(5_000),
    );
  });
});
