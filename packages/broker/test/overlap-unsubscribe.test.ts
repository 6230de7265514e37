import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { RawClient, startBroker } from "./helpers.js";

describe("5.0 details", () => {
  it("keeps RETAIN on a merged delivery only when every matching subscription has Retain As Published", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 5);
    await raw.connect({ clientId: "rap-mixed", protocolVersion: 5 });
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [
        { topicFilter: "rap/#", qos: 0, retainAsPublished: true },
        { topicFilter: "rap/+", qos: 0, retainAsPublished: false },
      ],
    });
    expect(await raw.next()).toMatchObject({ type: PacketType.SUBACK, reasonCodes: [0, 0] });
    raw.send({
      type: PacketType.PUBLISH,
      topic: "rap/x",
      payload: Uint8Array.of(1),
      qos: 0,
      retain: true,
      dup: false,
    });
    // [MQTT-3.3.1-12]: "rap/+" has Retain As Published 0, so the one copy carries RETAIN 0.
    expect(await raw.next()).toMatchObject({
      type: PacketType.PUBLISH,
      topic: "rap/x",
      retain: false,
    });
  });

  it("answers UNSUBSCRIBE of an invalid filter with 0x8F and the valid ones normally", async () => {
    const broker = await startBroker();
    const raw = await RawClient.connect(broker, 5);
    await raw.connect({ clientId: "unsub-bad", protocolVersion: 5 });
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: "ok/x", qos: 0 }],
    });
    await raw.next();
    raw.send({
      type: PacketType.UNSUBSCRIBE,
      packetId: 2,
      topicFilters: ["bad/#/filter", "ok/x", "never"],
    });
    expect(await raw.next()).toMatchObject({
      type: PacketType.UNSUBACK,
      packetId: 2,
      reasonCodes: [0x8f, 0x00, 0x11],
    });
    expect(raw.isOpen).toBe(true);
  });
});
