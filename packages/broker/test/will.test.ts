import { PacketType, type Will } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { bytes, type Recording, rawConnected, recorder, untilGone } from "./flow-helpers.js";
import { client, RawClient, sleep, startBroker, type TestBroker, until } from "./helpers.js";

function will(topic: string, payload: string, extra: Partial<Will> = {}): Will {
  return { topic, payload: bytes(payload), qos: 0, retain: false, ...extra };
}

async function watcher(
  broker: TestBroker,
  filter: string,
  protocolVersion: 4 | 5 = 4,
): Promise<Recording> {
  const r = await recorder(broker, { protocolVersion });
  await r.c.subscribeAsync(filter, { qos: 2 });
  return r;
}

describe.each([4, 5] as const)("wills, MQTT level %i", (protocolVersion) => {
  it("publishes the will when the connection is lost without DISCONNECT", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", protocolVersion);
    const dying = await client(broker, {
      protocolVersion,
      clientId: "dying",
      will: { topic: "will/dying", payload: Buffer.from("gone"), qos: 1, retain: false },
    });
    dying.stream.destroy();
    await until(() => w.got.length === 1);
    expect(w.got.map((m) => [m.topic, m.payload, m.qos, m.retain])).toEqual([
      ["will/dying", "gone", 1, false],
    ]);
  });

  it("publishes the will when the server closes the connection for a protocol error", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", protocolVersion);
    const { raw } = await rawConnected(broker, protocolVersion, {
      clientId: "bad-peer",
      will: will("will/bad", "protocol error"),
    });
    // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation; the server closes.
    raw.send({
      type: PacketType.CONNECT,
      protocolVersion,
      clean: true,
      keepAlive: 0,
      clientId: "x",
    });
    await raw.closed;
    await until(() => w.got.length === 1);
    expect(w.got.map((m) => [m.topic, m.payload])).toEqual([["will/bad", "protocol error"]]);
  });

  it("publishes the will when the keep alive expires", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", protocolVersion);
    const started = Date.now();
    const { raw } = await rawConnected(broker, protocolVersion, {
      clientId: "silent",
      keepAlive: 1,
      will: will("will/silent", "timed out"),
    });
    await raw.closed;
    await until(() => w.got.length === 1);
    // [MQTT-3.1.2-24]: one and a half keep alive periods.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(w.got.map((m) => m.payload)).toEqual(["timed out"]);
  });

  it("does not publish the will after a normal DISCONNECT", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", protocolVersion);
    const polite = await client(broker, {
      protocolVersion,
      clientId: "polite",
      will: { topic: "will/polite", payload: Buffer.from("never"), qos: 1, retain: true },
    });
    await polite.endAsync();
    await untilGone(broker, "polite");
    await sleep(200);
    expect(w.got).toEqual([]);
    const late = await watcher(broker, "will/#", protocolVersion);
    await sleep(150);
    expect(late.got).toEqual([]);
  });

  it("retains a will with the retain flag: a later subscriber gets it as retained", async () => {
    const broker = await startBroker();
    const { raw } = await rawConnected(broker, protocolVersion, {
      clientId: "retainer",
      will: will("will/retained", "last words", { retain: true, qos: 1 }),
    });
    raw.destroy();
    await untilGone(broker, "retainer");
    await sleep(50);
    const late = await watcher(broker, "will/+", protocolVersion);
    await until(() => late.got.length === 1);
    expect(late.got.map((m) => [m.topic, m.payload, m.retain, m.qos])).toEqual([
      ["will/retained", "last words", true, 1],
    ]);
  });

  it("publishes the will at its QoS, downgraded to each subscription", async () => {
    const broker = await startBroker();
    const at2 = await watcher(broker, "will/q", protocolVersion);
    const at0 = await recorder(broker, { protocolVersion });
    await at0.c.subscribeAsync("will/q", { qos: 0 });
    const { raw } = await rawConnected(broker, protocolVersion, {
      will: will("will/q", "qos two", { qos: 2 }),
    });
    raw.destroy();
    await until(() => at2.got.length === 1 && at0.got.length === 1);
    expect([at2.got[0]?.qos, at0.got[0]?.qos]).toEqual([2, 0]);
  });
});

describe.each([4, 5] as const)("a will on a '$' topic, MQTT level %i", (protocolVersion) => {
  it("is refused at CONNECT as not authorized: it would be a client's publish to a '$' topic", async () => {
    const broker = await startBroker();
    const sys = await watcher(broker, "$SYS/#", protocolVersion);
    const raw = await RawClient.connect(broker, protocolVersion);
    const connack = await raw.connect({
      clientId: "spoofer",
      will: will("$SYS/broker/version", "spoofed", { qos: 1, retain: true }),
    });
    // 0x87 Not authorized (5.0), return code 5 (3.1.1); then the connection closes.
    expect(connack).toMatchObject({
      type: PacketType.CONNACK,
      reasonCode: protocolVersion === 5 ? 0x87 : 5,
    });
    await raw.closed;
    await sleep(150);
    expect(sys.got).toEqual([]);
    const late = await watcher(broker, "$SYS/#", protocolVersion);
    await sleep(150);
    expect(late.got, "nothing was retained there").toEqual([]);
  });
});

describe("wills, MQTT 5.0 only", () => {
  it("publishes the will after DISCONNECT with reason 0x04", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", 5);
    const { raw } = await rawConnected(broker, 5, { will: will("will/04", "asked for") });
    raw.send({ type: PacketType.DISCONNECT, reasonCode: 0x04 });
    await raw.closed;
    await until(() => w.got.length === 1);
    expect(w.got.map((m) => m.payload)).toEqual(["asked for"]);
  });

  it("does not publish the will after DISCONNECT with reason 0x00 (raw)", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", 5);
    const { raw } = await rawConnected(broker, 5, { will: will("will/00", "dropped") });
    raw.send({ type: PacketType.DISCONNECT, reasonCode: 0x00 });
    await raw.closed;
    await sleep(200);
    expect(w.got).toEqual([]);
  });

  it("sends a delayed will only after the Will Delay Interval", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", 5);
    const { raw } = await rawConnected(broker, 5, {
      clientId: "delayed",
      clean: false,
      properties: { sessionExpiryInterval: 30 },
      will: will("will/delayed", "a second later", { properties: { willDelayInterval: 1 } }),
    });
    const lost = Date.now();
    raw.destroy();
    await sleep(700);
    expect(w.got).toEqual([]);
    await until(() => w.got.length === 1, 2000, "delayed will");
    expect(Date.now() - lost).toBeGreaterThanOrEqual(950);
    expect(w.got.map((m) => m.payload)).toEqual(["a second later"]);
  });

  it("does not send a delayed will when the client comes back to its session in time", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", 5);
    const fields = {
      clientId: "comeback",
      clean: false,
      properties: { sessionExpiryInterval: 30 },
      will: will("will/comeback", "should not be sent", { properties: { willDelayInterval: 1 } }),
    };
    const first = await rawConnected(broker, 5, fields);
    first.raw.destroy();
    await first.raw.closed;
    await sleep(200);
    const second = await rawConnected(broker, 5, { ...fields, will: will("will/comeback", "2") });
    expect(second.connack.sessionPresent).toBe(true);
    await sleep(1300);
    // [MQTT-3.1.3-9]
    expect(w.got).toEqual([]);
  });

  it("sends a delayed will when the session expires before the delay", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", 5);
    const { raw } = await rawConnected(broker, 5, {
      clientId: "short-session",
      clean: false,
      properties: { sessionExpiryInterval: 1 },
      will: will("will/expired", "session over", { properties: { willDelayInterval: 30 } }),
    });
    const lost = Date.now();
    raw.destroy();
    await until(() => w.got.length === 1, 2500, "will at session end");
    // v5 3.1.3.2.2: the will goes at the earlier of delay end and session end.
    expect(Date.now() - lost).toBeGreaterThanOrEqual(950);
    expect(w.got.map((m) => m.payload)).toEqual(["session over"]);
  });

  it("passes the will properties through to subscribers", async () => {
    const broker = await startBroker();
    const w = await watcher(broker, "will/#", 5);
    const dying = await client(broker, {
      protocolVersion: 5,
      will: {
        topic: "will/props",
        payload: Buffer.from('{"state":"offline"}'),
        qos: 1,
        retain: false,
        properties: {
          contentType: "application/json",
          payloadFormatIndicator: true,
          responseTopic: "will/replies",
          correlationData: Buffer.from([1, 2, 3, 4]),
          userProperties: { device: "d-17", site: ["a", "b"] },
        },
      },
    });
    dying.stream.destroy();
    await until(() => w.got.length === 1);
    const props = w.got[0]?.packet.properties;
    expect(props?.contentType).toBe("application/json");
    expect(props?.payloadFormatIndicator).toBe(true);
    expect(props?.responseTopic).toBe("will/replies");
    expect(Buffer.from(props?.correlationData ?? [])).toEqual(Buffer.from([1, 2, 3, 4]));
    expect(props?.userProperties).toEqual({ device: "d-17", site: ["a", "b"] });
  });
});
