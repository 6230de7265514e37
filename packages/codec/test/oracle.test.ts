// Interoperability with mqtt-packet, the de-facto JS MQTT codec, used as an oracle: random
// valid packets of every type must cross between the two codecs unchanged, both ways, in MQTT
// 3.1.1 and 5.0. Where mqtt-packet cannot express a valid packet, see oracle/mqtt-packet-shapes.

import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { decodePacket, encode, packetTypeName } from "../src/index.js";
import { anyPacket, packetArbitraries, type Version } from "./oracle/arbitraries.js";
import {
  FOR_MQTT_GENERATE,
  FOR_MQTT_PARSER,
  fromMqtt,
  mqttGenerate,
  mqttParse,
  plain,
  seenThroughMqttPacket,
  toMqtt,
} from "./oracle/mqtt-packet-shapes.js";

// Fixed, so a failure reproduces; fast-check prints the shrunk counterexample.
const SEED = 0x6d717474;
const RUNS = 500;

describe.each([4, 5] as const)("MQTT protocol level %i", (version: Version) => {
  // No type left out: 1 (CONNECT) to 14 (DISCONNECT), and 15 (AUTH) in 5.0.
  test("every packet type of the level has an arbitrary", () => {
    const names = Array.from({ length: version === 5 ? 15 : 14 }, (_, i) => packetTypeName(i + 1));
    expect(Object.keys(packetArbitraries(version))).toStrictEqual(names);
  });

  describe("our encode → mqtt-packet parser", () => {
    const arbitraries = Object.entries(packetArbitraries(version, FOR_MQTT_PARSER));
    test.each(arbitraries)("%s", (name, arbitrary) => {
      fc.assert(
        fc.property(arbitrary, (packet) => {
          expect(packetTypeName(packet.type)).toBe(name);
          const bytes = encode(packet, { protocolVersion: version });
          const parsed = fromMqtt(mqttParse(bytes, version), version);
          expect(plain(parsed)).toStrictEqual(plain(seenThroughMqttPacket(packet)));
          // What mqtt-packet cannot see (user property order across names), our decoder must.
          expect(plain(decodePacket(bytes, { protocolVersion: version }))).toStrictEqual(
            plain(packet),
          );
        }),
        { seed: SEED, numRuns: RUNS },
      );
    });
  });

  describe("mqtt-packet generate → our decodePacket", () => {
    const arbitraries = Object.entries(packetArbitraries(version, FOR_MQTT_GENERATE));
    test.each(arbitraries)("%s", (name, arbitrary) => {
      fc.assert(
        fc.property(arbitrary, (packet) => {
          expect(packetTypeName(packet.type)).toBe(name);
          // A Buffer, so our decoder takes Node's native string path.
          const bytes = mqttGenerate(toMqtt(packet, version), version);
          const decoded = decodePacket(bytes, { protocolVersion: version });
          expect(plain(decoded)).toStrictEqual(plain(seenThroughMqttPacket(packet)));
        }),
        { seed: SEED, numRuns: RUNS },
      );
    });

    // Without Buffer (browsers, workers) strings take the portable decoding path.
    test("any type, from a plain Uint8Array (portable string path)", () => {
      fc.assert(
        fc.property(anyPacket(version, FOR_MQTT_GENERATE), (packet) => {
          const bytes = new Uint8Array(mqttGenerate(toMqtt(packet, version), version));
          const decoded = decodePacket(bytes, { protocolVersion: version });
          expect(plain(decoded)).toStrictEqual(plain(seenThroughMqttPacket(packet)));
        }),
        { seed: SEED, numRuns: 1000 },
      );
    });
  });
});
