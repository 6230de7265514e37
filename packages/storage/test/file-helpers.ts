// Helpers of the FileStorage integration tests (file-*.test.ts): temporary directories, log
// capture, simulated crashes, and a way to compare states whatever the order they are held in.
import { type FileHandle, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStorage, type FileStorageOptions } from "../src/file/file-storage.js";
import { bucketOf, clientFileName } from "../src/file/names.js";
import type { Storage } from "../src/storage.js";
import type {
  StorageLog,
  StoredClient,
  StoredDelivery,
  StoredMessage,
  StoredState,
  StoredSubscription,
} from "../src/types.js";

export const HASH_SIZE = 64;

const encoder = new TextEncoder();
export const bytes = (s: string): Uint8Array => encoder.encode(s);

/** Temporary directories made by tempDir(), removed by removeTempDirs(). */
const dirs: string[] = [];

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "myqtt-file-test-"));
  dirs.push(dir);
  return dir;
}

/** Instances opened by openFile(), closed by removeTempDirs() if a failed test left them open. */
const opened: FileStorage[] = [];
const crashed = new WeakSet<FileStorage>();

/** Closes what a test left open (unless crashed on purpose) and removes the temporary dirs. */
export async function removeTempDirs(): Promise<void> {
  for (const storage of opened.splice(0)) {
    if (storage.isOpen && !crashed.has(storage)) await storage.close().catch(() => {});
  }
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** A log that keeps its lines. */
export interface CapturedLog {
  readonly lines: { level: string; message: string }[];
  readonly log: StorageLog;
  /** The messages of the warning lines. */
  warnings(): string[];
}

export function captureLog(): CapturedLog {
  const lines: { level: string; message: string }[] = [];
  return {
    lines,
    log: (level, message) => lines.push({ level, message }),
    warnings: () => lines.filter((l) => l.level === "warning").map((l) => l.message),
  };
}

/** Opens a FileStorage over `path` (hashSize 64 unless told). */
export async function openFile(
  path: string,
  options: Partial<FileStorageOptions> = {},
): Promise<FileStorage> {
  const storage = new FileStorage({ path, hashSize: HASH_SIZE, ...options });
  opened.push(storage);
  await storage.open();
  return storage;
}

/**
 * Waits until an instance has nothing left under way: pending writes committed, and the
 * background compaction (a private field, read through a cast) finished. Used before
 * abandoning an instance, so that it does not keep changing files under the next instance:
 * a process that dies stops at once, an abandoned object in this process would not. (Real
 * kills, which can land in the middle of a compaction, are in file-compaction.test.ts.)
 */
export async function settle(storage: FileStorage): Promise<void> {
  await storage.flush();
  const internals = storage as unknown as { compacting: Promise<void> | null };
  for (let i = 0; i < 100 && internals.compacting !== null; i++) await internals.compacting;
}

/**
 * Simulates a crash of the process owning `storage`: waits for it to settle, then abandons it
 * without close() (close would compact the log into the client files) and removes the LOCK
 * file, standing for the lock of a dead process. The LOCK holds this process's pid, which the
 * next open in this process would refuse ("already open in this process"); a lock left by a
 * process that died is taken over at open, which file-lock.test.ts checks.
 *
 * The abandoned instance's log file handle would stay open (harmless on Linux: it stops neither
 * a reader nor the removal of the file), but Node warns when it closes such a handle on garbage
 * collection, so it is closed here, as the kernel closes a dead process's descriptors. Closing a
 * descriptor writes nothing: the files are as the "dead" instance left them.
 */
export async function crash(storage: FileStorage): Promise<void> {
  await settle(storage);
  crashed.add(storage);
  await rm(join(storage.path, "LOCK"), { force: true });
  const internals = storage as unknown as { wal: FileHandle | null };
  await internals.wal?.close();
}

/** The log segments of a storage directory, oldest first (full paths). */
export async function segments(root: string): Promise<string[]> {
  const names = (await readdir(join(root, "wal"))).filter((n) => /^\d{16}\.log$/.test(n)).sort();
  return names.map((n) => join(root, "wal", n));
}

/** Where the file of a client lives. */
export function clientFile(root: string, clientId: string, hashSize = HASH_SIZE): string {
  return join(
    root,
    "clients",
    String(bucketOf(clientId, hashSize)),
    `${clientFileName(clientId)}.rec`,
  );
}

/** Where the retained messages of the bucket of `topic` live. */
export function retainedFile(root: string, topic: string, hashSize = HASH_SIZE): string {
  return join(root, "retained", `${bucketOf(topic, hashSize)}.rec`);
}

/** Offsets of the records ("MQR1" magic) in a log or record file. */
export function recordOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let at = buf.indexOf("MQR1"); at !== -1; at = buf.indexOf("MQR1", at + 1)) out.push(at);
  return out;
}

// --- values ------------------------------------------------------------------------------------

export function message(
  topic: string,
  payload = `payload of ${topic}`,
  retain = false,
): StoredMessage {
  return { topic, payload: bytes(payload), qos: 1, retain, expiresAt: 0, publisher: null };
}

export function delivery(seq: number, topic = `queue/${seq}`): StoredDelivery {
  return {
    seq,
    message: message(topic, `message ${seq}`),
    qos: 1,
    retain: false,
    subscriptionIds: null,
    state: "queued",
    packetId: 0,
  };
}

export function subscription(filter: string, qos: 0 | 1 | 2 = 1): StoredSubscription {
  return { filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 };
}

// --- comparing ---------------------------------------------------------------------------------

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A deep copy with plain Uint8Arrays (a Buffer is not toEqual to a Uint8Array) and no undefined. */
function plain<T>(value: T): T {
  if (value instanceof Uint8Array) return new Uint8Array(value) as T;
  if (Array.isArray(value)) return value.map((v) => plain(v)) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out as T;
  }
  return value;
}

function normalClient(client: StoredClient): StoredClient {
  return plain({
    ...client,
    subscriptions: [...client.subscriptions].sort((a, b) => compare(a.filter, b.filter)),
    deliveries: [...client.deliveries].sort((a, b) => a.seq - b.seq),
    incomingQoS2: [...client.incomingQoS2].sort((a, b) => a - b),
  });
}

/** A state as compared: clients by id, retained messages by topic, lists sorted. */
export function normalState(state: StoredState): StoredState {
  return {
    clients: [...state.clients]
      .sort((a, b) => compare(a.clientId, b.clientId))
      .map((c) => normalClient(c)),
    retained: plain([...state.retained].sort((a, b) => compare(a.topic, b.topic))),
  };
}

export async function stateOf(storage: Storage): Promise<StoredState> {
  return normalState(await storage.readAll());
}

/** A small seeded generator (mulberry32), so that a failing run can be repeated. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
