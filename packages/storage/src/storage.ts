import {
  encodedLength,
  hasWildcard,
  isValidTopicFilter,
  match,
  PacketType,
  type QoS,
} from "@myqtt/codec";
import { checkClientId, StorageError } from "./errors.js";
import type {
  StorageLog,
  StorageOp,
  StoredClient,
  StoredDelivery,
  StoredMessage,
  StoredState,
  StoredSubscription,
} from "./types.js";

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Someone waiting for pendingBytes to fall under `bytes`. */
interface BelowWaiter {
  bytes: number;
  resolve: () => void;
}

/**
 * What one change is counted for in `pendingBytes` beside its strings and bytes: about what it
 * takes encoded (the file backend's record of an empty delivery is 266 bytes, of a
 * subscription 144, of a release 63) and, as objects waiting in the queue, on the heap.
 */
const OP_BYTES = 64;
const DELIVERY_BYTES = 272;
const MESSAGE_BYTES = 160;
const SUB_BYTES = 144;
/** What a user property is counted for beside its two strings. */
const PAIR_BYTES = 16;

/** Options every backend takes. */
export interface StorageOptions {
  /** Where problems are reported (a damaged record, a failed write); default: nowhere. */
  log?: StorageLog;
}

/**
 * A storage backend. Writes are grouped: every `write()` made while a commit is running goes
 * into the next commit together (group commit), and each promise resolves once its changes are
 * as durable as the backend promises. Reads see every write whose promise has resolved.
 *
 * Beside the broker's interface (`write`, `readAll`, `readClient`, `readRetained`) it offers
 * the storage operations of MyQtt (`sub`, `subExists`, `queuedMessagesQuota`, `offlinePub`,
 * `retainMsgSet`...), which work on any backend.
 */
export abstract class Storage {
  /** "memory", "file", "redis"... */
  abstract readonly kind: string;
  protected readonly log: StorageLog;
  private pending: StorageOp[] = [];
  private waiters: Waiter[] = [];
  private committing = false;
  /** Bytes counted for the changes in `pending`, and for those of the commit running now. */
  private queuedBytes = 0;
  private committingBytes = 0;
  /** Bytes a backend committed but has not written yet (see `unwritten`). */
  private unwrittenBytes = 0;
  private belowWaiters: BelowWaiter[] | null = null;
  /**
   * Whether `pendingBytes` counts what waits. A backend whose commit copies nothing and is done
   * at once (memory) sets it false: its changes never wait for anything.
   */
  protected countsPendingBytes = true;
  private state: "new" | "open" | "closed" = "new";
  private opening: Promise<void> | null = null;
  private lastSeq = 0;

  constructor(options: StorageOptions = {}) {
    this.log = options.log ?? (() => {});
  }

  /** True between a successful open() and close(). */
  get isOpen(): boolean {
    return this.state === "open";
  }

  /** Opens the backend (reads what it holds); calling it again waits for the same opening. */
  open(): Promise<void> {
    if (this.state === "closed") return Promise.reject(closedError());
    this.opening ??= this.doOpen().then(() => {
      if (this.state === "new") this.state = "open";
    });
    return this.opening;
  }

  /** Commits what is pending, then releases files and connections. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    if (this.opening !== null) await this.opening.catch(() => {});
    await this.flush();
    this.state = "closed";
    await this.doClose();
  }

  /** Resolves once every write made so far is committed (or failed). */
  async flush(): Promise<void> {
    while (this.committing || this.pending.length > 0) {
      await new Promise<void>((resolve) => {
        this.waiters.push({ resolve, reject: () => resolve() });
        this.schedule();
      });
    }
  }

  /**
   * A new delivery sequence number: increasing, above every one handed out or noted before,
   * and (starting from the clock in microseconds) above those of earlier runs.
   */
  nextSeq(): number {
    this.lastSeq = Math.max(this.lastSeq + 1, Date.now() * 1000);
    return this.lastSeq;
  }

  /** Notes a sequence number found in storage, so nextSeq() stays above it. */
  advanceSeq(seq: number): void {
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  /**
   * Bytes of changes written and not yet done: waiting for the next commit, in the commit
   * running now, or (file storage with durability "none") committed but not yet on the disk.
   * Each change counts about what it takes encoded: its payload, topic, client id and other
   * strings, and a constant (64 to 272 bytes). Counted when write() is called, released once the
   * commit that carries it succeeded or failed. Always 0 for memory storage.
   */
  get pendingBytes(): number {
    return this.queuedBytes + this.committingBytes + this.unwrittenBytes;
  }

  /**
   * Resolves once `pendingBytes` is below `bytes`: at once when it is, else when commits have
   * brought it there (it never rejects: a failed commit releases its bytes too). How a broker
   * holds back the clients that write faster than the storage commits.
   */
  whenBelow(bytes: number): Promise<void> {
    if (this.pendingBytes < bytes) return Promise.resolve();
    return new Promise<void>((resolve) => {
      (this.belowWaiters ??= []).push({ bytes, resolve });
    });
  }

  /** A backend's bytes committed and still to be written (`pendingBytes` counts them). */
  protected unwritten(bytes: number): void {
    this.unwrittenBytes += bytes;
  }

  /** Bytes counted by unwritten() are written (or failed): they leave `pendingBytes`. */
  protected written(bytes: number): void {
    this.unwrittenBytes -= bytes;
    this.notifyBelow();
  }

  /** Records changes; resolves when they are committed, rejects (StorageError "IO") if not. */
  write(ops: StorageOp | readonly StorageOp[]): Promise<void> {
    if (this.state !== "open") return Promise.reject(closedError());
    if (Array.isArray(ops)) {
      const counts = this.countsPendingBytes;
      for (const op of ops) {
        this.pending.push(op);
        if (counts) this.queuedBytes += opBytes(op);
      }
    } else {
      this.pending.push(ops as StorageOp);
      if (this.countsPendingBytes) this.queuedBytes += opBytes(ops as StorageOp);
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.committing) return;
    this.committing = true;
    // Writes made in the same turn of the event loop join the first commit.
    queueMicrotask(() => void this.drain());
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0 || this.waiters.length > 0) {
      const ops = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      this.committingBytes = this.queuedBytes;
      this.queuedBytes = 0;
      try {
        if (ops.length > 0) await this.commit(ops);
        this.committingBytes = 0;
        for (const w of waiters) w.resolve();
      } catch (error) {
        this.committingBytes = 0;
        const failure =
          error instanceof StorageError
            ? error
            : new StorageError("IO", `${this.kind} storage write failed`, { cause: error });
        for (const w of waiters) w.reject(failure);
      }
      this.notifyBelow();
    }
    this.committing = false;
  }

  private notifyBelow(): void {
    const list = this.belowWaiters;
    if (list === null) return;
    const now = this.pendingBytes;
    let kept: BelowWaiter[] | null = null;
    for (const w of list) {
      if (now < w.bytes) w.resolve();
      else (kept ??= []).push(w);
    }
    this.belowWaiters = kept;
  }

  protected abstract doOpen(): Promise<void>;
  protected abstract doClose(): Promise<void>;
  /** Makes a group of changes durable, in order. */
  protected abstract commit(ops: readonly StorageOp[]): Promise<void>;

  /** Everything stored (the broker reads it once at start). */
  abstract readAll(): Promise<StoredState>;
  /** Everything stored for one client id, or null. */
  abstract readClient(clientId: string): Promise<StoredClient | null>;
  /** The retained messages whose topic matches `filter`. */
  abstract readRetained(filter: string): Promise<StoredMessage[]>;

  // --- MyQtt's storage operations (myqtt_storage_*) ------------------------------------------

  /** Adds or replaces a subscription of `clientId` (myqtt_storage_sub[_offline]). */
  async sub(
    clientId: string,
    filter: string,
    qos: QoS,
    options: Partial<Omit<StoredSubscription, "filter" | "qos">> = {},
  ): Promise<void> {
    checkClientId(clientId);
    if (!isValidTopicFilter(filter)) throw new TypeError(`invalid topic filter ${filter}`);
    const sub: StoredSubscription = {
      filter,
      qos,
      noLocal: options.noLocal ?? false,
      retainAsPublished: options.retainAsPublished ?? false,
      retainHandling: options.retainHandling ?? 0,
      subscriptionIdentifier: options.subscriptionIdentifier,
    };
    await this.write({ op: "sub", clientId, sub });
  }

  /** Removes a subscription; false when there was none (myqtt_storage_unsub). */
  async unsub(clientId: string, filter: string): Promise<boolean> {
    checkClientId(clientId);
    const existed = await this.subExists(clientId, filter);
    await this.write({ op: "unsub", clientId, filter });
    return existed;
  }

  /** Whether `clientId` has a subscription to exactly `filter` (myqtt_storage_sub_exists). */
  async subExists(clientId: string, filter: string): Promise<boolean> {
    checkClientId(clientId);
    const client = await this.readClient(clientId);
    return client?.subscriptions.some((s) => s.filter === filter) ?? false;
  }

  /** How many subscriptions `clientId` has (myqtt_storage_sub_count[_offline]). */
  async subCount(clientId: string): Promise<number> {
    checkClientId(clientId);
    return (await this.readClient(clientId))?.subscriptions.length ?? 0;
  }

  /** Messages stored for `clientId`, queued or in flight (myqtt_storage_queued_messages). */
  async queuedMessages(clientId: string): Promise<number> {
    checkClientId(clientId);
    return (await this.readClient(clientId))?.deliveries.length ?? 0;
  }

  /**
   * Bytes of the stored messages of `clientId`, counted as MyQtt does: the length of each one
   * encoded as an MQTT 3.1.1 PUBLISH (myqtt_storage_queued_messages_quota). Three QoS 0
   * messages with a 14-character topic and 50 bytes of payload make 3 × 68 = 204.
   */
  async queuedMessagesQuota(clientId: string): Promise<number> {
    checkClientId(clientId);
    const client = await this.readClient(clientId);
    let total = 0;
    for (const d of client?.deliveries ?? []) total += publishLength(d);
    return total;
  }

  /**
   * Queues a message for `clientId`, sent when that client next connects to a broker using this
   * storage (myqtt_conn_offline_pub). Returns the delivery's place in the queue.
   */
  async offlinePub(
    clientId: string,
    topic: string,
    payload: Uint8Array | string,
    qos: QoS,
    retain = false,
  ): Promise<number> {
    checkClientId(clientId);
    if (topic.length === 0 || hasWildcard(topic)) throw new TypeError(`invalid topic ${topic}`);
    const client = await this.readClient(clientId);
    this.advanceSeq(client?.deliveries.at(-1)?.seq ?? 0);
    const seq = this.nextSeq();
    const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    const delivery: StoredDelivery = {
      seq,
      message: { topic, payload: bytes, qos, retain, expiresAt: 0, publisher: null },
      qos,
      retain,
      subscriptionIds: null,
      state: "queued",
      packetId: 0,
    };
    await this.write({ op: "delivery", clientId, delivery });
    return seq;
  }

  /** Removes a stored message of `clientId` (myqtt_storage_release_msg). */
  async releaseMsg(clientId: string, seq: number): Promise<void> {
    checkClientId(clientId);
    await this.write({ op: "release", clientId, seq });
  }

  /** Sets the retained message of `topic`; an empty payload clears it (myqtt_storage_retain_msg_set). */
  async retainMsgSet(topic: string, qos: QoS, payload: Uint8Array | string): Promise<void> {
    if (topic.length === 0 || hasWildcard(topic)) throw new TypeError(`invalid topic ${topic}`);
    const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
    await this.write({
      op: "retain",
      message: { topic, payload: bytes, qos, retain: true, expiresAt: 0, publisher: null },
    });
  }

  /**
   * The retained message of `topic`, or null (myqtt_storage_retain_msg_recover). Unlike MyQtt,
   * reading it does not delete it: retained messages stay until replaced or cleared (the
   * specification's behaviour; see the quirk policy).
   */
  async retainMsgRecover(topic: string): Promise<{ qos: QoS; payload: Uint8Array } | null> {
    const [msg] = await this.readRetained(topic);
    return msg === undefined ? null : { qos: msg.qos, payload: msg.payload };
  }

  /** Clears the retained message of `topic`; false when there was none. */
  async retainMsgRelease(topic: string): Promise<boolean> {
    const existed = (await this.readRetained(topic)).length > 0;
    await this.write({ op: "unretain", topic });
    return existed;
  }

  /** Topics with a retained message matching `filter` (myqtt_storage_get_retained_topics). */
  async getRetainedTopics(filter: string): Promise<string[]> {
    return (await this.readRetained(filter)).map((m) => m.topic);
  }

  /**
   * Counts the stored subscriptions of every client id: what a broker starting on this storage
   * rebuilds (myqtt_storage_load; 15 for five clients with three subscriptions each).
   */
  async load(): Promise<number> {
    const state = await this.readAll();
    let count = 0;
    for (const client of state.clients) count += client.subscriptions.length;
    return count;
  }

  /** What a reconnecting client gets back: its subscriptions and messages (myqtt_storage_session_recover). */
  async sessionRecover(clientId: string): Promise<StoredClient | null> {
    checkClientId(clientId);
    return this.readClient(clientId);
  }

  /** Forgets everything stored for `clientId` (myqtt_storage_clear). */
  async clear(clientId: string): Promise<void> {
    checkClientId(clientId);
    await this.write({ op: "drop", clientId });
  }
}

function closedError(): StorageError {
  return new StorageError("CLOSED", "the storage is not open");
}

/** The length of a delivery encoded as an MQTT 3.1.1 PUBLISH (MyQtt's quota unit). */
export function publishLength(d: StoredDelivery): number {
  return encodedLength(
    {
      type: PacketType.PUBLISH,
      topic: d.message.topic,
      payload: d.message.payload,
      qos: d.qos,
      retain: d.retain,
      dup: false,
      ...(d.qos > 0 ? { packetId: 1 } : {}),
    },
    { protocolVersion: 4 },
  );
}

/** What one change is counted for in pendingBytes (see OP_BYTES). */
export function opBytes(op: StorageOp): number {
  switch (op.op) {
    case "delivery":
      return DELIVERY_BYTES + op.clientId.length + messageBytes(op.delivery.message);
    case "retain":
      return MESSAGE_BYTES + messageBytes(op.message);
    case "will":
      return MESSAGE_BYTES + op.clientId.length + messageBytes(op.will.message);
    case "sub":
      return SUB_BYTES + op.clientId.length + op.sub.filter.length;
    case "unsub":
      return OP_BYTES + op.clientId.length + op.filter.length;
    case "unretain":
      return OP_BYTES + op.topic.length;
    default:
      return OP_BYTES + op.clientId.length;
  }
}

/** A message's payload, topic, publisher and forwarded properties, as counted in opBytes. */
function messageBytes(m: StoredMessage): number {
  let n = m.payload.length + m.topic.length + (m.publisher?.length ?? 0);
  const p = m.properties;
  if (p !== undefined) {
    n += (p.responseTopic?.length ?? 0) + (p.contentType?.length ?? 0);
    n += p.correlationData?.length ?? 0;
    const pairs = p.userProperties;
    if (pairs !== undefined) for (const [k, v] of pairs) n += PAIR_BYTES + k.length + v.length;
  }
  return n;
}

/** Whether `topic` matches `filter` (for backends that scan). */
export function matches(filter: string, topic: string): boolean {
  return hasWildcard(filter) ? match(filter, topic) : filter === topic;
}
