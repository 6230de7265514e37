// What waits to be written: `pendingBytes` counts each change from write() until the commit
// that carries it is done (for durability "none", until its log record is on disk), and
// `whenBelow` resolves once it fell under a mark. A broker holds back the clients that write
// faster than the storage commits with them (see the broker's maxStoragePendingBytes).
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { readFrames } from "../src/file/frames.js";
import { MemoryStorage } from "../src/memory.js";
import type { StorageOp, StoredDelivery } from "../src/types.js";
import { crash, delivery, openFile, removeTempDirs, segments, tempDir } from "./file-helpers.js";

afterEach(removeTempDirs);

/** `count` deliveries of `size`-byte payloads, spread over ten clients. */
function deliveries(count: number, size: number, firstSeq = 1): StorageOp[] {
  return Array.from({ length: count }, (_, i): StorageOp => {
    const d = delivery(firstSeq + i);
    const big: StoredDelivery = {
      ...d,
      message: { ...d.message, payload: new Uint8Array(size).fill(i & 0xff) },
    };
    return { op: "delivery", clientId: `client-${i % 10}`, delivery: big };
  });
}

/** Whether `p` has settled by now (after the microtasks queued before this call). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

describe("FileStorage: pendingBytes and whenBelow", () => {
  it("counts a write from write() until its commit is done, then releases it", async () => {
    const s = await openFile(await tempDir());
    expect(s.pendingBytes).toBe(0);
    const written = s.write(deliveries(100, 1000));
    // Counted at once: the payloads and a constant per change (272 bytes for a delivery).
    expect(s.pendingBytes).toBeGreaterThanOrEqual(100 * 1000);
    expect(s.pendingBytes).toBeLessThan(100 * (1000 + 400));
    const below = s.whenBelow(1);
    // The commit writes and syncs a file: it is not done within a few microtasks.
    expect(await settled(below)).toBe(false);
    // Writes made meanwhile count too, until their own commit.
    const more = s.write(deliveries(10, 1000, 1000));
    expect(s.pendingBytes).toBeGreaterThanOrEqual(110 * 1000);
    const committed: string[] = [];
    void written.then(() => committed.push("first"));
    void more.then(() => committed.push("more"));
    await below;
    // Resolved after the writes' own promises, once nothing was left.
    expect(committed).toEqual(["first", "more"]);
    expect(s.pendingBytes).toBe(0);
    // Already below: resolves at once.
    expect(await settled(s.whenBelow(1))).toBe(true);
    await s.close();
  });

  it("resolves each mark when the storage falls under it", async () => {
    const s = await openFile(await tempDir());
    const first = s.write(deliveries(50, 2000));
    const high = s.pendingBytes;
    const second = s.write(deliveries(50, 2000, 100));
    // Above the first batch's bytes alone: resolves once the storage is back under it.
    const underHigh = s.whenBelow(high + 1);
    const empty = s.whenBelow(1);
    expect(await settled(underHigh)).toBe(false);
    await Promise.all([first, second, underHigh, empty]);
    expect(s.pendingBytes).toBe(0);
    await s.close();
  });

  it("releases the bytes of a commit that failed", async () => {
    const s = await openFile(await tempDir());
    // A value the log cannot encode: the commit fails, as a write error would.
    const [op] = deliveries(1, 5000) as [StorageOp & { op: "delivery" }];
    const bad: StorageOp = {
      ...op,
      delivery: {
        ...op.delivery,
        message: {
          ...op.delivery.message,
          properties: { contentType: (() => "x") as unknown as string },
        },
      },
    };
    const failed = s.write(bad);
    expect(s.pendingBytes).toBeGreaterThanOrEqual(5000);
    await expect(failed).rejects.toMatchObject({ code: "IO" });
    expect(s.pendingBytes).toBe(0);
    await s.whenBelow(1);
    await s.close();
  });

  it("writes a commit above 4 MiB as several records, in order; a crash finds them all", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    const [segment] = await segments(root);
    // 300 deliveries of 40 KB: about 12 MiB in one commit.
    const ops = deliveries(300, 40_000);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    try {
      await s.write(ops);
    } finally {
      clearInterval(ticker);
    }
    const records = readFrames(readFileSync(segment!), () => {});
    expect(records.length).toBeGreaterThanOrEqual(3);
    // Each record is written before the next is encoded: the event loop runs in between.
    expect(turns).toBeGreaterThanOrEqual(records.length - 1);
    // The log alone (no compaction into the client files) brings it all back.
    await crash(s);
    const t = await openFile(root);
    const back = (await t.readAll()).clients.flatMap((c) => c.deliveries);
    expect(back.map((d) => d.seq).sort((a, b) => a - b)).toEqual(ops.map((_, i) => i + 1));
    for (const d of back) {
      const sent = (ops[d.seq - 1] as StorageOp & { op: "delivery" }).delivery.message.payload;
      expect(Buffer.compare(d.message.payload, sent)).toBe(0);
    }
    await t.close();
  });

  it('durability "none": counts the log records until they are on disk', async () => {
    const root = await tempDir();
    const s = await openFile(root, { durability: "none" });
    const [segment] = await segments(root);
    // Each write resolves before its record is written (see file-durability-none.test.ts).
    for (let i = 1; i <= 200; i++) {
      await s.write({ op: "delivery", clientId: `c${i % 10}`, delivery: delivery(i) });
    }
    expect(s.pendingBytes).toBeGreaterThan(0);
    await s.whenBelow(1);
    // Read synchronously: every record is on disk once whenBelow resolved.
    expect(readFrames(readFileSync(segment!), () => {})).toHaveLength(200);
    expect(s.pendingBytes).toBe(0);
    await s.close();
  });
});

describe("MemoryStorage: pendingBytes and whenBelow", () => {
  it("never counts anything: a commit copies nothing and is done at once", async () => {
    const s = new MemoryStorage();
    await s.open();
    const written = s.write(deliveries(100, 10_000));
    expect(s.pendingBytes).toBe(0);
    expect(await settled(s.whenBelow(1))).toBe(true);
    await written;
    await s.close();
  });
});
