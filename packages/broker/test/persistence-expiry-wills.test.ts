// Time across a restart: session expiry counts the time the broker was down, delayed wills keep
// their deadline, and a will armed when the broker stopped goes out when it starts again.
import { PacketType, type Will } from "@myqtt/codec";
import type { StorageOp, StoredMessage } from "@myqtt/storage";
import { describe, expect, it } from "vitest";
import { getBroker } from "../src/index.js";
import { bytes, expectPacket, rawConnected, recorder } from "./flow-helpers.js";
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

function delayedWill(topic: string, payload: string, delay: number): Will {
  return {
    topic,
    payload: bytes(payload),
    qos: 1,
    retain: false,
    properties: { willDelayInterval: delay },
  };
}

describe("session expiry across a restart (MQTT 5.0)", () => {
  it("a session whose expiry passed while the broker was down is gone, with its queue and its will sent; a longer one stays", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const watcher = persistentOptions(5, "exp-watch", 60);
    const w1 = await recorder(first, watcher);
    await within(w1.c.subscribeAsync("ex/will/#", { qos: 1 }), 3000, "SUBACK");
    const short = persistentOptions(5, "exp-short", 1);
    const long = persistentOptions(5, "exp-long", 60);
    for (const options of [short, long]) {
      const r = await recorder(first, options);
      await within(r.c.subscribeAsync("ex/q", { qos: 1 }), 3000, "SUBACK");
      await within(r.c.endAsync(), 3000, "DISCONNECT");
    }
    // Lost without DISCONNECT: its will waits min(delay 30, expiry 1) = 1 s.
    const dying = await rawConnected(
      first,
      5,
      persistentFields(5, "exp-dying", 1, delayedWill("ex/will/dying", "expired", 30)),
    );
    const leftAt = Date.now();
    dying.raw.destroy();
    const publisher = await client(first, { protocolVersion: 5 });
    await within(publisher.publishAsync("ex/q", "queued", { qos: 1 }), 3000, "PUBACK");
    // Messages whose own expiry passes while the broker is down are not delivered after it.
    await within(
      publisher.publishAsync("ex/q", "short-lived", {
        qos: 1,
        properties: { messageExpiryInterval: 1 },
      }),
      3000,
      "PUBACK",
    );
    await within(
      publisher.publishAsync("ex/ret", "short-lived retained", {
        qos: 1,
        retain: true,
        properties: { messageExpiryInterval: 1 },
      }),
      3000,
      "PUBACK",
    );
    await first.stop();
    // The broker is down past the 1 s expiry.
    await sleep(Math.max(0, leftAt + 1200 - Date.now()));

    const second = await fileBroker(dir);
    const sessions = getBroker(second.ctx).sessions;
    expect(sessions.has("exp-short")).toBe(false);
    expect(sessions.has("exp-dying")).toBe(false);
    expect(sessions.has("exp-long")).toBe(true);
    const gone = await recorder(second, short);
    expect(connackOf(gone.c)?.sessionPresent).toBe(false);
    const kept = await recorder(second, long);
    expect(connackOf(kept.c)?.sessionPresent).toBe(true);
    await until(() => kept.got.length === 1, 3000, "the queued message of the long session");
    // The will of the expired session went out at start (v5 3.1.3.2.2: the session ended).
    const w2 = await recorder(second, watcher);
    await until(() => w1.got.length + w2.got.length >= 1, 3000, "the expired session's will");
    const late = await recorder(second, { protocolVersion: 5 });
    await within(late.c.subscribeAsync("ex/ret", { qos: 1 }), 3000, "SUBACK");
    await sleep(100);
    expect(late.got).toEqual([]);
    expect(gone.got).toEqual([]);
    expect(kept.got.map((m) => m.payload)).toEqual(["queued"]);
    expect([...w1.got, ...w2.got].map((m) => [m.topic, m.payload])).toEqual([
      ["ex/will/dying", "expired"],
    ]);
    await second.stop();

    // The ended sessions were removed from storage too.
    const stored = await withStorage(dir, (s) => s.readAll());
    // exp-short is there again only as the new session its reconnect made.
    const ids = stored.clients.map((c) => c.clientId).sort();
    expect(ids).toEqual(["exp-long", "exp-short", "exp-watch"]);
    const again = stored.clients.find((c) => c.clientId === "exp-short")!;
    expect(again.subscriptions).toEqual([]);
    expect(again.deliveries).toEqual([]);
  });
});

describe("wills across a restart (MQTT 5.0)", () => {
  it("a delayed will pending at the restart is published after the rest of its delay", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const watcher = persistentOptions(5, "dw-watch", 60);
    const w1 = await recorder(first, watcher);
    await within(w1.c.subscribeAsync("dw/#", { qos: 1 }), 3000, "SUBACK");
    const dying = await rawConnected(
      first,
      5,
      persistentFields(5, "dw-dying", 60, {
        ...delayedWill("dw/dying", "late", 1),
        properties: {
          willDelayInterval: 1,
          contentType: "text/plain",
          userProperties: [["why", "lost"]],
        },
      }),
    );
    const leftAt = Date.now();
    dying.raw.destroy();
    await until(() => getBroker(first.ctx).pendingWills === 1, 3000, "the will scheduled");
    await first.stop();

    const second = await fileBroker(dir);
    expect(getBroker(second.ctx).pendingWills).toBe(1);
    const w2 = await recorder(second, watcher);
    expect(connackOf(w2.c)?.sessionPresent).toBe(true);
    await until(() => w2.got.length === 1, 3000, "the delayed will");
    // Not before its delay, counted from the connection loss before the restart.
    expect(Date.now() - leftAt).toBeGreaterThanOrEqual(950);
    expect(w1.got).toEqual([]);
    expect(w2.got.map((m) => [m.topic, m.payload, m.qos])).toEqual([["dw/dying", "late", 1]]);
    // The will's properties were stored with it (the delay is not forwarded).
    expect(w2.got[0]!.packet.properties?.contentType).toBe("text/plain");
    expect(w2.got[0]!.packet.properties?.userProperties).toEqual({ why: "lost" });
    expect(getBroker(second.ctx).pendingWills).toBe(0);
  });

  it("a client that comes back within the delay after a restart cancels its will, for good", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const watcher = persistentOptions(5, "cw-watch", 60);
    const w1 = await recorder(first, watcher);
    await within(w1.c.subscribeAsync("cw/#", { qos: 1 }), 3000, "SUBACK");
    const dying = await rawConnected(
      first,
      5,
      persistentFields(5, "cw-back", 60, delayedWill("cw/back", "never", 1)),
    );
    const leftAt = Date.now();
    dying.raw.destroy();
    await until(() => getBroker(first.ctx).pendingWills === 1, 3000, "the will scheduled");
    await first.stop();

    const second = await fileBroker(dir);
    const w2 = await recorder(second, watcher);
    const back = await rawConnected(second, 5, persistentFields(5, "cw-back", 60));
    expect(back.connack.sessionPresent).toBe(true);
    expect(getBroker(second.ctx).pendingWills).toBe(0);
    // Past the original deadline: nothing comes.
    await sleep(Math.max(0, leftAt + 1500 - Date.now()));
    expect([...w1.got, ...w2.got]).toEqual([]);
    await second.stop();

    const third = await fileBroker(dir);
    expect(getBroker(third.ctx).pendingWills).toBe(0);
  });

  it.each([4, 5] as const)(
    "a will cleared by DISCONNECT is not published after a restart (MQTT level %i)",
    async (v) => {
      const dir = await tempDir();
      const first = await fileBroker(dir);
      const watcher = persistentOptions(5, `nw-watch-${v}`, 60);
      const w1 = await recorder(first, watcher);
      await within(w1.c.subscribeAsync("nw/#", { qos: 1 }), 3000, "SUBACK");
      const polite = await rawConnected(
        first,
        v,
        persistentFields(v, `nw-polite-${v}`, 60, {
          topic: "nw/polite",
          payload: bytes("must not be sent"),
          qos: 1,
          retain: false,
        }),
      );
      // [MQTT-3.1.2-10]: a normal DISCONNECT deletes the will.
      polite.raw.send({ type: PacketType.DISCONNECT, reasonCode: 0 });
      await within(polite.raw.closed, 3000, "close after DISCONNECT");
      await first.stop();

      const second = await fileBroker(dir);
      const w2 = await recorder(second, watcher);
      expect(connackOf(w2.c)?.sessionPresent).toBe(true);
      expect(getBroker(second.ctx).sessions.has(`nw-polite-${v}`)).toBe(true);
      await sleep(400);
      expect([...w1.got, ...w2.got]).toEqual([]);
      expect(getBroker(second.ctx).pendingWills).toBe(0);
    },
  );

  it("a will published because the broker stopped is not published again when it starts", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir);
    const watcher = persistentOptions(5, "sw-watch", 60);
    const w1 = await recorder(first, watcher);
    await within(w1.c.subscribeAsync("sw/#", { qos: 1 }), 3000, "SUBACK");
    await rawConnected(
      first,
      5,
      persistentFields(5, "sw-live", 60, {
        topic: "sw/live",
        payload: bytes("server shut down"),
        qos: 1,
        retain: false,
      }),
    );
    // The shutdown closes sw-live with 0x8B: its will goes out (live, or queued for the watcher).
    await first.stop();

    const second = await fileBroker(dir);
    expect(getBroker(second.ctx).pendingWills).toBe(0);
    const w2 = await recorder(second, watcher);
    await until(() => w1.got.length + w2.got.length >= 1, 3000, "the will");
    await sleep(400);
    expect([...w1.got, ...w2.got].map((m) => m.payload)).toEqual(["server shut down"]);
  });

  it("a will armed when the broker went down is published when it starts again", async () => {
    const dir = await tempDir();
    const will = (clientId: string, topic: string, payload: string): StoredMessage => ({
      topic,
      payload: bytes(payload),
      qos: 1,
      retain: false,
      expiresAt: 0,
      publisher: clientId,
    });
    // What storage holds after a crash: clients still connected (disconnectedAt 0), wills armed.
    const ops: StorageOp[] = [
      { op: "session", clientId: "armed", info: { expiryInterval: 60, disconnectedAt: 0 } },
      {
        op: "will",
        clientId: "armed",
        will: {
          message: { ...will("armed", "aw/armed", "lost in the crash"), retain: true },
          at: 0,
          delay: 0,
        },
      },
      { op: "session", clientId: "armed-late", info: { expiryInterval: 60, disconnectedAt: 0 } },
      {
        op: "will",
        clientId: "armed-late",
        will: { message: will("armed-late", "aw/late", "after a second"), at: 0, delay: 1 },
      },
      {
        op: "session",
        clientId: "aw-watch",
        info: { expiryInterval: 0xffffffff, disconnectedAt: 0 },
      },
      {
        op: "sub",
        clientId: "aw-watch",
        sub: {
          filter: "aw/#",
          qos: 1,
          noLocal: false,
          retainAsPublished: false,
          retainHandling: 0,
        },
      },
    ];
    await withStorage(dir, (s) => s.write(ops));

    const startedAt = Date.now();
    const broker = await fileBroker(dir);
    // The immediate will went out at start; the delayed one waits.
    expect(getBroker(broker.ctx).pendingWills).toBe(1);
    expect(getBroker(broker.ctx).sessions.has("armed")).toBe(true);
    const watch = await rawConnected(broker, 4, persistentFields(4, "aw-watch"));
    expect(watch.connack.sessionPresent).toBe(true);
    const first = await expectPacket(watch.raw, PacketType.PUBLISH);
    expect([first.topic, new TextDecoder().decode(first.payload), first.qos]).toEqual([
      "aw/armed",
      "lost in the crash",
      1,
    ]);
    watch.raw.send({ type: PacketType.PUBACK, packetId: first.packetId! });
    const second = await expectPacket(watch.raw, PacketType.PUBLISH, 3000);
    expect([second.topic, new TextDecoder().decode(second.payload)]).toEqual([
      "aw/late",
      "after a second",
    ]);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(950);
    // The will was retained: a new subscriber gets it.
    const late = await recorder(broker, { protocolVersion: 5 });
    await within(late.c.subscribeAsync("aw/armed", { qos: 1 }), 3000, "SUBACK");
    await until(() => late.got.length === 1, 3000, "the retained will");
    expect([late.got[0]!.payload, late.got[0]!.retain]).toEqual(["lost in the crash", true]);
  });
});
