// Decoder `reusedChunks`: a caller that reads every time into the same buffer gets packets
// whose byte fields are copies; by default they are views into the pushed chunk.
import { describe, expect, it } from "vitest";
import {
  type ConnectPacket,
  Decoder,
  encode,
  type Packet,
  PacketType,
  type PublishPacket,
} from "../src/index.js";

const publish: Packet = {
  type: PacketType.PUBLISH,
  topic: "a/b",
  payload: new TextEncoder().encode("payload"),
  qos: 1,
  packetId: 7,
  retain: false,
  dup: false,
  properties: { correlationData: new TextEncoder().encode("corr") },
};

const connect: Packet = {
  type: PacketType.CONNECT,
  protocolVersion: 5,
  clientId: "c",
  clean: true,
  keepAlive: 30,
  username: "u",
  password: new TextEncoder().encode("secret"),
  will: { topic: "w", payload: new TextEncoder().encode("will"), qos: 0, retain: false },
};

/** Decodes `packet` from a chunk, then overwrites the chunk as a reused read buffer would be. */
function decodeThenOverwrite(packet: Packet, reusedChunks: boolean): Packet {
  const chunk = new Uint8Array(encode(packet, { protocolVersion: 5 }));
  const got: Packet[] = [];
  new Decoder((p) => got.push(p), { protocolVersion: 5, reusedChunks }).push(chunk);
  chunk.fill(0x2a);
  expect(got).toHaveLength(1);
  return got[0]!;
}

const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);

describe("Decoder reusedChunks", () => {
  it("copies a PUBLISH payload and binary properties out of the chunk", () => {
    const p = decodeThenOverwrite(publish, true) as PublishPacket;
    expect(text(p.payload)).toBe("payload");
    expect(text(p.properties?.correlationData)).toBe("corr");
  });

  it("copies a CONNECT password and will payload out of the chunk", () => {
    const p = decodeThenOverwrite(connect, true) as ConnectPacket;
    expect(text(p.password)).toBe("secret");
    expect(text(p.will?.payload)).toBe("will");
  });

  it("by default hands out views into the chunk (no copy)", () => {
    const p = decodeThenOverwrite(publish, false) as PublishPacket;
    expect(text(p.payload)).toBe("*******");
  });

  it("a frame gathered across chunks is intact however the chunks are reused", () => {
    const bytes = encode(publish, { protocolVersion: 5 });
    const got: Packet[] = [];
    const decoder = new Decoder((p) => got.push(p), { protocolVersion: 5, reusedChunks: true });
    const buffer = new Uint8Array(bytes.length);
    for (const [from, to] of [
      [0, 5],
      [5, bytes.length],
    ] as const) {
      buffer.set(bytes.subarray(from, to));
      decoder.push(buffer.subarray(0, to - from));
      buffer.fill(0x2a);
    }
    expect(text((got[0] as PublishPacket).payload)).toBe("payload");
  });
});
