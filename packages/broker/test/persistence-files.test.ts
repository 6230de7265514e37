// The file storage as a broker user meets it: a locked directory, ctx.storageSetPath, and
// MyQtt's storage operations (offline publish, load) on the storage a broker uses.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Ctx } from "@myqtt/core";
import { FileStorage, MemoryStorage } from "@myqtt/storage";
import { describe, expect, it } from "vitest";
import { createListener, getBroker } from "../src/index.js";
import { rawConnected, receivePublishes, recorder, text } from "./flow-helpers.js";
import { client, onCleanup, until } from "./helpers.js";
import { connackOf } from "./lifecycle-support.js";
import {
  fileBroker,
  persistentFields,
  persistentOptions,
  startWith,
  tempDir,
  within,
  withStorage,
} from "./persistence-helpers.js";

/** A context whose cleanup exits it; `setup` runs before anything else. */
async function freshCtx(setup?: (ctx: Ctx) => void): Promise<Ctx> {
  const ctx = new Ctx();
  await ctx.init();
  onCleanup(() => ctx.exit());
  setup?.(ctx);
  return ctx;
}

describe("a storage directory in use", () => {
  it("createListener on a directory locked by an open FileStorage is not ok, says why, and throws nothing", async () => {
    const dir = await tempDir();
    const holder = new FileStorage({ path: dir, hashSize: 64 });
    await holder.open();
    onCleanup(() => holder.close());

    const ctx = await freshCtx();
    const listener = await createListener(ctx, "127.0.0.1", 0, {
      storage: new FileStorage({ path: dir, hashSize: 64 }),
    });
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toMatch(/storage/);
    expect(listener.errorMsg).toMatch(/in use|already open|lock/);

    // The same through ctx.storageSetPath and the default "file" choice.
    const other = await freshCtx((c) => c.storageSetPath(dir, 64));
    const second = await createListener(other, "127.0.0.1", "0");
    expect(second.isOk()).toBe(false);
    expect(second.errorMsg).toMatch(/storage/);
    await other.exit();

    // The holder still owns it, and once it lets go a broker starts there.
    await holder.sub("owner", "still/mine", 1);
    expect(await holder.subCount("owner")).toBe(1);
    await holder.close();
    const broker = await fileBroker(dir);
    expect(getBroker(broker.ctx).sessions.has("owner")).toBe(true);
  });
});

describe("a closed Storage instance", () => {
  it("cannot serve a second broker: the listener is not ok and says the storage is not open", async () => {
    const storage = new MemoryStorage();
    const first = await startWith({}, () => storage);
    await first.stop();
    expect(storage.isOpen).toBe(false);
    const ctx = await freshCtx();
    const listener = await createListener(ctx, "127.0.0.1", 0, { storage });
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toMatch(/storage/);
  });
});

describe("ctx.storageSetPath", () => {
  it("makes the broker keep its sessions in files there (hash size honoured), restored on restart", async () => {
    const dir = await tempDir();
    const run = () => startWith({}, undefined, (ctx) => ctx.storageSetPath(dir, 128));
    const first = await run();
    const storage = getBroker(first.ctx).storage;
    expect(storage?.kind).toBe("file");
    expect((storage as FileStorage).path).toBe(dir);
    expect((storage as FileStorage).hashSize).toBe(128);

    const options = persistentOptions(4, "set-path");
    const sub = await recorder(first, options);
    await within(sub.c.subscribeAsync("sp/#", { qos: 1 }), 3000, "SUBACK");
    await within(sub.c.endAsync(), 3000, "DISCONNECT");
    const publisher = await client(first, {});
    await within(publisher.publishAsync("sp/x", "kept on disk", { qos: 1 }), 3000, "PUBACK");
    expect((await readdir(dir)).sort()).toEqual(["FORMAT", "LOCK", "clients", "retained", "wal"]);
    await first.stop();

    // Folded into per-client files at close, in one of 128 buckets; the lock is released.
    expect((await readdir(dir)).sort()).toEqual(["FORMAT", "clients", "retained", "wal"]);
    const buckets = await readdir(join(dir, "clients"));
    expect(buckets.length).toBeGreaterThan(0);
    for (const b of buckets) {
      expect(Number(b)).toBeGreaterThanOrEqual(0);
      expect(Number(b)).toBeLessThan(128);
    }
    const files = (await Promise.all(buckets.map((b) => readdir(join(dir, "clients", b))))).flat();
    expect(files.some((f) => f.endsWith(".rec"))).toBe(true);

    const second = await run();
    const back = await recorder(second, options);
    expect(connackOf(back.c)?.sessionPresent).toBe(true);
    await until(() => back.got.length === 1, 3000, "the queued message");
    expect(back.got.map((m) => [m.topic, m.payload, m.qos])).toEqual([["sp/x", "kept on disk", 1]]);
  });
});

describe("MyQtt storage operations with a broker", () => {
  it("offlinePub before the broker starts: the client gets the message when it connects", async () => {
    const dir = await tempDir();
    const storage = new FileStorage({ path: dir, hashSize: 64 });
    await storage.open();
    onCleanup(() => storage.close());
    const seq = await storage.offlinePub("c1", "t/1", "hello", 1);
    expect(seq).toBeGreaterThan(0);
    expect(await storage.queuedMessages("c1")).toBe(1);

    // The broker starts on that same (already open) storage.
    const broker = await startWith({}, () => storage);
    const c1 = await rawConnected(broker, 4, persistentFields(4, "c1"));
    expect(c1.connack.sessionPresent).toBe(true);
    const [p] = await receivePublishes(c1.raw, 1);
    expect([p!.topic, text(p!.payload), p!.qos, p!.retain]).toEqual(["t/1", "hello", 1, false]);
    // Acknowledged: it leaves storage.
    await until(
      () => getBroker(broker.ctx).sessions.get("c1")?.inflightCount === 0,
      3000,
      "PUBACK",
    );
    await storage.flush();
    expect(await storage.queuedMessages("c1")).toBe(0);
  });

  it("load() counts 15 stored subscriptions after 5 clients subscribed to 3 filters each (test_14a)", async () => {
    const dir = await tempDir();
    const broker = await fileBroker(dir);
    const storage = broker.storage!;
    for (let i = 0; i < 5; i++) {
      const c = await client(broker, persistentOptions(i % 2 === 0 ? 4 : 5, `load-${i}`));
      for (const f of ["a/#", "b/+/c", `own/${i}`])
        await within(c.subscribeAsync(f, { qos: 1 }), 3000, `SUBACK ${f}`);
    }
    // A clean session's subscriptions are not stored.
    const clean = await client(broker, { clientId: "load-clean" });
    await within(clean.subscribeAsync(["x/1", "x/2", "x/3"], { qos: 1 }), 3000, "SUBACK");
    // SUBACKs go out once stored: the count is right at once.
    expect(await storage.load()).toBe(15);
    expect(await storage.subCount("load-3")).toBe(3);
    expect(await storage.subExists("load-4", "own/4")).toBe(true);
    expect(await storage.subCount("load-clean")).toBe(0);
    await broker.stop();

    expect(await withStorage(dir, (s) => s.load())).toBe(15);
    const again = await fileBroker(dir);
    expect(again.logs.some((l) => /15 stored subscriptions loaded/.test(l))).toBe(true);
  });
});
