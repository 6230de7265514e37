import { describe, expect, it, vi } from "vitest";
import { Ctx } from "./ctx.js";
import { LogLevel } from "./log.js";

describe("Ctx", () => {
  it("inits and exits (MyQtt test_00, PyMyQtt test_01)", async () => {
    const ctx = new Ctx();
    expect(ctx.isReady).toBe(false);
    expect(await ctx.init()).toBe(true);
    expect(ctx.isReady).toBe(true);
    await ctx.exit();
    expect(ctx.isExiting).toBe(true);
    expect(await ctx.init()).toBe(false);
  });

  it("keeps several contexts independent", async () => {
    const a = new Ctx();
    const b = new Ctx();
    await a.init();
    await b.init();
    a.setData("k", 1);
    b.setData("k", 2);
    a.storageSetPath("/tmp/a", 128);
    expect([a.getData("k"), b.getData("k")]).toEqual([1, 2]);
    expect([a.storagePath, a.storageHashSize, b.storagePath, b.storageHashSize]).toEqual([
      "/tmp/a",
      128,
      ".myqtt-storage",
      4096,
    ]);
    await a.exit();
    expect(b.isReady).toBe(true);
    expect(a.id).not.toBe(b.id);
  });

  it("is silent by default and sends log lines to the handler with its data", async () => {
    const ctx = new Ctx();
    expect(ctx.logging).toBe(false);
    ctx.log(LogLevel.DEBUG, "test", "nobody hears this");
    const lines: unknown[][] = [];
    ctx.setLogHandler(
      (c, file, line, level, msg, data) => lines.push([c, file, line, level, msg, data]),
      { tag: 1 },
    );
    expect(ctx.logging).toBe(true);
    ctx.log(LogLevel.WARNING, "broker/connect", "hello");
    expect(lines).toEqual([[ctx, "broker/connect", 0, LogLevel.WARNING, "hello", { tag: 1 }]]);
    ctx.setLogHandler((): void => {
      throw new Error("broken handler");
    });
    expect(() => ctx.log(LogLevel.CRITICAL, "x", "y")).not.toThrow();
  });

  it("hides the levels of its log filter from the handler, and says which it shows", () => {
    const ctx = new Ctx();
    expect(ctx.logs(LogLevel.CRITICAL)).toBe(false); // no handler: nothing is shown
    const lines: string[] = [];
    ctx.setLogHandler((_c, _file, _line, _level, msg) => lines.push(msg));
    ctx.setLogFilter(LogLevel.DEBUG | LogLevel.WARNING);
    expect([LogLevel.DEBUG, LogLevel.WARNING, LogLevel.CRITICAL].map((l) => ctx.logs(l))).toEqual([
      false,
      false,
      true,
    ]);
    ctx.log(LogLevel.DEBUG, "t", "debug");
    ctx.log(LogLevel.WARNING, "t", "warning");
    ctx.log(LogLevel.CRITICAL, "t", "critical");
    ctx.setLogFilter(0);
    ctx.log(LogLevel.DEBUG, "t", "debug again");
    expect(lines).toEqual(["critical", "debug again"]);
    expect(ctx.logs(LogLevel.DEBUG)).toBe(true);
  });

  it("runs a timed event until its handler returns true", async () => {
    const ctx = new Ctx();
    await ctx.init();
    const calls: [string, number][] = [];
    await new Promise<void>((resolve) => {
      ctx.newEvent(
        2_000,
        (c, d1: string, d2: number) => {
          expect(c).toBe(ctx);
          calls.push([d1, d2]);
          if (calls.length === 3) {
            setTimeout(resolve, 20);
            return true;
          }
          return false;
        },
        "a",
        7,
      );
    });
    expect(calls).toEqual([
      ["a", 7],
      ["a", 7],
      ["a", 7],
    ]);
    await ctx.exit();
  });

  it("removes an event, and exit stops every event", async () => {
    const ctx = new Ctx();
    await ctx.init();
    const handler = vi.fn(() => false);
    const id = ctx.newEvent(1_000, handler);
    expect(ctx.removeEvent(id)).toBe(true);
    expect(ctx.removeEvent(id)).toBe(false);
    const other = vi.fn(() => false);
    ctx.newEvent(1_000, other);
    await ctx.exit();
    await new Promise((r) => setTimeout(r, 20));
    expect(handler).not.toHaveBeenCalled();
    expect(other).not.toHaveBeenCalled();
  });

  it("logs an event handler that throws and keeps the event running", async () => {
    const ctx = new Ctx();
    await ctx.init();
    const lines: string[] = [];
    ctx.setLogHandler((_c, _f, _l, _lv, msg) => lines.push(msg));
    let n = 0;
    await new Promise<void>((resolve) => {
      ctx.newEvent(1_000, () => {
        n++;
        if (n === 1) throw new Error("boom");
        resolve();
        return true;
      });
    });
    expect(n).toBe(2);
    expect(lines.some((l) => l.includes("boom"))).toBe(true);
    await ctx.exit();
  });

  it("runs exit hooks, and a cancelled one not", async () => {
    const ctx = new Ctx();
    await ctx.init();
    const ran: string[] = [];
    ctx.onExit(() => ran.push("a"));
    const cancel = ctx.onExit(() => ran.push("b"));
    ctx.onExit(async () => {
      await new Promise((r) => setTimeout(r, 5));
      ran.push("c");
    });
    cancel();
    await ctx.exit();
    expect(ran.sort()).toEqual(["a", "c"]);
  });

  it("stores hooks with their data", () => {
    const ctx = new Ctx();
    const h = (): number => 0;
    ctx.setOnConnect(h, "d");
    expect(ctx.hooks.connect).toEqual({ handler: h, data: "d" });
    ctx.setOnConnect(null);
    expect(ctx.hooks.connect).toBeNull();
  });

  it("refuses a bad storage path or hash size", () => {
    const ctx = new Ctx();
    expect(() => ctx.storageSetPath("", 1)).toThrow(TypeError);
    expect(() => ctx.storageSetPath("x", 0)).toThrow(RangeError);
  });
});
