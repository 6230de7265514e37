import { describe, expect, it } from "vitest";
import {
  Decoder,
  decodePacket,
  encode,
  MalformedPacketError,
  MqttError,
  type Packet,
  PacketTooLargeError,
  ProtocolError,
} from "../src/index.js";

const MiB = 1024 * 1024;

// PUBLISH QoS 0 fixed headers: 80 80 80 05 is 5 * 128^3 = 10 MiB, 80 80 80 32 is 50 * 128^3.
const HEADER_10_MIB = Uint8Array.of(0x30, 0x80, 0x80, 0x80, 0x05);
const HEADER_100_MIB = Uint8Array.of(0x30, 0x80, 0x80, 0x80, 0x32);

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function collect(options: ConstructorParameters<typeof Decoder>[1] = {}) {
  const packets: Packet[] = [];
  const decoder = new Decoder((p) => packets.push(p), options);
  return { decoder, packets };
}

describe("maximum packet size", () => {
  it("refuses a declared 10 MiB PUBLISH from its 5 header bytes alone", () => {
    const { decoder, packets } = collect({ maximumPacketSize: 1024 });
    const err = caught(() => decoder.push(HEADER_10_MIB));
    expect(err).toBeInstanceOf(PacketTooLargeError);
    expect(MqttError.is(err)).toBe(true);
    expect(err).toMatchObject({
      code: "PACKET_TOO_LARGE",
      reasonCode: 0x95,
      packetType: 3,
      size: 5 + 10 * MiB,
      limit: 1024,
    });
    expect(decoder.bufferedBytes).toBe(0);
    expect(packets).toEqual([]);
  });

  it("refuses it on the last header byte when the header trickles in", () => {
    const { decoder } = collect({ maximumPacketSize: 1024 });
    for (let i = 0; i < 4; i++) {
      decoder.push(HEADER_10_MIB.subarray(i, i + 1));
      expect(decoder.bufferedBytes).toBe(i + 1);
    }
    expect(() => decoder.push(HEADER_10_MIB.subarray(4))).toThrowError(
      expect.objectContaining({ code: "PACKET_TOO_LARGE", size: 5 + 10 * MiB, limit: 1024 }),
    );
    expect(decoder.bufferedBytes).toBe(0);
  });

  it("takes a packet of exactly the limit and refuses one byte more", () => {
    const fits = encode({
      type: 3,
      topic: "t",
      payload: new Uint8Array(1024 - 6), // 1 type + 2 length + 3 topic bytes
      qos: 0,
      retain: false,
      dup: false,
    });
    expect(fits.length).toBe(1024);
    expect(decodePacket(fits, { maximumPacketSize: 1024 })).toMatchObject({ type: 3, topic: "t" });
    expect(() => decodePacket(fits, { maximumPacketSize: 1023 })).toThrowError(
      expect.objectContaining({
        code: "PACKET_TOO_LARGE",
        reasonCode: 0x95,
        size: 1024,
        limit: 1023,
      }),
    );
  });

  it("applies a limit lowered between packets", () => {
    const { decoder, packets } = collect();
    const ping = Uint8Array.of(0xc0, 0x00);
    decoder.push(ping);
    decoder.maximumPacketSize = 1;
    expect(() => decoder.push(ping)).toThrowError(PacketTooLargeError);
    expect(packets).toHaveLength(1);
  });
});

describe("memory per half-received packet", () => {
  // The header bytes count while the header is incomplete; they must not vanish once it is
  // (decodePacket relies on bufferedBytes to see trailing bytes).
  it("counts every byte received for the pending packet in bufferedBytes", () => {
    const { decoder, packets } = collect({ maximumPacketSize: 200 * MiB });
    decoder.push(HEADER_100_MIB);
    expect(decoder.bufferedBytes).toBe(5);
    const one = Uint8Array.of(0x61);
    for (let k = 1; k <= 1000; k++) {
      decoder.push(one);
      expect(decoder.bufferedBytes).toBe(5 + k);
    }
    expect(packets).toEqual([]);
  });

  it("never allocates what a peer only announced", () => {
    const { decoder } = collect({ maximumPacketSize: 200 * MiB });
    const before = process.memoryUsage().arrayBuffers;
    decoder.push(HEADER_100_MIB);
    const one = Uint8Array.of(0x61);
    for (let k = 0; k < 1000; k++) decoder.push(one);
    const afterTrickle = process.memoryUsage().arrayBuffers;
    // A 100 MiB buffer would show; a few KiB of gather buffer (and test noise) must not reach 8 MiB.
    expect(afterTrickle - before).toBeLessThan(8 * MiB);
    expect(decoder.bufferedBytes).toBeGreaterThanOrEqual(1000);

    // The gather buffer grows with what arrives: 1 MiB in 64 KiB chunks stays far below 100 MiB.
    const chunk = new Uint8Array(64 * 1024).fill(0x62);
    for (let k = 0; k < 16; k++) decoder.push(chunk);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * MiB);
    expect(decoder.bufferedBytes).toBeGreaterThanOrEqual(1000 + MiB);
  });

  it("delivers a trickled packet intact and then holds nothing", () => {
    const payload = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff);
    const bytes = encode({
      type: 3,
      topic: "big",
      payload,
      qos: 1,
      packetId: 9,
      retain: true,
      dup: false,
    });
    const { decoder, packets } = collect();
    let sent = 0;
    for (const size of [1, 1, 1, 2, 3, 5, 8, 13, 4096, 1, 30_000]) {
      decoder.push(bytes.subarray(sent, sent + size));
      sent += size;
    }
    expect(packets).toEqual([]);
    decoder.push(bytes.subarray(sent));
    expect(packets).toHaveLength(1);
    expect(packets[0]).toMatchObject({ type: 3, topic: "big", qos: 1, packetId: 9, retain: true });
    expect([...(packets[0] as { payload: Uint8Array }).payload]).toEqual([...payload]);
    expect(decoder.bufferedBytes).toBe(0);
  });
});

describe("packets before a bad one", () => {
  const PINGREQ = [0xc0, 0x00];
  const PUBACK = [0x40, 0x02, 0x00, 0x07];
  const PUBLISH = [0x30, 0x04, 0x00, 0x01, 0x61, 0x7a];

  it("are delivered, in order, before the throw (malformed packet)", () => {
    const { decoder, packets } = collect();
    const chunk = Uint8Array.from([...PINGREQ, ...PUBACK, ...PUBLISH, 0x00, 0x00, ...PINGREQ]);
    const err = caught(() => decoder.push(chunk));
    expect(err).toBeInstanceOf(MalformedPacketError);
    expect(err).toMatchObject({ code: "INVALID_PACKET_TYPE", reasonCode: 0x81 });
    expect(packets.map((p) => p.type)).toEqual([12, 4, 3]);
    expect(packets[1]).toMatchObject({ packetId: 7 });
    expect(packets[2]).toMatchObject({ topic: "a" });
  });

  it("are delivered before the throw (packet too large)", () => {
    const { decoder, packets } = collect({ maximumPacketSize: 1024 });
    const err = caught(() =>
      decoder.push(Uint8Array.from([...PINGREQ, ...PUBACK, ...HEADER_10_MIB])),
    );
    expect(err).toBeInstanceOf(PacketTooLargeError);
    expect(packets.map((p) => p.type)).toEqual([12, 4]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it("are delivered in the push before the bad packet completes", () => {
    const { decoder, packets } = collect();
    // A PINGREQ, then the first half of a PUBLISH whose topic has a wildcard.
    decoder.push(Uint8Array.from([...PINGREQ, 0x30, 0x04, 0x00]));
    expect(packets.map((p) => p.type)).toEqual([12]);
    expect(() => decoder.push(Uint8Array.of(0x01, 0x23, 0x7a))).toThrowError(
      expect.objectContaining({ code: "INVALID_TOPIC_NAME", reasonCode: 0x90 }),
    );
    expect(packets).toHaveLength(1);
  });
});

describe("maximum topic filters per SUBSCRIBE and UNSUBSCRIBE", () => {
  const filters = (n: number): string[] => Array.from({ length: n }, (_, i) => `f/${i}`);
  const subscribe = (n: number, protocolVersion: 4 | 5): Uint8Array =>
    encode(
      {
        type: 8,
        packetId: 1,
        subscriptions: filters(n).map((topicFilter) => ({ topicFilter, qos: 1 as const })),
      },
      { protocolVersion },
    );
  const unsubscribe = (n: number, protocolVersion: 4 | 5): Uint8Array =>
    encode({ type: 10, packetId: 1, topicFilters: filters(n) }, { protocolVersion });

  for (const v of [4, 5] as const) {
    it(`takes exactly the limit (MQTT level ${v})`, () => {
      const { decoder, packets } = collect({ protocolVersion: v, maximumTopicFilters: 3 });
      decoder.push(subscribe(3, v));
      decoder.push(unsubscribe(3, v));
      expect(packets.map((p) => p.type)).toEqual([8, 10]);
    });

    it(`refuses one more with 0x97 Quota exceeded (MQTT level ${v})`, () => {
      for (const packet of [subscribe(4, v), unsubscribe(4, v)]) {
        const { decoder, packets } = collect({ protocolVersion: v, maximumTopicFilters: 3 });
        const err = caught(() => decoder.push(packet));
        expect(err).toBeInstanceOf(ProtocolError);
        expect(err).toMatchObject({ code: "TOO_MANY_TOPIC_FILTERS", reasonCode: 0x97 });
        expect(packets).toEqual([]);
      }
    });
  }

  it("stops reading at the limit, before the rest of the packet", () => {
    // Eleven good filters, then one that is not UTF-8: a decoder that read on (and built an
    // object for each of millions of filters) would report the bad string instead.
    const good = Array.from({ length: 11 }, () => [0, 1, 0x61, 0]).flat();
    const body = Uint8Array.of(0, 1, ...good, 0, 2, 0xc3, 0x28, 0);
    const frame = Uint8Array.of(0x82, body.length, ...body);
    const { decoder } = collect({ maximumTopicFilters: 10 });
    expect(() => decoder.push(frame)).toThrowError(
      expect.objectContaining({ code: "TOO_MANY_TOPIC_FILTERS" }),
    );
    expect(() => collect({ maximumTopicFilters: 20 }).decoder.push(frame)).toThrowError(
      expect.objectContaining({ code: "INVALID_UTF8" }),
    );
  });

  it("has no limit by default", () => {
    const { decoder, packets } = collect();
    decoder.push(subscribe(5000, 4));
    decoder.push(unsubscribe(5000, 4));
    expect(packets).toHaveLength(2);
  });
});

describe("maximum user properties per property list", () => {
  const publish = (n: number): Uint8Array =>
    encode(
      {
        type: 3,
        topic: "t",
        payload: new Uint8Array(0),
        qos: 0,
        retain: false,
        dup: false,
        properties: {
          userProperties: Array.from({ length: n }, (_, i): [string, string] => [`k${i}`, "v"]),
        },
      },
      { protocolVersion: 5 },
    );

  it("takes exactly the limit and refuses one more with 0x97 Quota exceeded", () => {
    const ok = collect({ protocolVersion: 5, maximumUserProperties: 3 });
    ok.decoder.push(publish(3));
    expect(ok.packets).toHaveLength(1);
    const over = collect({ protocolVersion: 5, maximumUserProperties: 3 });
    const err = caught(() => over.decoder.push(publish(4)));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toMatchObject({ code: "TOO_MANY_USER_PROPERTIES", reasonCode: 0x97 });
    expect(over.packets).toEqual([]);
  });

  it("stops reading at the limit, before the next property", () => {
    // Two user properties, then one whose key is not UTF-8.
    const props = [0x26, 0, 1, 0x61, 0, 0, 0x26, 0, 1, 0x62, 0, 0, 0x26, 0, 2, 0xc3, 0x28, 0, 0];
    const body = [0, 1, 0x74, props.length, ...props];
    const frame = Uint8Array.of(0x30, body.length, ...body);
    expect(() =>
      collect({ protocolVersion: 5, maximumUserProperties: 2 }).decoder.push(frame),
    ).toThrowError(expect.objectContaining({ code: "TOO_MANY_USER_PROPERTIES" }));
    expect(() =>
      collect({ protocolVersion: 5, maximumUserProperties: 3 }).decoder.push(frame),
    ).toThrowError(expect.objectContaining({ code: "INVALID_UTF8" }));
  });
});
