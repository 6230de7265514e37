// The offline queue: publishes made while the client reconnects wait, within bounds, and go out
// once it is back; what does not fit is refused at once, and nothing else is lost. The same
// queue, with the same bounds, holds what waits for room in the server's Receive Maximum while
// connected.
import { PublishCode } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import {
  AbortedError,
  ConnectionClosedError,
  type MqttClient,
  NotConnectedError,
  QueueFullError,
  type Subscription,
} from "../src/index.js";
import { client, sleep, startBroker } from "./helpers.js";
import { FAST, nextContent, observedBroker, settle, track, until } from "./resilience-helpers.js";

/**
 * Our broker with a subscriber on `off/#` and a publisher (reconnect on, `options`) that the
 * test can take offline: its connection is dropped and its reconnects are refused until
 * `online()`.
 */
async function setup(options: Parameters<typeof client>[1] = {}) {
  const b = await observedBroker();
  const sub = await client(b.server, { clientId: "off-sub" });
  const subscription = await sub.subscribe("off/#", { qos: 2 });
  const pub = await client(b.server, { clientId: "off-pub", reconnect: FAST, ...options });
  const events = track(pub);
  const offline = async (): Promise<void> => {
    b.refuse.add("off-pub");
    b.connOf("off-pub").shutdown();
    await until(() => pub.state === "reconnecting", 2000, "the publisher offline");
  };
  const online = async (): Promise<void> => {
    b.refuse.delete("off-pub");
    await until(() => pub.connected, 3000, "the publisher back");
  };
  return { b, sub, subscription, pub, events, offline, online };
}

/** Every message arriving on the subscription within `ms` (as text). */
async function drain(subscription: Subscription, ms = 300): Promise<string[]> {
  const got: string[] = [];
  for (;;) {
    try {
      got.push(await nextContent(subscription, ms));
    } catch {
      return got;
    }
  }
}

function pending(c: MqttClient): number {
  return c.pendingPublishes;
}

describe("offline queue", () => {
  it("QoS 1 and 2 publishes made while reconnecting wait, then are delivered in order", async () => {
    const t = await setup();
    await t.offline();
    const results = Array.from({ length: 6 }, (_, i) =>
      settle(t.pub.publish(`off/${i}`, `m${i}`, { qos: ((i % 2) + 1) as 1 | 2 })),
    );
    let settled = 0;
    for (const r of results) void r.then(() => settled++);
    await sleep(200); // several refused reconnect attempts
    expect(t.pub.state).toBe("reconnecting");
    expect(settled).toBe(0);
    expect(pending(t.pub)).toBe(6);
    await t.online();
    const outcomes = await Promise.all(results);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true, true, true, true]);
    expect(await drain(t.subscription)).toEqual(["m0", "m1", "m2", "m3", "m4", "m5"]);
    expect(pending(t.pub)).toBe(0);
    expect(t.events).toEqual(["offline", "connect", "reconnect"]);
  });

  it("QoS 0 while offline is refused with NotConnectedError (and never sent later)", async () => {
    const t = await setup();
    await t.offline();
    await expect(t.pub.publish("off/q0", "lost?")).rejects.toBeInstanceOf(NotConnectedError);
    expect(pending(t.pub)).toBe(0);
    await t.online();
    await t.pub.publish("off/q0", "after", { qos: 1 });
    expect(await drain(t.subscription)).toEqual(["after"]);
  });

  it("QoS 0 while offline is queued with offlineQueue.qos0 and delivered after reconnect", async () => {
    const t = await setup({ offlineQueue: { qos0: true } });
    await t.offline();
    const results = [
      settle(t.pub.publish("off/a", "zero-1")),
      settle(t.pub.publish("off/b", "one", { qos: 1 })),
      settle(t.pub.publish("off/c", "zero-2")),
    ];
    await sleep(100);
    expect(pending(t.pub)).toBe(3);
    await t.online();
    expect((await Promise.all(results)).map((r) => r.ok)).toEqual([true, true, true]);
    const got = await drain(t.subscription);
    expect([...got].sort()).toEqual(["one", "zero-1", "zero-2"]);
  });

  it("maxMessages: the excess is refused with QueueFullError, the rest is delivered", async () => {
    const t = await setup({ offlineQueue: { maxMessages: 3 } });
    await t.offline();
    const results = Array.from({ length: 5 }, (_, i) =>
      settle(t.pub.publish(`off/${i}`, `m${i}`, { qos: 1 })),
    );
    // Refused at once, not after the reconnect.
    const refused = await Promise.race([
      Promise.all([results[3]!, results[4]!]),
      sleep(500).then(() => null),
    ]);
    expect(refused).not.toBeNull();
    for (const r of refused!) {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toBeInstanceOf(QueueFullError);
    }
    expect(pending(t.pub)).toBe(3);
    await t.online();
    const first = await Promise.all(results.slice(0, 3));
    expect(first.map((r) => r.ok)).toEqual([true, true, true]);
    expect(await drain(t.subscription)).toEqual(["m0", "m1", "m2"]);
  });

  it("maxMessages counts queued QoS 0 too", async () => {
    const t = await setup({ offlineQueue: { maxMessages: 2, qos0: true } });
    await t.offline();
    const a = settle(t.pub.publish("off/a", "a"));
    const b = settle(t.pub.publish("off/b", "b", { qos: 1 }));
    const c = await settle(t.pub.publish("off/c", "c"));
    const d = await settle(t.pub.publish("off/d", "d", { qos: 2 }));
    expect(c.ok || d.ok).toBe(false);
    for (const r of [c, d]) if (!r.ok) expect(r.error).toBeInstanceOf(QueueFullError);
    await t.online();
    expect((await Promise.all([a, b])).map((r) => r.ok)).toEqual([true, true]);
    expect([...(await drain(t.subscription))].sort()).toEqual(["a", "b"]);
  });

  it("maxBytes (payload + topic): what would overflow is refused, what fits is kept", async () => {
    // Each "off/x" + 10-byte payload counts 15 bytes; 37 allowed.
    const t = await setup({ offlineQueue: { maxBytes: 37 } });
    await t.offline();
    const m1 = settle(t.pub.publish("off/1", "0123456789", { qos: 1 }));
    const m2 = settle(t.pub.publish("off/2", "0123456789", { qos: 1 }));
    const m3 = await settle(t.pub.publish("off/3", "0123456789", { qos: 1 })); // 45 > 37
    const m4 = await settle(t.pub.publish("off/4", "abc", { qos: 1 })); // 38 > 37
    const m5 = settle(t.pub.publish("off/5", "ab", { qos: 2 })); // 37: fits
    expect(m3.ok).toBe(false);
    if (!m3.ok) expect(m3.error).toBeInstanceOf(QueueFullError);
    expect(m4.ok).toBe(false);
    if (!m4.ok) expect(m4.error).toBeInstanceOf(QueueFullError);
    expect(pending(t.pub)).toBe(3);
    await t.online();
    expect((await Promise.all([m1, m2, m5])).map((r) => r.ok)).toEqual([true, true, true]);
    expect(await drain(t.subscription)).toEqual(["0123456789", "0123456789", "ab"]);
  });

  it("the queue has room again once it drained", async () => {
    const t = await setup({ offlineQueue: { maxMessages: 2 } });
    for (let round = 0; round < 3; round++) {
      await t.offline();
      const ok = [
        settle(t.pub.publish("off/r", `r${round}a`, { qos: 1 })),
        settle(t.pub.publish("off/r", `r${round}b`, { qos: 1 })),
      ];
      const over = await settle(t.pub.publish("off/r", `r${round}c`, { qos: 1 }));
      expect(over.ok).toBe(false);
      await t.online();
      expect((await Promise.all(ok)).map((r) => r.ok)).toEqual([true, true]);
    }
    expect(await drain(t.subscription)).toEqual(["r0a", "r0b", "r1a", "r1b", "r2a", "r2b"]);
  });

  it("aborting a queued publish removes it: it is never sent and frees its place", async () => {
    const t = await setup({ offlineQueue: { maxMessages: 3 } });
    await t.offline();
    const controllers = [0, 1, 2].map(() => new AbortController());
    const results = controllers.map((ac, i) =>
      settle(t.pub.publish(`off/${i}`, `m${i}`, { qos: 1, signal: ac.signal })),
    );
    controllers[1]!.abort("changed my mind");
    const aborted = await results[1]!;
    expect(aborted.ok).toBe(false);
    if (!aborted.ok) expect(aborted.error).toBeInstanceOf(AbortedError);
    expect(pending(t.pub)).toBe(2);
    // Its place is free again.
    const fourth = settle(t.pub.publish("off/3", "m3", { qos: 2 }));
    expect(pending(t.pub)).toBe(3);
    await t.online();
    expect((await Promise.all([results[0]!, results[2]!, fourth])).map((r) => r.ok)).toEqual([
      true,
      true,
      true,
    ]);
    expect(await drain(t.subscription)).toEqual(["m0", "m2", "m3"]);
  });

  it("a queued QoS 0 publish can be aborted too", async () => {
    const t = await setup({ offlineQueue: { qos0: true } });
    await t.offline();
    const ac = new AbortController();
    const gone = settle(t.pub.publish("off/x", "aborted", { signal: ac.signal }));
    const kept = settle(t.pub.publish("off/y", "kept"));
    ac.abort();
    const r = await gone;
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toBeInstanceOf(AbortedError);
    await t.online();
    expect((await kept).ok).toBe(true);
    expect(await drain(t.subscription)).toEqual(["kept"]);
  });

  it("closing the client while messages are queued rejects them (none is dropped silently)", async () => {
    const t = await setup();
    await t.offline();
    const results = [
      settle(t.pub.publish("off/1", "a", { qos: 1 })),
      settle(t.pub.publish("off/2", "b", { qos: 2 })),
    ];
    t.pub.destroy();
    for (const r of await Promise.all(results)) {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toBeInstanceOf(ConnectionClosedError);
    }
    expect(t.pub.state).toBe("closed");
    await expect(t.pub.publish("off/3", "c", { qos: 1 })).rejects.toBeInstanceOf(NotConnectedError);
  });
});

describe("the publish queue while connected: the same bound as offline", () => {
  /**
   * Our broker announcing Receive Maximum `receiveMaximum` (5.0) that holds the PUBACK of
   * every q/ publish until the test releases it, a subscriber on q/#, and a publisher.
   */
  async function heldWindow(
    receiveMaximum: number,
    offlineQueue: { maxMessages?: number; maxBytes?: number },
  ) {
    const held: Array<() => void> = [];
    const server = await startBroker({ receiveMaximum }, (ctx) =>
      ctx.setOnPublish((_ctx, _conn, msg) => {
        if (!msg.topic.startsWith("q/")) return PublishCode.OK;
        return new Promise((resolve) => held.push(() => resolve(PublishCode.OK)));
      }),
    );
    const receiver = await client(server, { protocolVersion: 5 });
    const subscription = await receiver.subscribe("q/#", { qos: 2 });
    const pub = await client(server, { protocolVersion: 5, offlineQueue });
    expect(pub.serverProperties.receiveMaximum).toBe(receiveMaximum);
    /** Releases held acknowledgements until `done()`. */
    const releaseUntil = async (done: () => boolean): Promise<void> => {
      while (!done()) {
        await until(() => held.length > 0 || done(), 2000, "a held publish");
        held.shift()?.();
        await sleep(5);
      }
    };
    return { held, subscription, pub, releaseUntil };
  }

  it("maxMessages: publishes fired behind a full Receive Maximum beyond it reject at once with QueueFullError; the rest arrive once each", async () => {
    const t = await heldWindow(2, { maxMessages: 5 });
    const results = Array.from({ length: 10 }, (_, i) =>
      settle(t.pub.publish(`q/${i}`, `m${i}`, { qos: ((i % 2) + 1) as 1 | 2 })),
    );
    // The broker holds the first (and reads no further from the publisher meanwhile).
    await until(() => t.held.length === 1, 2000, "a publish held");
    // Two in flight (the window), five queued (the bound), three refused: before anything
    // was acknowledged.
    const refused = await Promise.race([
      Promise.all(results.slice(7)),
      sleep(500).then(() => null),
    ]);
    expect(refused).not.toBeNull();
    for (const r of refused!) {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toBeInstanceOf(QueueFullError);
    }
    expect(t.pub.pendingPublishes).toBe(7);
    let settled = 0;
    for (const r of results.slice(0, 7)) void r.then(() => settled++);
    await t.releaseUntil(() => settled === 7);
    expect((await Promise.all(results.slice(0, 7))).map((r) => r.ok)).toEqual(Array(7).fill(true));
    expect(await drain(t.subscription)).toEqual(["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    expect(t.pub.pendingPublishes).toBe(0);
    // Room again once it drained.
    const again = settle(t.pub.publish("q/again", "again", { qos: 1 }));
    await t.releaseUntil(() => t.pub.pendingPublishes === 0);
    expect((await again).ok).toBe(true);
  });

  it("maxBytes: what would overflow the queue behind the window is refused, what fits is kept", async () => {
    // "q/N" + a 10-byte payload counts 13 bytes; 30 allowed. The first goes in flight.
    const t = await heldWindow(1, { maxBytes: 30 });
    const m0 = settle(t.pub.publish("q/0", "0123456789", { qos: 1 }));
    const m1 = settle(t.pub.publish("q/1", "0123456789", { qos: 1 })); // 13
    const m2 = settle(t.pub.publish("q/2", "0123456789", { qos: 2 })); // 26
    const m3 = await settle(t.pub.publish("q/3", "0123456789", { qos: 1 })); // 39 > 30
    const m4 = settle(t.pub.publish("q/4", "abcd", { qos: 1 })); // 33 > 30
    const m5 = settle(t.pub.publish("q/5", "a", { qos: 2 })); // 30: fits
    expect(m3.ok).toBe(false);
    if (!m3.ok) expect(m3.error).toBeInstanceOf(QueueFullError);
    const r4 = await m4;
    expect(r4.ok).toBe(false);
    if (!r4.ok) expect(r4.error).toBeInstanceOf(QueueFullError);
    expect(t.pub.pendingPublishes).toBe(4);
    await t.releaseUntil(() => t.pub.pendingPublishes === 0);
    expect((await Promise.all([m0, m1, m2, m5])).map((r) => r.ok)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(await drain(t.subscription)).toEqual(["0123456789", "0123456789", "0123456789", "a"]);
  });
});
