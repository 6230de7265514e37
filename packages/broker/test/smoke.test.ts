import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { client, RawClient, startBroker, until } from "./helpers.js";

describe("broker smoke", () => {
  it("routes QoS 0, 1 and 2 between MQTT.js clients, 3.1.1 and 5.0", async () => {
    const broker = await startBroker();
    for (const protocolVersion of [4, 5] as const) {
      const sub = await client(broker, { protocolVersion });
      const pub = await client(broker, { protocolVersion });
      const got: [string, string, number][] = [];
      sub.on("message", (topic, payload, packet) =>
        got.push([topic, payload.toString(), packet.qos]),
      );
      await sub.subscribeAsync(`v${protocolVersion}/+`, { qos: 2 });
      for (const qos of [0, 1, 2] as const)
        await pub.publishAsync(`v${protocolVersion}/a`, `q${qos}`, { qos });
      await until(() => got.length === 3);
      expect(got).toEqual([
        [`v${protocolVersion}/a`, "q0", 0],
        [`v${protocolVersion}/a`, "q1", 1],
        [`v${protocolVersion}/a`, "q2", 2],
      ]);
    }
  });

  it("answers a raw CONNECT with CONNACK 0", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker);
    expect(await raw.connect({ clientId: "raw" })).toEqual({
      type: PacketType.CONNACK,
      sessionPresent: false,
      reasonCode: 0,
    });
  });
});
