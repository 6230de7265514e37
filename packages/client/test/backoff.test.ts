// Reconnect delays: the backoffDelay function, and the schedule a client asks its timers for.
import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { backoffDelay, connect, type MqttClient } from "../src/index.js";
import { onCleanup, sleep } from "./helpers.js";
import { FakeTimers, rawServer, until } from "./resilience-helpers.js";

describe("backoffDelay", () => {
  const none = (): number => 0;

  it("starts at 1 s and doubles up to the 30 s cap by default", () => {
    const delays = Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, {}, none));
    expect(delays).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000, 30_000,
    ]);
  });

  it("stays at the cap for very large attempt numbers (no Infinity, no NaN)", () => {
    for (const attempt of [64, 100, 1000, 1_000_000, Number.MAX_SAFE_INTEGER])
      expect(backoffDelay(attempt, {}, none)).toBe(30_000);
    expect(backoffDelay(5000, { initialDelayMs: 50, maxDelayMs: 200 }, none)).toBe(200);
  });

  it("honours initialDelayMs, maxDelayMs and multiplier", () => {
    const o = { initialDelayMs: 50, maxDelayMs: 200, jitter: 0 };
    expect([0, 1, 2, 3, 4].map((a) => backoffDelay(a, o, none))).toEqual([50, 100, 200, 200, 200]);
    const triple = { initialDelayMs: 100, maxDelayMs: 10_000, multiplier: 3, jitter: 0 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, triple, none))).toEqual([
      100, 300, 900, 2700, 8100, 10_000,
    ]);
    // multiplier 1: a constant delay.
    expect(
      [0, 5, 50].map((a) => backoffDelay(a, { initialDelayMs: 700, multiplier: 1 }, none)),
    ).toEqual([700, 700, 700]);
  });

  it("takes off up to 20 % of each delay at random by default", () => {
    // delay × (1 − 0.2 × r)
    expect(backoffDelay(0, {}, () => 0)).toBe(1000);
    expect(backoffDelay(0, {}, () => 0.5)).toBe(900);
    expect(backoffDelay(0, {}, () => 0.999_999)).toBe(800);
    expect(backoffDelay(3, {}, () => 0.25)).toBe(7600);
    expect(backoffDelay(20, {}, () => 0.5)).toBe(27_000);
  });

  it("keeps every jittered delay within [base × (1 − jitter), base]", () => {
    for (const jitter of [0, 0.1, 0.2, 0.5, 1]) {
      for (let attempt = 0; attempt < 8; attempt++) {
        const base = Math.min(30_000, 1000 * 2 ** attempt);
        for (let i = 0; i <= 100; i++) {
          const r = Math.min(i / 100, 0.999_999);
          const d = backoffDelay(attempt, { jitter }, () => r);
          expect(d).toBeGreaterThanOrEqual(Math.floor(base * (1 - jitter)));
          expect(d).toBeLessThanOrEqual(base);
        }
      }
    }
    // With the real Math.random too.
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(2, {});
      expect(d).toBeGreaterThanOrEqual(3200);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });

  it("clamps jitter to [0, 1]: never negative, never above the base", () => {
    expect(backoffDelay(1, { jitter: 5 }, () => 0.5)).toBe(1000);
    expect(backoffDelay(1, { jitter: 5 }, () => 0.999_999)).toBeGreaterThanOrEqual(0);
    expect(backoffDelay(1, { jitter: -3 }, () => 0.999_999)).toBe(2000);
  });

  it("returns whole milliseconds", () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(i % 7, { initialDelayMs: 333, multiplier: 1.7 }, Math.random);
      expect(Number.isInteger(d)).toBe(true);
    }
  });
});

describe("the client's reconnect schedule (fake timers)", () => {
  const CONNECT_TIMEOUT = 12_345; // tells the connect timeout apart from reconnect delays

  async function setup(reconnect: boolean | object, random: () => number) {
    const server = await rawServer();
    const timers = new FakeTimers();
    const c: MqttClient = await connect(server.url, {
      keepAlive: 0,
      connectTimeoutMs: CONNECT_TIMEOUT,
      reconnect: reconnect as boolean,
      timers,
      random,
    });
    onCleanup(() => c.destroy());
    const errors: Error[] = [];
    c.on("error", (e) => errors.push(e));
    const events: string[] = [];
    c.on("offline", () => events.push("offline"));
    c.on("reconnect", () => events.push("reconnect"));
    /** Reconnect delays asked for so far (the connect timeouts left out). */
    const delays = (): number[] => timers.requested.filter((ms) => ms !== CONNECT_TIMEOUT);
    return { server, timers, c, errors, events, delays };
  }

  /** Runs the pending reconnect timer, then waits until the failed attempt asks for the next. */
  async function failAttempt(
    t: Awaited<ReturnType<typeof setup>>,
    expectedDelay: number,
  ): Promise<void> {
    const before = t.delays().length;
    // Not a millisecond early.
    t.timers.advance(expectedDelay - 1);
    expect(t.server.conns.length).toBe(1);
    expect(t.delays().length).toBe(before);
    t.timers.advance(1);
    await until(() => t.delays().length > before, 3000, "the next reconnect delay");
  }

  it("tries again after 1 s, 2 s, 4 s, 8 s, 16 s, then every 30 s while the server is gone", async () => {
    const t = await setup(true, () => 0);
    expect(t.delays()).toEqual([]);
    await t.server.close();
    await until(() => t.events.includes("offline"), 3000, "offline");
    expect(t.c.state).toBe("reconnecting");
    expect(t.delays()).toEqual([1000]);
    for (const d of [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]) await failAttempt(t, d);
    expect(t.delays()).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(t.c.state).toBe("reconnecting");
    expect(t.errors.length).toBe(7); // each failed attempt is reported
    // The server comes back: the pending 30 s attempt connects...
    await t.server.listen();
    t.timers.advance(30_000);
    await until(() => t.events.includes("reconnect"), 3000, "reconnect");
    expect(t.server.conns.length).toBe(2);
    expect(t.c.state).toBe("connected");
    // ...and the schedule starts again from 1 s at the next loss.
    await t.server.close();
    await until(() => t.events.filter((e) => e === "offline").length === 2, 3000, "offline");
    expect(t.delays().at(-1)).toBe(1000);
  });

  it("applies the jitter of the injected random to every delay", async () => {
    const t = await setup(true, () => 0.5); // × 0.9
    await t.server.close();
    await until(() => t.events.includes("offline"), 3000, "offline");
    for (const d of [900, 1800, 3600, 7200, 14_400, 27_000]) await failAttempt(t, d);
    expect(t.delays()).toEqual([900, 1800, 3600, 7200, 14_400, 27_000, 27_000]);
  });

  it("uses the reconnect options' delays and cap", async () => {
    const t = await setup({ initialDelayMs: 50, maxDelayMs: 200, jitter: 0 }, () => 0.7);
    await t.server.close();
    await until(() => t.events.includes("offline"), 3000, "offline");
    for (const d of [50, 100, 200, 200]) await failAttempt(t, d);
    expect(t.delays()).toEqual([50, 100, 200, 200, 200]);
  });

  it("asks for no reconnect timer at all with reconnect: false, and closes", async () => {
    const t = await setup(false, () => 0);
    let closed = false;
    t.c.on("close", () => {
      closed = true;
    });
    await t.server.close();
    await until(() => closed, 3000, "close");
    expect(t.events).toEqual([]);
    expect(t.delays()).toEqual([]);
    expect(t.c.state).toBe("closed");
  });

  it("reconnect() tries at once (no backoff wait) and starts the schedule over", async () => {
    const t = await setup(true, () => 0);
    await t.server.close();
    await until(() => t.events.includes("offline"), 3000, "offline");
    for (const d of [1000, 2000, 4000]) await failAttempt(t, d);
    expect(t.delays().at(-1)).toBe(8000);
    await t.server.listen();
    // "Reconnects now": no clock time passes, yet the client connects.
    t.c.reconnect();
    t.timers.advance(0);
    await until(() => t.events.includes("reconnect"), 3000, "reconnect without waiting");
    expect(t.c.state).toBe("connected");
    // The schedule starts over at the next loss.
    await t.server.close();
    await until(() => t.events.filter((e) => e === "offline").length === 2, 3000, "offline");
    expect(t.delays().at(-1)).toBe(1000);
  });

  it("an attempt the server never answers (no CONNACK) times out after connectTimeoutMs, then the schedule goes on", async () => {
    const server = await rawServer({
      autoConnack: false,
      onPacket: (conn, p) => {
        if (p.type === PacketType.CONNECT && conn.index === 0)
          conn.send({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 });
      },
    });
    const timers = new FakeTimers();
    const c = await connect(server.url, {
      keepAlive: 0,
      connectTimeoutMs: CONNECT_TIMEOUT,
      timers,
      random: () => 0,
    });
    onCleanup(() => c.destroy());
    c.on("error", () => {});
    const delays = (): number[] => timers.requested.filter((ms) => ms !== CONNECT_TIMEOUT);
    server.conns[0]!.destroy();
    await until(() => c.state === "reconnecting", 2000, "offline");
    timers.advance(1000);
    await until(() => server.conns[1]?.connect != null, 2000, "the attempt's CONNECT");
    expect(timers.hasPending(CONNECT_TIMEOUT)).toBe(true);
    timers.advance(CONNECT_TIMEOUT - 1);
    await sleep(30);
    expect(delays()).toEqual([1000]);
    timers.advance(1);
    await until(() => delays().length === 2, 2000, "the next reconnect delay");
    expect(delays()).toEqual([1000, 2000]);
    await until(() => server.conns[1]!.closed, 2000, "the hung connection dropped");
    expect(c.state).toBe("reconnecting");
  });
});
