// @myqtt/codec against mqtt-packet, same inputs, same run (mitata).
//   pnpm --filter @myqtt/codec bench      (builds first; measures dist/, what users get)

import { bench, do_not_optimize, group, run, summary } from "mitata";
import mqttPacket from "mqtt-packet";
import { Decoder, encode, PacketType } from "../dist/index.js";

const OURS = "myqtt";
const PEER = "mqtt-packet";

// --- inputs, built once ---------------------------------------------------------------------
const small = {
  type: PacketType.PUBLISH,
  topic: "sensors/room-12/temperature",
  payload: Buffer.from("21.5 C at 12:00:00"),
  qos: 0,
  retain: false,
  dup: false,
};
const v5Properties = {
  payloadFormatIndicator: 1,
  messageExpiryInterval: 3600,
  contentType: "application/json",
  responseTopic: "replies/client-42",
  correlationData: Buffer.from("request-000123"),
  userProperties: [
    ["trace-id", "4bf92f3577b34da6"],
    ["source", "gateway-7"],
  ],
};
const v5 = { ...small, qos: 1, packetId: 42, properties: v5Properties };
const pub64 = { ...small, topic: "bench/topic/1", payload: Buffer.alloc(64, 0x61) };
const pub1k = { ...small, topic: "bench/topic/1", payload: Buffer.alloc(1024, 0x61) };

// mqtt-packet's shapes of the same packets
const asPeer = (p) => ({
  cmd: "publish",
  topic: p.topic,
  payload: p.payload,
  qos: p.qos,
  retain: p.retain,
  dup: p.dup,
  ...(p.packetId ? { messageId: p.packetId } : {}),
  ...(p.properties
    ? {
        properties: {
          ...p.properties,
          // mqtt-packet takes the one-byte flag as a boolean and user properties as an object
          payloadFormatIndicator: p.properties.payloadFormatIndicator === 1,
          userProperties: Object.fromEntries(p.properties.userProperties),
        },
      }
    : {}),
});
const peerV5 = asPeer(v5);
const peer64 = asPeer(pub64);
const peer1k = asPeer(pub1k);

const smallBytes = Buffer.from(encode(small));
const v5Bytes = Buffer.from(encode(v5, { protocolVersion: 5 }));
// Both codecs must agree on the bytes, or the comparison means nothing.
for (const [ours, theirs, opts] of [
  [smallBytes, mqttPacket.generate(asPeer(small)), {}],
  [v5Bytes, mqttPacket.generate(peerV5, { protocolVersion: 5 }), {}],
  [encode(pub64), mqttPacket.generate(peer64), {}],
]) {
  if (!Buffer.from(ours).equals(theirs))
    throw new Error(`codecs disagree on ${JSON.stringify(opts)}`);
}

// 64 KiB of back-to-back small packets (a busy subscriber's socket read)
const frames = [];
let filled = 0;
for (let i = 0; filled < 65_536; i++) {
  const f = Buffer.from(
    encode({
      ...small,
      topic: `sensors/room-${i % 100}/temperature`,
      payload: Buffer.from(`${i}`),
    }),
  );
  if (filled + f.length > 65_536) break;
  frames.push(f);
  filled += f.length;
}
const chunk = Buffer.concat(frames);
const packetsPerChunk = frames.length;

// --- decoders, reused across iterations as a connection would --------------------------------
let sink = null;
let count = 0;
const ours4 = new Decoder((p) => {
  sink = p;
  count++;
});
const ours5 = new Decoder(
  (p) => {
    sink = p;
  },
  { protocolVersion: 5 },
);
const peer4 = mqttPacket.parser({ protocolVersion: 4 });
peer4.on("packet", (p) => {
  sink = p;
  count++;
});
const peer5 = mqttPacket.parser({ protocolVersion: 5 });
peer5.on("packet", (p) => {
  sink = p;
});

// sanity: each decodes every packet of the chunk
count = 0;
ours4.push(chunk);
if (count !== packetsPerChunk) throw new Error(`myqtt decoded ${count}/${packetsPerChunk}`);
count = 0;
peer4.parse(chunk);
if (count !== packetsPerChunk) throw new Error(`mqtt-packet decoded ${count}/${packetsPerChunk}`);

const scenarios = [
  [
    "decode 3.1.1 PUBLISH (18 B payload)",
    () => ours4.push(smallBytes),
    () => peer4.parse(smallBytes),
  ],
  ["decode 5.0 PUBLISH with properties", () => ours5.push(v5Bytes), () => peer5.parse(v5Bytes)],
  [
    `decode 64 KiB chunk (${packetsPerChunk} PUBLISH)`,
    () => ours4.push(chunk),
    () => peer4.parse(chunk),
  ],
  ["encode PUBLISH 64 B", () => encode(pub64), () => mqttPacket.generate(peer64)],
  ["encode PUBLISH 1 KiB", () => encode(pub1k), () => mqttPacket.generate(peer1k)],
  [
    "encode 5.0 PUBLISH with properties",
    () => encode(v5, { protocolVersion: 5 }),
    () => mqttPacket.generate(peerV5, { protocolVersion: 5 }),
  ],
];

for (const [name, ours, peer] of scenarios) {
  group(name, () => {
    summary(() => {
      bench(`${name} · ${OURS}`, () => do_not_optimize(ours())).baseline(true);
      bench(`${name} · ${PEER}`, () => do_not_optimize(peer()));
    });
  });
}

const { benchmarks } = await run({ colors: process.stdout.isTTY });
do_not_optimize(sink);

const avg = (name) => benchmarks.find((b) => b.alias === name)?.runs[0]?.stats?.avg;
console.log("\n| scenario | myqtt | mqtt-packet | myqtt speed-up |");
console.log("|---|---:|---:|---:|");
for (const [name] of scenarios) {
  const a = avg(`${name} · ${OURS}`);
  const b = avg(`${name} · ${PEER}`);
  const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(1)} ns`);
  console.log(`| ${name} | ${fmt(a)} | ${fmt(b)} | ${(b / a).toFixed(2)}x |`);
}
