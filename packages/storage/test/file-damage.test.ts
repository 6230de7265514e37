// FileStorage opening damaged directories: a cut or corrupted log, damaged client and retained
// files, stray files. Whatever is damaged is reported (a warning naming the file) and skipped;
// everything else loads, open() resolves, and the storage works on afterwards.
//
// Data reaches the log without being compacted by not closing the storage (close compacts):
// crash() in file-helpers.ts abandons the instance and removes its LOCK file, standing for the
// lock of a dead process (see there).
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { frame } from "../src/file/frames.js";
import { bucketOf } from "../src/file/names.js";
import { encodeValue } from "../src/file/value-codec.js";
import {
  captureLog,
  clientFile,
  crash,
  delivery,
  HASH_SIZE,
  message,
  openFile,
  recordOffsets,
  removeTempDirs,
  retainedFile,
  segments,
  settle,
  stateOf,
  subscription,
  tempDir,
} from "./file-helpers.js";

afterEach(removeTempDirs);

/** Three topics whose retained messages land in three different bucket files. */
function topicsInDistinctBuckets(count: number): string[] {
  const out: string[] = [];
  const used = new Set<number>();
  for (let i = 0; out.length < count; i++) {
    const topic = `sensors/${i}/temperature`;
    const bucket = bucketOf(topic, HASH_SIZE);
    if (used.has(bucket)) continue;
    used.add(bucket);
    out.push(topic);
  }
  return out;
}

describe("FileStorage opening a damaged log", () => {
  it("(a) a segment whose last record is cut: what is before loads, a warning names the file", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    for (let i = 1; i <= 5; i++) {
      await s.write({ op: "delivery", clientId: "a", delivery: delivery(i) });
    }
    await crash(s);
    const [segment] = await segments(root);
    const size = (await stat(segment!)).size;
    await truncate(segment!, size - 3);

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    const client = await t.readClient("a");
    expect(client?.deliveries.map((d) => d.seq)).toEqual([1, 2, 3, 4]);
    const warnings = log.warnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(basename(segment!));
    expect(warnings[0]).toMatch(/cut short/);
    await t.close();
  });

  it("(a) a segment cut inside the last record's header loads the records before it", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    for (let i = 1; i <= 3; i++)
      await s.write({ op: "sub", clientId: "a", sub: subscription(`t/${i}`) });
    await crash(s);
    const [segment] = await segments(root);
    const buf = await readFile(segment!);
    const last = recordOffsets(buf).at(-1)!;
    await truncate(segment!, last + 7);

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    expect((await t.readClient("a"))?.subscriptions.map((x) => x.filter)).toEqual(["t/1", "t/2"]);
    expect(log.warnings().some((w) => w.includes(basename(segment!)))).toBe(true);
    await t.close();
  });

  it("(b) a flipped byte inside a middle record: the groups before and after load, that group is lost", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    await s.write([
      { op: "delivery", clientId: "before", delivery: delivery(1) },
      { op: "retain", message: message("r/before", "kept", true) },
    ]);
    await s.write([
      { op: "delivery", clientId: "middle", delivery: delivery(2) },
      { op: "sub", clientId: "before", sub: subscription("lost/filter") },
      { op: "retain", message: message("r/middle", "lost", true) },
    ]);
    await s.write([
      { op: "delivery", clientId: "after", delivery: delivery(3) },
      { op: "retain", message: message("r/after", "kept", true) },
    ]);
    await crash(s);
    const [segment] = await segments(root);
    const buf = await readFile(segment!);
    const offsets = recordOffsets(buf);
    expect(offsets).toHaveLength(3);
    const middle = Math.floor((offsets[1]! + 12 + offsets[2]!) / 2);
    buf[middle]! ^= 0x01;
    await writeFile(segment!, buf);

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    const state = await stateOf(t);
    expect(state.clients.map((c) => c.clientId)).toEqual(["after", "before"]);
    expect(state.clients.find((c) => c.clientId === "before")?.subscriptions).toEqual([]);
    expect(state.retained.map((m) => m.topic)).toEqual(["r/after", "r/before"]);
    const warnings = log.warnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(basename(segment!));
    expect(warnings[0]).toMatch(/checksum/);
    expect(warnings[0]).toContain(`byte ${offsets[1]}`);
    await t.close();
  });

  it("a damaged record in an older segment loses only that record; later segments load", async () => {
    const root = await tempDir();
    // Two crashes leave two segments: the first run's and the second run's.
    const s = await openFile(root);
    await s.write({ op: "delivery", clientId: "a", delivery: delivery(1) });
    await s.write({ op: "delivery", clientId: "a", delivery: delivery(2) });
    await crash(s);
    const [first] = await segments(root);
    const firstBytes = await readFile(first!);
    const t = await openFile(root);
    await t.write({ op: "delivery", clientId: "a", delivery: delivery(3) });
    await crash(t);
    // The first segment was compacted away at the second open; put it back, damaged, beside
    // the second run's segment, as if that compaction had not happened.
    const offsets = recordOffsets(firstBytes);
    firstBytes[offsets[0]! + 14]! ^= 0xff;
    await writeFile(first!, firstBytes);

    const log = captureLog();
    const u = await openFile(root, { log: log.log });
    expect((await u.readClient("a"))?.deliveries.map((d) => d.seq)).toEqual([1, 2, 3]);
    // Record 1 was damaged in the put-back copy, but it was already in a.rec from the compaction.
    expect(log.warnings().some((w) => w.includes(basename(first!)))).toBe(true);
    await u.close();
  });
});

describe("FileStorage opening damaged client and retained files", () => {
  it("(c) a client file full of garbage: that client is skipped with a warning, the others load", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    for (const id of ["alice", "bob", "carol"]) {
      await s.write([
        { op: "sub", clientId: id, sub: subscription(`inbox/${id}`) },
        { op: "delivery", clientId: id, delivery: delivery(1) },
      ]);
    }
    await s.close();
    const bobFile = clientFile(root, "bob");
    expect(existsSync(bobFile)).toBe(true);
    await writeFile(bobFile, "this is not a record at all\n".repeat(10));

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    const state = await stateOf(t);
    expect(state.clients.map((c) => c.clientId)).toEqual(["alice", "carol"]);
    expect(state.clients[0]!.subscriptions.map((x) => x.filter)).toEqual(["inbox/alice"]);
    const warnings = log.warnings();
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    for (const w of warnings) expect(w).toContain(bobFile);
    await t.close();
  });

  it("(c) a client file with a valid record that is not a client: skipped with a warning", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    await s.write({ op: "sub", clientId: "alice", sub: subscription("a") });
    await s.write({ op: "sub", clientId: "bob", sub: subscription("b") });
    await s.close();
    const bobFile = clientFile(root, "bob");
    await writeFile(bobFile, frame(encodeValue({ hello: "world" })));

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    expect((await stateOf(t)).clients.map((c) => c.clientId)).toEqual(["alice"]);
    expect(log.warnings()).toEqual([expect.stringContaining(bobFile)]);
    expect(log.warnings()[0]).toMatch(/not a client record/);
    await t.close();
  });

  it("(c) a client file cut short: skipped with a warning, the others load", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    await s.write({ op: "delivery", clientId: "alice", delivery: delivery(1) });
    await s.write({ op: "delivery", clientId: "bob", delivery: delivery(2) });
    await s.close();
    const bobFile = clientFile(root, "bob");
    await truncate(bobFile, (await stat(bobFile)).size - 1);

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    expect((await stateOf(t)).clients.map((c) => c.clientId)).toEqual(["alice"]);
    expect(log.warnings()).toEqual([expect.stringContaining(bobFile)]);
    await t.close();
  });

  it("(d) a retained bucket file cut to 5 bytes: a warning, the other buckets load", async () => {
    const root = await tempDir();
    const topics = topicsInDistinctBuckets(3);
    const s = await openFile(root);
    for (const topic of topics) await s.retainMsgSet(topic, 1, `value of ${topic}`);
    await s.close();
    const damaged = retainedFile(root, topics[1]!);
    expect(existsSync(damaged)).toBe(true);
    await truncate(damaged, 5);

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    expect(await t.getRetainedTopics("#")).toEqual(expect.arrayContaining([topics[0], topics[2]]));
    expect((await t.getRetainedTopics("#")).sort()).toEqual([topics[0]!, topics[2]!].sort());
    expect(log.warnings()).toEqual([expect.stringContaining(basename(damaged))]);
    await t.close();
  });

  it("(d) a retained file holding something else than a list of messages is skipped", async () => {
    const root = await tempDir();
    const topics = topicsInDistinctBuckets(2);
    const s = await openFile(root);
    for (const topic of topics) await s.retainMsgSet(topic, 0, "v");
    await s.close();
    await writeFile(retainedFile(root, topics[0]!), frame(encodeValue({ not: "a list" })));

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    expect(await t.getRetainedTopics("#")).toEqual([topics[1]]);
    expect(log.warnings()).toHaveLength(1);
    await t.close();
  });
});

describe("FileStorage opening a directory with stray files", () => {
  async function seeded(): Promise<{ root: string; before: Awaited<ReturnType<typeof stateOf>> }> {
    const root = await tempDir();
    const s = await openFile(root);
    await s.write([
      { op: "sub", clientId: "alice", sub: subscription("a/#") },
      { op: "delivery", clientId: "alice", delivery: delivery(1) },
      { op: "delivery", clientId: "bob", delivery: delivery(2) },
      { op: "retain", message: message("r/1", "one", true) },
    ]);
    const before = await stateOf(s);
    await s.close();
    return { root, before };
  }

  it("(e) garbage files never crash the open; stray temporary client files are removed", async () => {
    const { root, before } = await seeded();
    const aliceDir = dirname(clientFile(root, "alice"));
    await mkdir(join(root, "clients", "12"), { recursive: true });
    await writeFile(join(root, "clients", "12", "foo.rec"), "not a record, just some text\n");
    await writeFile(join(aliceDir, "x.tmp"), "half-written temporary file");
    await writeFile(`${clientFile(root, "alice")}.tmp`, "a replacement cut by a crash");
    await writeFile(join(root, "clients", "a-file-not-a-bucket"), "text");
    await mkdir(join(root, "clients", "not-a-number"), { recursive: true });
    await mkdir(join(root, "clients", "7", "dir.rec"), { recursive: true });
    await writeFile(join(root, "wal", "0000000000000042.log"), "");
    await writeFile(join(root, "wal", "notes.txt"), "not a segment");
    await writeFile(join(root, "retained", "junk.rec"), "MQR1 garbage after a magic");
    await writeFile(join(root, "retained", "x.txt"), "ignored");

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    expect(await stateOf(t)).toEqual(before);
    expect(existsSync(join(aliceDir, "x.tmp"))).toBe(false);
    expect(existsSync(`${clientFile(root, "alice")}.tmp`)).toBe(false);
    expect(log.lines.filter((l) => l.level === "critical")).toEqual([]);
    // Writes go on, and survive a reopen; the zero-byte segment did not confuse the numbering.
    await t.write({ op: "delivery", clientId: "carol", delivery: delivery(3) });
    await crash(t);
    const u = await openFile(root);
    expect((await u.readClient("carol"))?.deliveries.map((d) => d.seq)).toEqual([3]);
    expect((await stateOf(u)).clients.map((c) => c.clientId)).toEqual(["alice", "bob", "carol"]);
    await u.close();
  });

  it("(e) a zero-byte or garbage-only segment loads as nothing, with no crash", async () => {
    const { root, before } = await seeded();
    await writeFile(join(root, "wal", "0000000000000100.log"), "");
    await writeFile(join(root, "wal", "0000000000000101.log"), Buffer.alloc(4096, 0));
    await writeFile(join(root, "wal", "0000000000000102.log"), "MQR1MQR1MQR1");
    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    expect(await stateOf(t)).toEqual(before);
    await t.write({ op: "delivery", clientId: "bob", delivery: delivery(9) });
    await crash(t);
    // The new segment is numbered after the stray ones, so it is replayed after them.
    const names = (await segments(root)).map((p) => basename(p));
    expect(names.at(-1)! > "0000000000000102.log").toBe(true);
    const u = await openFile(root);
    expect((await u.readClient("bob"))?.deliveries.map((d) => d.seq)).toEqual([2, 9]);
    await u.close();
  });

  it("(e) a leftover temporary file in retained/ (a crash during compaction) is removed at open", async () => {
    const { root, before } = await seeded();
    const tmp = `${retainedFile(root, "r/1")}.tmp`;
    await writeFile(tmp, "a retained bucket replacement cut by a crash");
    const t = await openFile(root);
    expect(await stateOf(t)).toEqual(before);
    // Expected like clients/<bucket>/*.tmp, which readClientFiles removes.
    expect(existsSync(tmp)).toBe(false);
    await t.close();
  });

  it("(e) a stray segment with the largest 16-digit number does not stop later opens or lose writes", async () => {
    const { root, before } = await seeded();
    await writeFile(join(root, "wal", "9999999999999999.log"), "");
    const t = await openFile(root);
    expect(await stateOf(t)).toEqual(before);
    await t.write({ op: "delivery", clientId: "bob", delivery: delivery(9) });
    await crash(t);
    const u = await openFile(root);
    expect((await u.readClient("bob"))?.deliveries.map((d) => d.seq)).toEqual([2, 9]);
    await u.close();
  });
});

describe("FileStorage after loading damaged data", () => {
  it("(f) new writes work and survive reopens; they go to a new segment, not after the garbage", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    for (let i = 1; i <= 4; i++) {
      await s.write({ op: "delivery", clientId: `c${i}`, delivery: delivery(i) });
    }
    await crash(s);
    const [damaged] = await segments(root);
    const buf = await readFile(damaged!);
    const offsets = recordOffsets(buf);
    buf[offsets[1]! + 20]! ^= 0x10; // damages group 2
    const cut = buf.subarray(0, buf.length - 2); // cuts group 4
    await writeFile(damaged!, cut);

    const log = captureLog();
    const t = await openFile(root, { log: log.log });
    expect((await stateOf(t)).clients.map((c) => c.clientId)).toEqual(["c1", "c3"]);
    expect(log.warnings()).toHaveLength(2);
    await t.write({ op: "delivery", clientId: "c5", delivery: delivery(5) });
    await t.write({ op: "delivery", clientId: "c2", delivery: delivery(22) });
    // The damaged segment is never appended to: it is either untouched or compacted away.
    if (existsSync(damaged!)) expect((await readFile(damaged!)).equals(cut)).toBe(true);
    const live = await segments(root);
    expect(live.every((p) => p === damaged || basename(p) > basename(damaged!))).toBe(true);
    await crash(t);

    const log2 = captureLog();
    const u = await openFile(root, { log: log2.log });
    const state = await stateOf(u);
    expect(state.clients.map((c) => c.clientId)).toEqual(["c1", "c2", "c3", "c5"]);
    expect(state.clients.find((c) => c.clientId === "c2")?.deliveries.map((d) => d.seq)).toEqual([
      22,
    ]);
    // Nothing damaged is left: the new records were written to a clean segment.
    expect(log2.lines).toEqual([]);
    await u.write({ op: "release", clientId: "c1", seq: 1 });
    await u.close();

    const v = await openFile(root);
    expect((await stateOf(v)).clients.map((c) => c.clientId)).toEqual(["c2", "c3", "c5"]);
    await v.close();
  });

  it("(f) a damaged client file is replaced by the next compaction once that client changes", async () => {
    const root = await tempDir();
    const s = await openFile(root);
    await s.write({ op: "delivery", clientId: "alice", delivery: delivery(1) });
    await s.write({ op: "delivery", clientId: "bob", delivery: delivery(2) });
    await s.close();
    await writeFile(clientFile(root, "bob"), Buffer.from("garbage"));

    const t = await openFile(root, { log: captureLog().log });
    await t.write({ op: "sub", clientId: "bob", sub: subscription("new/filter") });
    await settle(t);
    await t.close();

    const log = captureLog();
    const u = await openFile(root, { log: log.log });
    const bob = await u.readClient("bob");
    expect(bob?.subscriptions.map((x) => x.filter)).toEqual(["new/filter"]);
    expect(bob?.deliveries).toEqual([]);
    expect(log.warnings()).toEqual([]);
    expect(
      new TextDecoder().decode((await u.readClient("alice"))?.deliveries[0]?.message.payload),
    ).toBe("message 1");
    await u.close();
    // What close() leaves: one empty segment, everything else in the files.
    expect(await readdir(join(root, "wal"))).toHaveLength(1);
  });
});
