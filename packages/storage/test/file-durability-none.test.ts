// Durability "none": a write resolves once its change is in memory, before it is on disk; the
// log is written behind, and close() waits for it, so a reopen after close() sees everything.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { readFrames } from "../src/file/frames.js";
import { delivery, openFile, removeTempDirs, segments, stateOf, tempDir } from "./file-helpers.js";

afterEach(removeTempDirs);

describe('FileStorage with durability "none"', () => {
  it("writes resolve before they are on disk, yet after close() a reopen sees them all", async () => {
    const root = await tempDir();
    const s = await openFile(root, { durability: "none" });
    const [segment] = await segments(root);
    // 200 writes, each awaited, with no turn of the event loop in between: an "fsync" or
    // "async" write needs one (its file write completes as an I/O event), a "none" write does
    // not. The log writes are chained one after the other, each started when the one before
    // completed, which takes a turn of the event loop: at most the first can be on disk.
    for (let i = 1; i <= 200; i++) {
      await s.write({ op: "delivery", clientId: `c${i % 10}`, delivery: delivery(i) });
    }
    // Read synchronously: an asynchronous read would let the log writes go on meanwhile.
    const onDisk = readFrames(readFileSync(segment!), () => {});
    expect(onDisk.length).toBeLessThanOrEqual(1);
    // Yet every write is readable at once.
    const state = await stateOf(s);
    expect(
      state.clients.flatMap((c) => c.deliveries.map((d) => d.seq)).sort((a, b) => a - b),
    ).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    // The log catches up soon after, without close().
    for (let i = 0; i < 200 && readFrames(readFileSync(segment!), () => {}).length < 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(readFrames(readFileSync(segment!), () => {})).toHaveLength(200);
    await s.close();

    const t = await openFile(root);
    expect(await stateOf(t)).toEqual(state);
    await t.close();
  });

  it("writes not awaited before close() are on disk after it, compactions included", async () => {
    const root = await tempDir();
    const s = await openFile(root, { durability: "none", compactAfterBytes: 4096 });
    const writes: Promise<void>[] = [];
    for (let i = 1; i <= 530; i++) {
      writes.push(s.write({ op: "delivery", clientId: `c${i % 7}`, delivery: delivery(i) }));
      if (i % 50 === 0) await Promise.all(writes.splice(0));
    }
    // 30 writes still pending.
    await s.close();
    await Promise.all(writes);
    const t = await openFile(root);
    const seqs = (await stateOf(t)).clients.flatMap((c) => c.deliveries.map((d) => d.seq));
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 530 }, (_, i) => i + 1));
    await t.close();
  });
});
