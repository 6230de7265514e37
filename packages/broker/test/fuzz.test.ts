// A short, bounded, seeded fuzz: garbage on many connections never crashes the broker, every
// such connection is closed, nothing is left behind, and a control client keeps working.
import { encode, type Packet, PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { RawClient, startBroker, until } from "./helpers.js";
import {
  brokerOf,
  Control,
  frame,
  prng,
  type Version,
  varint,
  within,
} from "./negative-helpers.js";

// Replay another run with FUZZ_SEED=<n>.
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_2024);

/** Valid packets of a connected client (and a second CONNECT), to be mutated. */
function templates(v: Version, withConnect: boolean): Packet[] {
  const list: Packet[] = [
    {
      type: PacketType.PUBLISH,
      topic: "fz/a/b",
      payload: Buffer.from("payload"),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 3,
    },
    {
      type: PacketType.PUBLISH,
      topic: "fz/r",
      payload: Buffer.from("retained"),
      qos: 2,
      retain: true,
      dup: false,
      packetId: 4,
    },
    {
      type: PacketType.SUBSCRIBE,
      packetId: 5,
      subscriptions: [
        { topicFilter: "fz/#", qos: 2 },
        { topicFilter: "$share/g/fz/+", qos: 1 },
      ],
    },
    { type: PacketType.UNSUBSCRIBE, packetId: 6, topicFilters: ["fz/#"] },
    { type: PacketType.PUBACK, packetId: 7 },
    { type: PacketType.PUBREC, packetId: 8 },
    { type: PacketType.PUBREL, packetId: 9 },
    { type: PacketType.PINGREQ },
  ];
  if (withConnect) {
    list.push({
      type: PacketType.CONNECT,
      protocolVersion: v,
      clean: true,
      keepAlive: 1,
      clientId: "again",
    });
  }
  if (v === 5) {
    list.push(
      {
        type: PacketType.PUBLISH,
        topic: "fz/p",
        payload: Buffer.from("{}"),
        qos: 0,
        retain: false,
        dup: false,
        properties: {
          topicAlias: 1,
          payloadFormatIndicator: 1,
          contentType: "json",
          responseTopic: "fz/resp",
          correlationData: Buffer.from([1, 2]),
          userProperties: [["k", "v"]],
          messageExpiryInterval: 10,
        },
      },
      {
        type: PacketType.SUBSCRIBE,
        packetId: 10,
        subscriptions: [{ topicFilter: "fz/+", qos: 1, noLocal: true, retainHandling: 1 }],
        properties: { subscriptionIdentifier: 9 },
      },
      { type: PacketType.AUTH, reasonCode: 0x19, properties: { authenticationMethod: "X" } },
    );
  }
  return list;
}

/** Garbage: random bytes, random frames, or valid packets with a few bytes flipped. */
function garbage(rand: () => number, v: Version, withConnect = true): number[] {
  const int = (n: number): number => Math.floor(rand() * n);
  const bytes = (n: number): number[] => Array.from({ length: n }, () => int(256));
  const kind = int(3);
  if (kind === 0) return bytes(1 + int(256));
  if (kind === 1) {
    const out: number[] = [];
    for (let i = 0, n = 1 + int(4); i < n; i++) out.push(...frame(int(256), bytes(int(64))));
    return out;
  }
  const pool = templates(v, withConnect);
  const out: number[] = [];
  for (let i = 0, n = 1 + int(3); i < n; i++) {
    const packet = [...encode(pool[int(pool.length)]!, { protocolVersion: v })];
    for (let f = 0, flips = 1 + int(3); f < flips; f++) packet[int(packet.length)] = int(256);
    if (rand() < 0.2) packet.length = Math.max(1, int(packet.length));
    out.push(...packet);
  }
  return out;
}

describe("fuzz", () => {
  it("200 connections sending garbage after CONNECT: all closed, no crash, no leftovers", async () => {
    const broker = await startBroker({ maximumPacketSize: 4096, connectTimeoutMs: 1000 });
    const control = await Control.start(broker);
    const b = brokerOf(broker);
    const rand = prng(SEED);
    const plan = Array.from({ length: 200 }, (_, i) => {
      const v: Version = rand() < 0.5 ? 4 : 5;
      return { i, v, bytes: garbage(rand, v) };
    });

    const clients: RawClient[] = [];
    for (let at = 0; at < plan.length; at += 50) {
      const batch = await Promise.all(
        plan.slice(at, at + 50).map(async ({ i, v }) => {
          const raw = await RawClient.connect(broker, v);
          // keep alive 1: a connection left waiting inside a packet is closed after 1.5 s.
          const ack = await raw.connect({ clientId: `fuzz-${i}`, keepAlive: 1 });
          expect(ack).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0 });
          return raw;
        }),
      );
      clients.push(...batch);
    }
    for (const [i, { bytes }] of plan.entries()) clients[i]!.write(bytes);

    await within(
      Promise.all(clients.map((c) => c.closed)),
      4000,
      "every fuzzed connection to close",
    );
    expect(clients.filter((c) => c.isOpen)).toEqual([]);
    await until(
      () => b.allConnections.size === 1,
      3000,
      "the broker to drop every fuzzed connection",
    );
    expect(broker.listener.connections).toBe(1);
    expect([...b.sessions.keys()]).toEqual([`control-${control.tag}`]);
    // Most garbage is caught as such (the rest ends by keep alive or a DISCONNECT it contained).
    const bad = broker.logs.filter((l) => /^warning broker\/conn .*bad packet/.test(l)).length;
    expect(bad, `${bad} bad-packet closes`).toBeGreaterThanOrEqual(100);
    await control.check();
  });

  it("100 connections sending garbage instead of CONNECT: all closed, no crash", async () => {
    const broker = await startBroker({ connectTimeoutMs: 500 });
    const control = await Control.start(broker);
    const b = brokerOf(broker);
    const rand = prng(SEED + 1);
    const plan = Array.from({ length: 100 }, () => {
      // No CONNECT among the templates here: a mutated one could still be a valid CONNECT.
      const bytes = garbage(rand, 4, false);
      // Sometimes a CONNECT that starts right ("MQTT") and goes on with garbage.
      return rand() < 0.3
        ? [0x10, ...varint(bytes.length + 6), 0, 4, 77, 81, 84, 84, ...bytes]
        : bytes;
    });
    const clients = await Promise.all(plan.map(() => RawClient.connect(broker)));
    for (const [i, bytes] of plan.entries()) clients[i]!.write(bytes);
    await within(Promise.all(clients.map((c) => c.closed)), 3000, "every connection to close");
    for (const c of clients) {
      // Nothing but (at most) a refusing CONNACK may come back.
      for (const p of c.packets) expect(p).toMatchObject({ type: PacketType.CONNACK });
      for (const p of c.packets) expect((p as { reasonCode: number }).reasonCode).not.toBe(0);
    }
    await until(() => b.allConnections.size === 1, 3000, "the broker to drop every connection");
    expect([...b.sessions.keys()]).toEqual([`control-${control.tag}`]);
    await control.check();
  });
});
