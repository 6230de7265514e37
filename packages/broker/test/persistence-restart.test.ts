// What a broker on a FileStorage keeps across a restart (ctx.exit, then a new context on the same
// directory): persistent sessions, their subscriptions and queued messages, retained messages.
import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { getBroker } from "../src/index.js";
import {
  drain,
  expectPacket,
  payloads,
  rawConnected,
  rawSubscribe,
  receivePublishes,
  recorder,
  text,
} from "./flow-helpers.js";
import { client, sleep, until } from "./helpers.js";
import { connackOf } from "./lifecycle-support.js";
import {
  fileBroker,
  persistentFields,
  persistentOptions,
  tempDir,
  within,
  withStorage,
} from "./persistence-helpers.js";

describe.each([4, 5] as const)("restart on a FileStorage, MQTT level %i", (protocolVersion) => {
  it("keeps a persistent session: session present, subscriptions route, QoS 0/1/2 queued in order", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const clientId = `keep-${protocolVersion}`;
    const sub = await recorder(first, persistentOptions(protocolVersion, clientId));
    await within(sub.c.subscribeAsync("rs/q/#", { qos: 2 }), 3000, "SUBACK rs/q/#");
    // Granted QoS 1: a QoS 2 publish to it is delivered at QoS 1, before and after the restart.
    await within(sub.c.subscribeAsync("rs/one", { qos: 1 }), 3000, "SUBACK rs/one");
    await within(sub.c.endAsync(), 3000, "DISCONNECT");

    const publisher = await client(first, { protocolVersion });
    const sent: [string, 0 | 1 | 2][] = [];
    for (let i = 0; i < 9; i++) sent.push([`m${i}`, (i % 3) as 0 | 1 | 2]);
    // QoS 0 is not acknowledged, but the QoS 1/2 acks after it prove it was routed (in order).
    for (const [payload, qos] of sent)
      await within(publisher.publishAsync("rs/q/a", payload, { qos }), 3000, `ack of ${payload}`);
    await within(publisher.publishAsync("rs/one", "down", { qos: 2 }), 3000, "PUBCOMP of down");
    await first.stop();

    const second = await fileBroker(dir);
    expect(getBroker(second.ctx).sessions.has(clientId)).toBe(true);
    // The queued messages read back count against maxTotalMessageBytes until delivered.
    const memory = getBroker(second.ctx).memory;
    expect(memory.bytes).toBeGreaterThan(0);
    const fields = persistentFields(protocolVersion, clientId);
    const back = await rawConnected(second, protocolVersion, fields);
    expect(back.connack.sessionPresent).toBe(true);
    const got = await receivePublishes(back.raw, sent.length + 1);
    expect(got.map((p) => [p.topic, text(p.payload), p.qos])).toEqual([
      ...sent.map(([payload, qos]) => ["rs/q/a", payload, qos]),
      ["rs/one", "down", 1],
    ]);
    // Queued messages were never sent: no DUP on their first delivery.
    expect(got.every((p) => !p.dup)).toBe(true);
    const rest = await drain(back.raw, 100);
    expect(rest.filter((p) => p.type === PacketType.PUBLISH)).toEqual([]);
    for (const p of rest)
      if (p.type === PacketType.PUBREL)
        back.raw.send({ type: PacketType.PUBCOMP, packetId: p.packetId });
    await until(() => memory.bytes === 0, 3000, "every restored message released");

    // The restored subscriptions route live messages (no SUBSCRIBE was sent to this broker).
    const live = await client(second, { protocolVersion });
    await within(live.publishAsync("rs/q/live", "after", { qos: 2 }), 3000, "PUBCOMP of after");
    await within(live.publishAsync("rs/one", "capped", { qos: 2 }), 3000, "PUBCOMP of capped");
    const after = await receivePublishes(back.raw, 2);
    expect(after.map((p) => [p.topic, text(p.payload), p.qos])).toEqual([
      ["rs/q/live", "after", 2],
      ["rs/one", "capped", 1],
    ]);
  });

  it("an UNSUBSCRIBE before the restart stays done; a shared subscription is restored", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const clientId = `unsub-${protocolVersion}`;
    const options = persistentOptions(protocolVersion, clientId);
    const sub = await recorder(first, options);
    await within(sub.c.subscribeAsync(["us/keep", "us/drop"], { qos: 1 }), 3000, "SUBACK");
    await within(sub.c.subscribeAsync("$share/grp/us/shared", { qos: 1 }), 3000, "SUBACK");
    await within(sub.c.unsubscribeAsync("us/drop"), 3000, "UNSUBACK");
    await within(sub.c.endAsync(), 3000, "DISCONNECT");
    await first.stop();

    const second = await fileBroker(dir);
    const back = await recorder(second, options);
    expect(connackOf(back.c)?.sessionPresent).toBe(true);
    const publisher = await client(second, { protocolVersion });
    for (const topic of ["us/drop", "us/keep", "us/shared"])
      await within(publisher.publishAsync(topic, topic, { qos: 1 }), 3000, `PUBACK ${topic}`);
    await until(() => back.got.length >= 2, 3000, "two messages");
    await sleep(100);
    expect(payloads(back.got)).toEqual(["us/keep", "us/shared"]);
  });

  it("restores nothing of clean sessions, nor of a persistent session a clean start replaced", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    // Connected when the broker stops, and subscribed: a clean session still goes.
    const clean = await recorder(first, { protocolVersion, clientId: `clean-${protocolVersion}` });
    await within(clean.c.subscribeAsync("cl/#", { qos: 1 }), 3000, "SUBACK cl/#");
    // Persistent at first, then replaced by a clean start: its stored state must go.
    const replacedId = `replaced-${protocolVersion}`;
    const once = await recorder(first, persistentOptions(protocolVersion, replacedId));
    await within(once.c.subscribeAsync("cl/#", { qos: 1 }), 3000, "SUBACK cl/#");
    await within(once.c.endAsync(), 3000, "DISCONNECT");
    const again = await recorder(first, { protocolVersion, clientId: replacedId, clean: true });
    await within(again.c.subscribeAsync("cl/again", { qos: 1 }), 3000, "SUBACK cl/again");
    const publisher = await client(first, { protocolVersion });
    await within(publisher.publishAsync("cl/x", "live", { qos: 1 }), 3000, "PUBACK");
    await first.stop();

    const stored = await withStorage(dir, (s) => s.readAll());
    expect(stored.clients.map((c) => c.clientId)).toEqual([]);

    const second = await fileBroker(dir);
    expect([...getBroker(second.ctx).sessions.keys()]).toEqual([]);
    for (const clientId of [`clean-${protocolVersion}`, replacedId]) {
      const back = await rawConnected(
        second,
        protocolVersion,
        persistentFields(protocolVersion, clientId),
      );
      expect(back.connack.sessionPresent).toBe(false);
      const p2 = await client(second, { protocolVersion });
      await within(p2.publishAsync("cl/again", "nobody", { qos: 1 }), 3000, "PUBACK");
      expect((await drain(back.raw, 100)).filter((p) => p.type === PacketType.PUBLISH)).toEqual([]);
    }
  });

  it("brings retained messages back; a cleared one stays cleared", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const publisher = await client(first, { protocolVersion });
    await within(
      publisher.publishAsync("rt/a", "kept", { qos: 1, retain: true }),
      3000,
      "PUBACK rt/a",
    );
    await within(
      publisher.publishAsync("rt/b", "replaced", { qos: 1, retain: true }),
      3000,
      "PUBACK rt/b",
    );
    await within(
      publisher.publishAsync("rt/b", "replacement", { qos: 0, retain: true }),
      3000,
      "rt/b",
    );
    await within(
      publisher.publishAsync("rt/c", "cleared", { qos: 1, retain: true }),
      3000,
      "PUBACK rt/c",
    );
    await within(publisher.publishAsync("rt/c", "", { qos: 1, retain: true }), 3000, "PUBACK");
    await first.stop();

    const second = await fileBroker(dir);
    const sub = await recorder(second, { protocolVersion });
    await within(sub.c.subscribeAsync("rt/#", { qos: 1 }), 3000, "SUBACK rt/#");
    await until(() => sub.got.length >= 2, 3000, "two retained messages");
    await sleep(100);
    const seen = sub.got
      .map((m) => [m.topic, m.payload, m.qos, m.retain])
      .sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    // The QoS 0 replacement keeps QoS 0; the subscription's QoS 1 does not raise it.
    expect(seen).toEqual([
      ["rt/a", "kept", 1, true],
      ["rt/b", "replacement", 0, true],
    ]);
  });
});

describe("restart on a FileStorage, MQTT 5.0 only", () => {
  it("retained messages keep their properties (content type, user properties, response topic...)", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const publisher = await client(first, { protocolVersion: 5 });
    await within(
      publisher.publishAsync("rp/x", '{"t":21}', {
        qos: 1,
        retain: true,
        properties: {
          contentType: "application/json",
          payloadFormatIndicator: true,
          responseTopic: "rp/reply",
          correlationData: Buffer.from([1, 2, 3]),
          userProperties: { site: "lab", unit: "C" },
          messageExpiryInterval: 3600,
        },
      }),
      3000,
      "PUBACK",
    );
    await first.stop();

    const second = await fileBroker(dir);
    const sub = await recorder(second, { protocolVersion: 5 });
    await within(sub.c.subscribeAsync("rp/#", { qos: 1 }), 3000, "SUBACK");
    await until(() => sub.got.length === 1, 3000, "the retained message");
    const m = sub.got[0]!;
    expect([m.topic, m.payload, m.qos, m.retain]).toEqual(["rp/x", '{"t":21}', 1, true]);
    const props = m.packet.properties!;
    expect(props.contentType).toBe("application/json");
    expect(props.payloadFormatIndicator).toBe(true);
    expect(props.responseTopic).toBe("rp/reply");
    expect([...(props.correlationData as Buffer)]).toEqual([1, 2, 3]);
    expect(props.userProperties).toEqual({ site: "lab", unit: "C" });
    // The expiry counts down from the original publish, it does not start again (v5 3.3.2.3.3).
    expect(props.messageExpiryInterval).toBeGreaterThan(3500);
    expect(props.messageExpiryInterval).toBeLessThanOrEqual(3600);
  });

  it("a DISCONNECT that sets the Session Expiry to 0 ends the stored session", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const fields = persistentFields(5, "ends-at-disconnect");
    const a = await rawConnected(first, 5, fields);
    await rawSubscribe(a.raw, [{ topicFilter: "ed/#", qos: 1 }]);
    a.raw.send({
      type: PacketType.DISCONNECT,
      reasonCode: 0,
      properties: { sessionExpiryInterval: 0 },
    });
    await within(a.raw.closed, 3000, "close after DISCONNECT");
    const publisher = await client(first, { protocolVersion: 5 });
    await within(publisher.publishAsync("ed/x", "nobody", { qos: 1 }), 3000, "PUBACK");
    await first.stop();

    expect(await withStorage(dir, (s) => s.readClient("ends-at-disconnect"))).toBeNull();
    const second = await fileBroker(dir);
    const b = await rawConnected(second, 5, fields);
    expect(b.connack.sessionPresent).toBe(false);
    expect(await drain(b.raw, 150)).toEqual([]);
  });

  it("No Local, Retain As Published and the Subscription Identifier survive a restart", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const options = persistentOptions(5, "opts-5");
    const sub = await recorder(first, options);
    await within(sub.c.subscribeAsync("nl/#", { qos: 1, nl: true }), 3000, "SUBACK nl");
    await within(sub.c.subscribeAsync("rap/#", { qos: 1, rap: true }), 3000, "SUBACK rap");
    await within(
      sub.c.subscribeAsync("sid/#", { qos: 1, properties: { subscriptionIdentifier: 42 } }),
      3000,
      "SUBACK sid",
    );
    await within(sub.c.endAsync(), 3000, "DISCONNECT");
    await first.stop();

    const second = await fileBroker(dir);
    const back = await recorder(second, options);
    expect(connackOf(back.c)?.sessionPresent).toBe(true);
    // No Local: its own publish is not sent back, another client's is.
    await within(back.c.publishAsync("nl/self", "own", { qos: 1 }), 3000, "PUBACK nl/self");
    const other = await client(second, { protocolVersion: 5 });
    await within(other.publishAsync("nl/other", "theirs", { qos: 1 }), 3000, "PUBACK");
    // Retain As Published: a live retained message keeps RETAIN 1.
    await within(
      other.publishAsync("rap/x", "flagged", { qos: 1, retain: true }),
      3000,
      "PUBACK rap",
    );
    await within(other.publishAsync("sid/x", "tagged", { qos: 1 }), 3000, "PUBACK sid");
    await until(() => back.got.length >= 3, 3000, "three messages");
    await sleep(100);
    expect(payloads(back.got)).toEqual(["theirs", "flagged", "tagged"]);
    expect(back.got[1]!.retain).toBe(true);
    const ids = (m: (typeof back.got)[number]): number[] =>
      [m.packet.properties?.subscriptionIdentifier ?? []].flat();
    expect(ids(back.got[2]!)).toEqual([42]);
    expect(ids(back.got[0]!)).toEqual([]);
  });

  it("a raw 5.0 resume gets the queued message with its properties and subscription id", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const fields = persistentFields(5, "raw-5");
    const a = await rawConnected(first, 5, fields);
    a.raw.send({
      type: PacketType.SUBSCRIBE,
      packetId: 5,
      subscriptions: [{ topicFilter: "rq/#", qos: 1 }],
      properties: { subscriptionIdentifier: 7 },
    });
    await expectPacket(a.raw, PacketType.SUBACK);
    a.raw.send({ type: PacketType.DISCONNECT, reasonCode: 0 });
    await within(a.raw.closed, 3000, "close after DISCONNECT");
    const publisher = await client(first, { protocolVersion: 5 });
    await within(
      publisher.publishAsync("rq/x", "typed", {
        qos: 1,
        properties: { contentType: "text/plain", userProperties: { k: ["v1", "v2"] } },
      }),
      3000,
      "PUBACK",
    );
    await first.stop();

    const second = await fileBroker(dir);
    const b = await rawConnected(second, 5, fields);
    expect(b.connack.sessionPresent).toBe(true);
    const [p] = await receivePublishes(b.raw, 1);
    expect([p!.topic, text(p!.payload), p!.qos, p!.dup]).toEqual(["rq/x", "typed", 1, false]);
    expect(p!.properties?.contentType).toBe("text/plain");
    expect(p!.properties?.userProperties).toEqual([
      ["k", "v1"],
      ["k", "v2"],
    ]);
    expect(p!.properties?.subscriptionIdentifiers).toEqual([7]);
  });
});
