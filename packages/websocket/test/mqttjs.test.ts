// Our broker behind the WebSocket listener, with MQTT.js clients (a real, independent peer)
// over ws://127.0.0.1:PORT/mqtt: publish/subscribe at every QoS for 3.1, 3.1.1 and 5.0, and
// a large message.
import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { mqttjs, nextMessage, rawWs, startWsBroker, until } from "./helpers.js";

// MQTT.js speaks 3.1 only when told the old protocol name too.
const v31 = { protocolVersion: 3, protocolId: "MQIsdp" } as const;

describe("MQTT.js over ws against our broker", () => {
  for (const protocolVersion of [3, 4, 5] as const) {
    for (const qos of [0, 1, 2] as const) {
      it(`v${protocolVersion}: publish and subscribe at QoS ${qos}`, async () => {
        const b = await startWsBroker();
        const url = `${b.base}/mqtt`;
        const version = protocolVersion === 3 ? v31 : { protocolVersion };
        const sub = await mqttjs(url, {
          ...version,
          clientId: `sub-${protocolVersion}-${qos}`,
        });
        const pub = await mqttjs(url, {
          ...version,
          clientId: `pub-${protocolVersion}-${qos}`,
        });
        await sub.subscribeAsync("ws/t/#", { qos });
        const got = nextMessage(sub, "ws/t/1");
        await pub.publishAsync("ws/t/1", `hello ${qos}`, { qos });
        const message = await got;
        expect(message.payload.toString()).toBe(`hello ${qos}`);
        expect(message.qos).toBe(qos);
        expect(b.conns.map((c) => c.protocolVersion)).toEqual([protocolVersion, protocolVersion]);
        expect(b.listener.connections).toBe(2);
      });
    }
  }

  it("MQTT.js 3.1 offers the mqttv3.1 subprotocol and is served", async () => {
    const b = await startWsBroker();
    const c = await mqttjs(`${b.base}/mqtt`, { ...v31, clientId: "v31" });
    expect(c.connected).toBe(true);
    expect(b.conns[0]?.protocolVersion).toBe(3);
  });

  it("carries a 1 MiB message; our broker sends it to a subscriber in one binary frame", async () => {
    const b = await startWsBroker();
    const url = `${b.base}/mqtt`;
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;

    // A raw subscriber sees the frames themselves.
    const raw = await rawWs(url);
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 0,
      clientId: "raw-sub",
    });
    await until(() => raw.packets.length === 1, 3000, "CONNACK");
    raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: "big/#", qos: 1 }],
    });
    await until(() => raw.packets.length === 2, 3000, "SUBACK");
    const sub = await mqttjs(url, { clientId: "js-sub" });
    await sub.subscribeAsync("big/#", { qos: 1 });
    const got = nextMessage(sub, "big/1");

    // A raw publisher sends the PUBLISH as one frame.
    const pub = await rawWs(url);
    pub.send({
      type: PacketType.CONNECT,
      protocolVersion: 4,
      clean: true,
      keepAlive: 0,
      clientId: "raw-pub",
    });
    await until(() => pub.packets.length === 1, 3000, "CONNACK");
    pub.send({
      type: PacketType.PUBLISH,
      topic: "big/1",
      payload: big,
      qos: 1,
      retain: false,
      dup: false,
      packetId: 7,
    });
    await until(() => pub.packets.length === 2, 5000, "PUBACK");
    expect(pub.packets[1]).toMatchObject({ type: PacketType.PUBACK, packetId: 7 });

    expect(Buffer.compare((await got).payload, big)).toBe(0);
    await until(() => raw.packets.length === 3, 5000, "the PUBLISH at the raw subscriber");
    const publish = raw.packets[2];
    expect(publish?.type).toBe(PacketType.PUBLISH);
    if (publish?.type === PacketType.PUBLISH) expect(Buffer.compare(publish.payload, big)).toBe(0);
    const biggest = raw.frames.reduce((a, f) => Math.max(a, f.size), 0);
    expect(biggest).toBeGreaterThan(big.length);
    expect(raw.frames.every((f) => f.binary)).toBe(true);

    // And MQTT.js publishing the same size gets it through too.
    const js = await mqttjs(url, { clientId: "js-pub", protocolVersion: 5 });
    const again = nextMessage(sub, "big/2");
    await js.publishAsync("big/2", big, { qos: 2 });
    expect(Buffer.compare((await again).payload, big)).toBe(0);
  });
});
