// The PyMyQtt manual's examples (spec/pymyqtt-manual.txt) in the TypeScript shape that
// architecture.md gives them, run against our broker. Only the address differs: 127.0.0.1 and a
// free port instead of localhost:1883.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createListener, unlockListeners, waitListeners } from "@myqtt/broker";
import { ConnackCode, Ctx, PublishCode } from "@myqtt/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Conn, ConnOpts } from "../src/index.js";
import { onCleanup, startBroker, until } from "./helpers.js";

// What `import * as myqtt from "myqtt"` provides (the umbrella package re-exports these).
const myqtt = {
  Ctx,
  Conn,
  ConnOpts,
  createListener,
  waitListeners,
  unlockListeners,
  qos0: 0,
  qos1: 1,
  PUBLISH_OK: PublishCode.OK,
  PUBLISH_DISCARD: PublishCode.DISCARD,
  CONNACK_ACCEPTED: ConnackCode.ACCEPTED,
  CONNACK_BAD_USERNAME_OR_PASSWORD: ConnackCode.BAD_USERNAME_OR_PASSWORD,
} as const;

afterEach(() => {
  vi.restoreAllMocks();
});

describe("the manual's client, steps 1 to 5", () => {
  it("creates a ctx, connects, subscribes, publishes and prints the message it gets back", async () => {
    const server = await startBroker();
    const port = String(server.port);
    const printed: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      printed.push(args.join(" "));
    });
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
      errors.push(args.join(" "));
    });

    // 1. create and init the context
    const ctx = new myqtt.Ctx();
    onCleanup(() => ctx.exit());
    const ready = await ctx.init();
    expect(ready).toBe(true);

    // 2. connect (never throws)
    const conn = await myqtt.Conn.connect(ctx, "127.0.0.1", port);
    if (!conn.isOk()) console.error(conn.errorMsg);
    expect(conn.isOk()).toBe(true);

    // 3. subscribe
    const [status, subQos] = await conn.sub("topic", myqtt.qos0, 10);
    expect(status).toBe(true);
    expect(subQos).toBe(0);

    // 4. publish (true = done)
    const done = await conn.pub("topic", "this is a test message", myqtt.qos0, true, 10);
    expect(done).toBe(true);

    // 5. receive
    // biome-ignore lint/style/useTemplate: written as architecture.md shows it
    conn.setOnMsg((_ctx, _conn, msg, _data) => console.log("Msg content: " + msg.content));

    await until(() => printed.length > 0, 3000, "the message handler to print");
    expect(printed).toEqual(["Msg content: this is a test message"]);
    expect(errors).toEqual([]);
  });

  it("step 2 with nothing listening: isOk() is false and errorMsg says why", async () => {
    const ctx = new myqtt.Ctx();
    onCleanup(() => ctx.exit());
    expect(await ctx.init()).toBe(true);
    const server = await startBroker();
    const port = server.port;
    await server.ctx.exit();
    const conn = await myqtt.Conn.connect(ctx, "127.0.0.1", String(port));
    expect(conn.isOk()).toBe(false);
    expect(conn.errorMsg).toBeTruthy();
  });
});

describe("the manual's server, seen by clients", () => {
  it("listener with on_publish discarding a topic and on_connect accepting aspl:test only", async () => {
    const dir = mkdtempSync(join(tmpdir(), "myqtt-listener-"));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));

    const ctx = new myqtt.Ctx();
    onCleanup(() => ctx.exit());
    expect(await ctx.init()).toBe(true);
    ctx.storageSetPath(join(dir, ".myqtt-listener"), 4096);
    const listener = await myqtt.createListener(ctx, "127.0.0.1", "0");
    expect(listener.isOk()).toBe(true);
    ctx.setOnPublish((_ctx, _conn, msg) =>
      msg.topic === "discard/this/topic" ? myqtt.PUBLISH_DISCARD : myqtt.PUBLISH_OK,
    );
    ctx.setOnConnect(async (_ctx, conn) =>
      conn.username === "aspl" && conn.password === "test"
        ? myqtt.CONNACK_ACCEPTED
        : myqtt.CONNACK_BAD_USERNAME_OR_PASSWORD,
    );
    let unlocked = false;
    const waiting = myqtt.waitListeners(ctx, { unlockOnSignal: true }).then(() => {
      unlocked = true;
    });

    const clientCtx = new myqtt.Ctx();
    onCleanup(() => clientCtx.exit());
    expect(await clientCtx.init()).toBe(true);
    const port = String(listener.port);

    const anonymous = await myqtt.Conn.connect(clientCtx, "127.0.0.1", port);
    expect(anonymous.isOk()).toBe(false);
    expect(anonymous.lastErr).toBe(myqtt.CONNACK_BAD_USERNAME_OR_PASSWORD);

    const opts = new myqtt.ConnOpts();
    opts.setAuth("aspl", "test");
    const conn = await myqtt.Conn.connect(clientCtx, "127.0.0.1", port, null, false, 0, opts);
    expect(conn.isOk()).toBe(true);
    const [status] = await conn.sub("news/#", myqtt.qos1, 10);
    expect(status).toBe(true);
    const next = conn.getNext(2000);
    expect(await conn.pub("news/today", "routed", myqtt.qos1, false, 10)).toBe(true);
    expect((await next)?.content).toBe("routed");
    // Discarded: no acknowledgement within the wait, so the publish is not done.
    expect(await conn.pub("discard/this/topic", "dropped", myqtt.qos1, false, 1)).toBe(false);

    expect(unlocked).toBe(false);
    myqtt.unlockListeners(ctx);
    await waiting;
    expect(unlocked).toBe(true);
  });
});
