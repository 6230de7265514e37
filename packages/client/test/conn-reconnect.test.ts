// The MyQtt Conn's automatic reconnect (ConnOpts.setReconnect): MyQtt's cadence (one attempt a
// second until one succeeds, reference §2.3), the delays a caller may choose instead, on_close
// at each loss followed by on_reconnect (reference §2.7: on_close runs when "the connection
// closed for any reason"), reconnect() and a block() that outlives a reconnect.
import { PublishCode } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { Conn, ConnOpts, ConnStatus } from "../src/index.js";
import { clientCtx } from "./api-helpers.js";
import { sleep, startBroker, until } from "./helpers.js";
import { FakeTimers, rawServer } from "./resilience-helpers.js";

/** Tells the connect timeout apart from reconnect delays among the fake clock's timers. */
const CONNECT_TIMEOUT = 12_345;

/** A Conn with setReconnect (and `delays`) on the fake clock, to a scripted server. */
async function onFakeClock(delays?: Parameters<ConnOpts["setReconnect"]>[1]) {
  const server = await rawServer();
  const timers = new FakeTimers();
  const ctx = await clientCtx();
  const opts = new ConnOpts();
  if (delays === undefined) opts.setReconnect();
  else opts.setReconnect(true, delays);
  opts.timers = timers;
  opts.connectTimeoutMs = CONNECT_TIMEOUT;
  const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "cadence", false, 0, opts);
  expect(conn.isOk()).toBe(true);
  const events: string[] = [];
  conn.setOnClose(() => events.push("close"));
  conn.setOnReconnect(() => events.push("reconnect"));
  /** The reconnect delays asked of the clock so far. */
  const delaysAsked = (): number[] => timers.requested.filter((ms) => ms !== CONNECT_TIMEOUT);
  /** Runs the pending attempt (refused: the server is down) once `ms` passed, not before. */
  const failAttempt = async (ms: number): Promise<void> => {
    const before = delaysAsked().length;
    timers.advance(ms - 1);
    await sleep(20);
    expect(delaysAsked().length, "an attempt came early").toBe(before);
    timers.advance(1);
    await until(() => delaysAsked().length > before, 3000, "the next reconnect delay");
  };
  return { server, timers, conn, events, delaysAsked, failAttempt };
}

describe("ConnOpts.setReconnect: when attempts are made", () => {
  it("as MyQtt: one attempt every 1 s (no growth, no jitter) until the server is back", async () => {
    const t = await onFakeClock();
    await t.server.close();
    await until(() => t.events.includes("close"), 3000, "on_close at the loss");
    expect(t.conn.isOk()).toBe(false);
    expect(t.conn.status).toBe(ConnStatus.CONNECTION_ERROR);
    expect(t.delaysAsked()).toEqual([1000]);
    for (let i = 0; i < 6; i++) await t.failAttempt(1000);
    expect(t.delaysAsked()).toEqual([1000, 1000, 1000, 1000, 1000, 1000, 1000]);
    expect(t.events).toEqual(["close"]);
    // Back: the next tick connects the same Conn.
    await t.server.listen();
    t.timers.advance(1000);
    await until(() => t.events.includes("reconnect"), 3000, "on_reconnect");
    expect(t.events).toEqual(["close", "reconnect"]);
    expect(t.server.conns.length).toBe(2);
    expect(t.conn.isOk()).toBe(true);
    expect(t.conn.status).toBe(ConnStatus.OK);
  });

  it("setReconnect(true, delays) chooses the client's exponential backoff instead", async () => {
    const t = await onFakeClock({ initialDelayMs: 50, maxDelayMs: 200, jitter: 0 });
    await t.server.close();
    await until(() => t.events.includes("close"), 3000, "on_close at the loss");
    for (const ms of [50, 100, 200, 200]) await t.failAttempt(ms);
    expect(t.delaysAsked()).toEqual([50, 100, 200, 200, 200]);
  });

  it("ConnOpts.MYQTT_RECONNECT is the default of setReconnect()", () => {
    const opts = new ConnOpts();
    expect(opts.reconnect).toBe(false);
    opts.setReconnect();
    expect(opts.reconnect).toBe(true);
    expect(opts.reconnectDelays).toBe(ConnOpts.MYQTT_RECONNECT);
    expect(ConnOpts.MYQTT_RECONNECT).toEqual({
      initialDelayMs: 1000,
      maxDelayMs: 1000,
      multiplier: 1,
      jitter: 0,
    });
    opts.setReconnect(false);
    expect(opts.reconnect).toBe(false);
  });

  it("on the real clock: a port that refuses for 3.2 s, then accepts, is back within about 1 s", async () => {
    const server = await rawServer();
    const ctx = await clientCtx();
    const opts = new ConnOpts();
    opts.setReconnect();
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "real-clock", false, 0, opts);
    const at: Record<string, number> = {};
    conn.setOnClose(() => {
      at.close = Date.now();
    });
    conn.setOnReconnect(() => {
      at.reconnect = Date.now();
    });
    await server.close();
    await until(() => at.close !== undefined, 3000, "on_close");
    await sleep(3200);
    expect(at.reconnect).toBeUndefined();
    const listening = Date.now();
    await server.listen();
    await until(() => at.reconnect !== undefined, 3000, "on_reconnect");
    // The attempts tick every second from the loss (1, 2, 3, 4 s): the one after the port opens
    // connects. A doubling backoff (1, 3, 7 s) would wait until 7 s.
    const waited = (at.reconnect ?? 0) - listening;
    expect(waited).toBeLessThan(1500);
    expect((at.reconnect ?? 0) - (at.close ?? 0)).toBeGreaterThanOrEqual(3200);
    expect(conn.isOk()).toBe(true);
  });
});

/** Our broker that drops any client publishing to kick/me (a server-side drop). */
function kickingBroker() {
  return startBroker({}, (bctx) =>
    bctx.setOnPublish((_ctx, _conn, msg) =>
      msg.topic === "kick/me" ? PublishCode.CONN_CLOSE : PublishCode.OK,
    ),
  );
}

describe("on_close and on_reconnect with setReconnect", () => {
  it("each server-side drop runs on_close, then the reconnect runs on_reconnect; close() runs on_close", async () => {
    const ctx = await clientCtx();
    const server = await kickingBroker();
    const opts = new ConnOpts();
    opts.setReconnect();
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "drops", false, 0, opts);
    const events: string[] = [];
    conn.setOnClose((c, data) => events.push(`close ${data} ${c === conn}`), "cd");
    conn.setOnReconnect((c, data) => events.push(`reconnect ${data} ${c === conn}`), "rd");
    for (let drop = 1; drop <= 2; drop++) {
      await conn.pub("kick/me", "bye", 0, false, 0);
      await until(() => events.length === 2 * drop - 1, 3000, `on_close of drop ${drop}`);
      expect(conn.isOk()).toBe(false);
      await until(() => events.length === 2 * drop, 3000, `on_reconnect of drop ${drop}`);
      expect(conn.isOk()).toBe(true);
    }
    expect(events).toEqual([
      "close cd true",
      "reconnect rd true",
      "close cd true",
      "reconnect rd true",
    ]);
    await conn.close();
    expect(events.slice(4)).toEqual(["close cd true"]);
  });

  it("a close() while reconnecting does not run on_close a second time for the same loss", async () => {
    const server = await rawServer();
    const ctx = await clientCtx();
    const opts = new ConnOpts();
    opts.setReconnect();
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "closing", false, 0, opts);
    let closes = 0;
    conn.setOnClose(() => closes++);
    await server.close();
    await until(() => closes === 1, 3000, "on_close at the loss");
    await conn.close();
    await sleep(50);
    expect(closes).toBe(1);
    expect(conn.status).toBe(ConnStatus.CONNECTION_CLOSE_CALLED);
  });
});

describe("Conn.reconnect()", () => {
  it("drops and connects again now: on_close, on_reconnect, true; subscriptions kept", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const opts = new ConnOpts();
    opts.setReconnect();
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "manual", true, 0, opts);
    const other = await Conn.connect(ctx, "127.0.0.1", server.port, "manual-pub");
    expect(await conn.sub("man/#", 1)).toEqual([true, 1]);
    const events: string[] = [];
    conn.setOnClose(() => events.push("close"));
    conn.setOnReconnect(() => events.push("reconnect"));
    const localPort = conn.localPort;
    const started = Date.now();
    expect(await conn.reconnect()).toBe(true);
    // At once, not after the 1 s reconnect delay.
    expect(Date.now() - started).toBeLessThan(500);
    expect(events).toEqual(["close", "reconnect"]);
    expect(conn.isOk()).toBe(true);
    expect(conn.localPort).not.toBe(localPort);
    const next = conn.getNext(3000);
    expect(await other.pub("man/1", "after", 1, false, 10)).toBe(true);
    expect((await next)?.content).toBe("after");
  });

  it("false when the server is gone (attempts go on); false without setReconnect, the connection untouched", async () => {
    const server = await rawServer();
    const ctx = await clientCtx();
    const opts = new ConnOpts();
    opts.setReconnect();
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "gone", false, 0, opts);
    const reconnects: number[] = [];
    conn.setOnReconnect(() => reconnects.push(Date.now()));
    await server.close();
    await until(() => !conn.isOk(), 3000, "the loss");
    expect(await conn.reconnect()).toBe(false);
    await server.listen();
    await until(() => reconnects.length === 1, 3000, "the next automatic attempt");

    const plain = await Conn.connect(ctx, "127.0.0.1", server.port, "plain");
    expect(plain.isOk()).toBe(true);
    expect(await plain.reconnect()).toBe(false);
    expect(plain.isOk()).toBe(true);
    expect(server.conns.length).toBe(3);
    // Nor on a connection that never connected.
    const failed = await Conn.connect(ctx, "127.0.0.1", 1, "never", false, 0, opts);
    expect(await failed.reconnect()).toBe(false);
  });

  it("a block() outlives the reconnect: the new connection is not read either until block(false)", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const opts = new ConnOpts();
    opts.setReconnect();
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "blocked", true, 0, opts);
    const other = await Conn.connect(ctx, "127.0.0.1", server.port, "blocked-pub");
    expect(await conn.sub("bl/#", 1)).toEqual([true, 1]);
    const got: string[] = [];
    conn.setOnMsg((_ctx, _conn, msg) => got.push(msg.content));
    conn.block();
    expect(await conn.reconnect()).toBe(true);
    expect(conn.isBlocked()).toBe(true);
    expect(await other.pub("bl/1", "held", 1, false, 10)).toBe(true);
    await sleep(200);
    expect(got).toEqual([]);
    conn.block(false);
    await until(() => got.length === 1, 3000, "the held message");
    expect(got).toEqual(["held"]);
  });
});
