import { type FileHandle, mkdir, open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe } from "../errors.js";
import { StateModel, snapshotOf } from "../model.js";
import { opBytes, Storage, type StorageOptions } from "../storage.js";
import type { Durability, StorageOp, StoredClient, StoredMessage, StoredState } from "../types.js";
import { removeFile, syncDirectory, writeAtomically } from "./atomic-file.js";
import { lockDirectory } from "./dir-lock.js";
import { frame, readFrames } from "./frames.js";
import { bucketOf, clientFileName } from "./names.js";
import { decodeValue, encodeValue } from "./value-codec.js";

/** Options of the file backend. */
export interface FileStorageOptions extends StorageOptions {
  /** The root directory (created with mode 0700 when missing). */
  path: string;
  /** Buckets that client files and retained messages are spread over (default 4096). */
  hashSize?: number;
  /** When a write counts as done (default "fsync"). */
  durability?: Durability;
  /** Log size in bytes after which it is folded into the per-client files (default 64 MiB). */
  compactAfterBytes?: number;
}

const SEGMENT = /^(\d{16,24})\.log$/;
const FORMAT_FILE = "FORMAT";
const READ_CONCURRENCY = 32;
/**
 * About the most one log record carries (as counted in pendingBytes). A larger commit is
 * written as several records, in order, each written (and in fsync mode synced) before the
 * next is encoded. Encoding runs at about 130 MiB/s on the event loop: one record of a 64 MiB
 * commit would hold every connection up for half a second, and a backlog of 1 KiB messages to
 * 4000 offline sessions once made one commit larger than a Buffer can be (4 GiB; the write
 * failed). A crash leaves a prefix of the records, as it leaves a prefix of the commits. With
 * 4 MiB (about 30 ms to encode) a 520 MB backlog was written about as fast as with one record
 * per commit; 1 MiB records, each synced, took 15% longer.
 */
const RECORD_BYTES = 4 * 1024 * 1024;

/**
 * The crash-safe file backend. Every group of changes is appended to a write-ahead log as one
 * checksummed record (one write and, in `fsync` mode, one fdatasync per group: group commit).
 * When the log grows past `compactAfterBytes`, and at close, the changed clients are written
 * to their own files (`clients/<bucket>/<encoded id>.rec`) and retained messages to
 * `retained/<bucket>.rec`, each replaced atomically, and the old log is removed. At open, the
 * files are read and the log replayed over them; damaged records are logged and skipped.
 */
export class FileStorage extends Storage {
  readonly kind = "file";
  readonly path: string;
  /** The bucket count in use: the one the directory was created with, once opened. */
  hashSize: number;
  readonly durability: Durability;
  private readonly compactAfterBytes: number;
  private readonly model = new StateModel();
  private dirtyClients = new Set<string>();
  private dirtyBuckets = new Set<number>();
  /** Retained topics by bucket, to rewrite one bucket file without scanning all topics. */
  private readonly retainedBuckets = new Map<number, Set<string>>();
  /** Log segments, oldest first; the last one is being appended to. */
  private segments: string[] = [];
  private wal: FileHandle | null = null;
  private walBytes = 0;
  private nextSegment = 1n;
  /** The log writes of the commit running now (queued, in "none" mode). */
  private writing: Promise<void> | null = null;
  /** Log writes not yet done (none mode). */
  private background: Promise<void> = Promise.resolve();
  private compacting: Promise<void> | null = null;
  private unlock: (() => Promise<void>) | null = null;

  constructor(options: FileStorageOptions) {
    super(options);
    if (typeof options.path !== "string" || options.path.length === 0)
      throw new TypeError("FileStorage needs a path");
    const hashSize = options.hashSize ?? 4096;
    if (!Number.isInteger(hashSize) || hashSize < 1 || hashSize > 1_000_000)
      throw new RangeError(`hashSize must be an integer in 1..1000000, got ${hashSize}`);
    const durability = options.durability ?? "fsync";
    if (durability !== "fsync" && durability !== "async" && durability !== "none")
      throw new RangeError(`durability must be "fsync", "async" or "none"`);
    this.path = options.path;
    this.hashSize = hashSize;
    this.durability = durability;
    this.compactAfterBytes = options.compactAfterBytes ?? 64 * 1024 * 1024;
  }

  private get sync(): boolean {
    return this.durability === "fsync";
  }

  // --- open and close --------------------------------------------------------------------------

  protected async doOpen(): Promise<void> {
    for (const dir of ["", "wal", "clients", "retained"])
      await mkdir(join(this.path, dir), { recursive: true, mode: 0o700 });
    this.unlock = await lockDirectory(this.path);
    try {
      await this.readFormat();
      await this.readClientFiles();
      await this.readRetainedFiles();
      await this.replayLog();
      await this.startSegment();
    } catch (error) {
      await this.unlock();
      this.unlock = null;
      throw error;
    }
    // What the old log held goes into the files in the background.
    if (this.segments.length > 1) this.compactSoon();
  }

  protected async doClose(): Promise<void> {
    await this.compacting;
    if (this.walBytes > 0 || this.dirtyClients.size > 0 || this.dirtyBuckets.size > 0)
      await this.compact();
    await this.background;
    await this.wal?.close();
    this.wal = null;
    await this.unlock?.();
    this.unlock = null;
  }

  /**
   * The layout the directory was made with. Files sit in buckets of its hash size, so a
   * directory keeps the one it was created with; another one asked for is logged and ignored.
   */
  private async readFormat(): Promise<void> {
    const file = join(this.path, FORMAT_FILE);
    let text: string | null = null;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    let stored: unknown = null;
    try {
      if (text !== null) stored = (JSON.parse(text) as { hashSize?: unknown } | null)?.hashSize;
    } catch {
      stored = null;
    }
    if (typeof stored === "number" && Number.isInteger(stored) && stored > 0) {
      if (stored !== this.hashSize) {
        this.log(
          "warning",
          `storage ${this.path} was created with hash size ${stored}; using it instead of ${this.hashSize}`,
        );
        this.hashSize = stored;
      }
      return;
    }
    if (text !== null) this.damaged(file, "unreadable; rewritten");
    const format = `${JSON.stringify({ format: 1, hashSize: this.hashSize })}\n`;
    await writeAtomically(file, Buffer.from(format), this.sync);
  }

  private damaged(file: string, why: string): void {
    this.log("warning", `storage ${this.path}: ${file}: ${why}; skipped, the rest is loaded`);
  }

  private async readClientFiles(): Promise<void> {
    const root = join(this.path, "clients");
    const files: string[] = [];
    for (const bucket of await readdir(root)) {
      const dir = join(root, bucket);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        if (name.endsWith(".tmp")) await removeFile(join(dir, name)).catch(() => false);
        else if (name.endsWith(".rec")) files.push(join(dir, name));
      }
    }
    await inParallel(files, READ_CONCURRENCY, async (file) => {
      for (const value of await this.readRecords(file)) {
        const client = value as StoredClient;
        if (typeof client?.clientId !== "string" || !Array.isArray(client.deliveries)) {
          this.damaged(file, "not a client record");
          continue;
        }
        this.model.setClient(client);
      }
    });
  }

  private async readRetainedFiles(): Promise<void> {
    const dir = join(this.path, "retained");
    const names = await readdir(dir);
    for (const n of names)
      if (n.endsWith(".tmp")) await removeFile(join(dir, n)).catch(() => false);
    const files = names.filter((n) => n.endsWith(".rec"));
    await inParallel(files, READ_CONCURRENCY, async (name) => {
      for (const value of await this.readRecords(join(dir, name))) {
        if (!Array.isArray(value)) {
          this.damaged(name, "not a list of retained messages");
          continue;
        }
        for (const message of value as StoredMessage[]) {
          if (typeof message?.topic !== "string" || !(message.payload instanceof Uint8Array))
            continue;
          this.applyRetained({ op: "retain", message });
        }
      }
    });
  }

  /** The decoded records of a file; damage is logged and skipped. */
  private async readRecords(file: string): Promise<unknown[]> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      this.damaged(file, `cannot be read (${describe(error)})`);
      return [];
    }
    const out: unknown[] = [];
    for (const payload of readFrames(bytes, (at, why) =>
      this.damaged(file, `${why} at byte ${at}`),
    )) {
      try {
        out.push(decodeValue(payload));
      } catch (error) {
        this.damaged(file, `a record does not decode (${describe(error)})`);
      }
    }
    return out;
  }

  private async replayLog(): Promise<void> {
    const dir = join(this.path, "wal");
    const numbered = (await readdir(dir))
      .filter((n) => SEGMENT.test(n))
      .map((n) => [BigInt(SEGMENT.exec(n)![1]!), n] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const names = numbered.map(([, n]) => n);
    for (const name of names) {
      const file = join(dir, name);
      this.segments.push(file);
      const number = BigInt(SEGMENT.exec(name)![1]!);
      if (number >= this.nextSegment) this.nextSegment = number + 1n;
      for (const ops of await this.readRecords(file)) {
        if (!Array.isArray(ops)) {
          this.damaged(file, "a record is not a list of changes");
          continue;
        }
        for (const op of ops as StorageOp[]) {
          try {
            this.applyOne(op);
          } catch (error) {
            this.damaged(file, `a change cannot be applied (${describe(error)})`);
          }
        }
      }
    }
  }

  private async startSegment(): Promise<void> {
    const file = join(this.path, "wal", `${String(this.nextSegment++).padStart(16, "0")}.log`);
    const fh = await open(file, "ax", 0o600);
    if (this.sync) await syncDirectory(join(this.path, "wal"));
    this.segments.push(file);
    this.wal = fh;
    this.walBytes = 0;
  }

  // --- writing ---------------------------------------------------------------------------------

  protected async commit(ops: readonly StorageOp[]): Promise<void> {
    const fh = this.wal!;
    const written = this.durability === "none" ? this.queue(fh, ops) : this.append(fh, ops);
    this.writing = written;
    try {
      await written;
    } finally {
      this.writing = null;
    }
    if (this.walBytes >= this.compactAfterBytes) this.compactSoon();
  }

  /**
   * Writes the records of `ops` in order, each synced in fsync mode and then applied to the
   * model (so a large commit is applied a record at a time, not all in one turn).
   */
  private async append(fh: FileHandle, ops: readonly StorageOp[]): Promise<void> {
    for (const [slice, record] of records(ops)) {
      await fh.write(record);
      if (this.sync) await fh.datasync();
      this.applied(slice, record);
    }
  }

  /**
   * Durability "none": queues the records of `ops` for writing in the background, in order,
   * one per turn of the event loop. The queue never rejects (a failure is logged), and what it
   * holds counts in pendingBytes until written, so a broker holds writers back meanwhile.
   */
  private async queue(fh: FileHandle, ops: readonly StorageOp[]): Promise<void> {
    let first = true;
    for (const [slice, record] of records(ops)) {
      if (!first) await new Promise((resolve) => setImmediate(resolve));
      first = false;
      this.unwritten(record.length);
      this.background = this.background
        .then(() => fh.write(record))
        .then(
          () => {},
          (error: unknown) =>
            this.log("critical", `storage ${this.path}: log write failed: ${describe(error)}`),
        )
        .finally(() => this.written(record.length));
      this.applied(slice, record);
    }
  }

  private applied(ops: readonly StorageOp[], record: Buffer): void {
    for (const op of ops) this.applyOne(op);
    this.walBytes += record.length;
  }

  private applyOne(op: StorageOp): void {
    if (op.op === "retain" || op.op === "unretain") {
      this.applyRetained(op);
      return;
    }
    this.model.apply(op);
    this.dirtyClients.add(op.clientId);
  }

  private applyRetained(op: StorageOp & { op: "retain" | "unretain" }): void {
    this.model.apply(op);
    const topic = op.op === "retain" ? op.message.topic : op.topic;
    const bucket = bucketOf(topic, this.hashSize);
    let topics = this.retainedBuckets.get(bucket);
    if (this.model.retained.has(topic)) {
      if (topics === undefined) this.retainedBuckets.set(bucket, (topics = new Set()));
      topics.add(topic);
    } else {
      topics?.delete(topic);
    }
    this.dirtyBuckets.add(bucket);
  }

  // --- compaction ------------------------------------------------------------------------------

  /** Folds the log into the files now, unless that is already under way. */
  compactSoon(): void {
    this.compacting ??= this.compact()
      .catch((error: unknown) =>
        this.log("critical", `storage ${this.path}: compaction failed: ${describe(error)}`),
      )
      .finally(() => {
        this.compacting = null;
      });
  }

  private async compact(): Promise<void> {
    const old = this.segments.slice();
    const oldLog = this.wal;
    await this.startSegment();
    // The commit writing to the old segment must be in the model before it is folded.
    await this.writing;
    await this.background;
    await oldLog?.close();
    const clients = this.dirtyClients;
    const buckets = this.dirtyBuckets;
    this.dirtyClients = new Set();
    this.dirtyBuckets = new Set();
    try {
      const dirs = new Set<string>();
      await oneTurnEach([...clients], READ_CONCURRENCY, (clientId) => {
        const dir = join(this.path, "clients", String(bucketOf(clientId, this.hashSize)));
        const file = join(dir, `${clientFileName(clientId)}.rec`);
        const record = this.model.clients.get(clientId);
        if (record === undefined)
          return removeFile(file).then((removed) => {
            if (removed) dirs.add(dir);
          });
        const bytes = frame(encodeValue(snapshotOf(clientId, record)));
        return writeAtomically(file, bytes, this.sync).then(() => {
          dirs.add(dir);
        });
      });
      await inParallel([...buckets], READ_CONCURRENCY, async (bucket) => {
        const file = join(this.path, "retained", `${bucket}.rec`);
        const topics = this.retainedBuckets.get(bucket);
        if (topics === undefined || topics.size === 0) {
          this.retainedBuckets.delete(bucket);
          await removeFile(file);
          return;
        }
        const messages = [...topics].map((t) => this.model.retained.get(t));
        await writeAtomically(file, frame(encodeValue(messages)), this.sync);
      });
      if (buckets.size > 0) dirs.add(join(this.path, "retained"));
      if (this.sync) await inParallel([...dirs], READ_CONCURRENCY, syncDirectory);
      for (const file of old) await removeFile(file);
      if (this.sync) await syncDirectory(join(this.path, "wal"));
      this.segments = this.segments.filter((s) => !old.includes(s));
    } catch (error) {
      // The old log stays: it still holds these changes, and the next compaction retries.
      for (const id of clients) this.dirtyClients.add(id);
      for (const b of buckets) this.dirtyBuckets.add(b);
      this.log("critical", `storage ${this.path}: compaction failed: ${describe(error)}`);
    }
  }

  // --- reading ---------------------------------------------------------------------------------

  async readAll(): Promise<StoredState> {
    return this.model.state();
  }

  async readClient(clientId: string): Promise<StoredClient | null> {
    return this.model.client(clientId);
  }

  async readRetained(filter: string): Promise<StoredMessage[]> {
    return this.model.retainedMatching(filter);
  }
}

/**
 * The log records of a commit with the changes each carries, each encoded when asked for: one
 * for a commit of up to RECORD_BYTES (the usual case), else one per RECORD_BYTES of changes.
 */
function* records(ops: readonly StorageOp[]): Generator<[readonly StorageOp[], Buffer]> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < ops.length; i++) {
    bytes += opBytes(ops[i]!);
    if (bytes >= RECORD_BYTES && i + 1 < ops.length) {
      const slice = ops.slice(start, i + 1);
      yield [slice, frame(encodeValue(slice))];
      start = i + 1;
      bytes = 0;
    }
  }
  const rest = start === 0 ? ops : ops.slice(start);
  yield [rest, frame(encodeValue(rest))];
}

/**
 * Starts `task` for one item per turn of the event loop (its synchronous part, encoding a
 * client's file, runs alone in that turn: a client with 1000 queued 1 KiB messages takes about
 * 15 ms, and 32 of them back to back held every connection up for 400 ms), with at most `limit`
 * unfinished. Rejects with the first failure, once every task started has settled.
 */
async function oneTurnEach<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  for (const item of items) {
    if (failure !== null) break;
    await new Promise((resolve) => setImmediate(resolve));
    let done: Promise<void>;
    try {
      done = task(item);
    } catch (error) {
      failure = { error };
      break;
    }
    const settled: Promise<void> = done
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => running.delete(settled));
    running.add(settled);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure !== null) throw failure.error;
}

/** Runs `task` over `items`, at most `limit` at a time. */
async function inParallel<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
