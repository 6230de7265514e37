import { type QoS, SubscriptionTrie } from "@myqtt/codec";
import { type Ctx, describe, LogLevel, type Transport } from "@myqtt/core";
import type { Storage, StorageOp, StoredWill } from "@myqtt/storage";
import { type BrokerMessage, isExpired } from "./message.js";
import { MessageMemory } from "./message-memory.js";
import { type BrokerOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { toDelivery, toStored } from "./persistence.js";
import { type Restored, restoreFromStorage } from "./restore.js";
import { RetainedStore } from "./retained.js";
import { Router } from "./router.js";
import { CLOSE_GRACE_MS, ConnState, ServerConn } from "./server-conn.js";
import {
  type Outgoing,
  type Pending,
  Session,
  type SessionOutput,
  type Subscription,
  subscriptionCost,
} from "./session.js";
import { ThrottledWarning } from "./throttled-warning.js";

/** Counters of a broker since it started. */
export interface BrokerStats {
  /** PUBLISH packets accepted from clients. */
  messagesReceived: number;
  /** Deliveries handed to connected clients. */
  messagesSent: number;
  /** Deliveries dropped: full queues, backed-up QoS 0 receivers, oversized for the client. */
  messagesDropped: number;
  /** Connections accepted since start. */
  connectionsAccepted: number;
  /** Times the storage fell maxStoragePendingBytes behind and writers were held back. */
  storageBacklogs: number;
  /** Packets after which a client's reading paused until the storage caught up. */
  storageHolds: number;
}

/** A will waiting for its delay (v5 3.1.3.2.2) or for its session to end. */
interface PendingWill {
  msg: BrokerMessage;
  at: number;
}

const SWEEP_MS = 250;
/** Sweeps a message may wait in flight for its acknowledgement before it is held for long (1 s). */
const HELD_LONG_SWEEPS = 4;
/** At most one "storage is behind" warning in this many ms (the next says how many were not). */
const BACKLOG_WARN_MS = 10_000;

/**
 * The broker of one context: sessions, the subscription trie, retained messages and wills.
 * Created by the first createListener on the context; `getBroker(ctx)` gives it.
 */
export class Broker {
  readonly ctx: Ctx;
  options: ResolvedOptions;
  /** Sessions by client id: connected ones and persistent ones whose client is away. */
  readonly sessions = new Map<string, Session>();
  /** Live (accepted) connections by client id. */
  readonly connections = new Map<string, ServerConn>();
  /** Every open connection, CONNECT received or not. */
  readonly allConnections = new Set<ServerConn>();
  readonly subscriptions = new SubscriptionTrie<Subscription>();
  /** Messages held for later, counted against maxTotalMessageBytes. */
  readonly memory = new MessageMemory();
  /** The message being routed: its QoS 0 encodings are shared by its plain receivers. */
  fanningOut: BrokerMessage | null = null;
  readonly retained = new RetainedStore(this.memory);
  readonly stats: BrokerStats = {
    messagesReceived: 0,
    messagesSent: 0,
    messagesDropped: 0,
    connectionsAccepted: 0,
    storageBacklogs: 0,
    storageHolds: 0,
  };
  /** What all subscriptions are counted for against maxTotalSubscriptionBytes. */
  subscriptionBytes = 0;
  private readonly router: Router;
  private readonly wills = new Map<string, PendingWill>();
  private readonly dropWarning = new ThrottledWarning(1000, "more dropped");
  /** Sessions whose client is away and that end at `expiresAt`. */
  private readonly expiring = new Set<Session>();
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  /** Where persistent sessions and retained messages are kept; null: memory only. */
  storage: Storage | null = null;
  /** Between beginWrites() and endWrites(): the changes made, written as one at the end. */
  private collecting = false;
  private batch: StorageOp[] | null = null;
  /** True while the stored state is read back (nothing is written then). */
  private restoring = false;
  /** While the storage is behind: resolves once it is back under the low-water mark. */
  private storageWait: Promise<void> | null = null;
  /** Connected sessions whose queue waits for the storage to catch up. */
  private storageHeld: Set<Session> | null = null;
  private readonly backlogWarning = new ThrottledWarning(BACKLOG_WARN_MS, "more times");
  private starting: Promise<number> | null = null;

  constructor(ctx: Ctx, options: BrokerOptions = {}) {
    this.ctx = ctx;
    this.options = resolveOptions(options);
    this.router = new Router(this.subscriptions, (session, msg, qos, retain, ids, shared) =>
      this.deliver(session, msg, qos, retain, ids, shared),
    );
  }

  /** Changes broker-wide options; connections already open keep what they negotiated. */
  configure(options: BrokerOptions): void {
    this.options = resolveOptions(options, this.options);
  }

  log(level: (typeof LogLevel)[keyof typeof LogLevel], file: string, message: string): void {
    this.ctx.log(level, file, message);
  }

  // --- storage -----------------------------------------------------------------------------------

  /** Whether start() was called. */
  get started(): boolean {
    return this.starting !== null;
  }

  /** Chooses the storage; only before the broker started (its first listener). */
  setStorage(storage: Storage | null): void {
    if (this.starting !== null && storage !== this.storage)
      throw new Error("the storage of a running broker cannot be changed");
    this.storage = storage;
  }

  /**
   * Opens the storage and rebuilds sessions, subscriptions, queued and in-flight messages,
   * retained messages and wills from it (once; later calls wait for the first). Resolves with
   * the number of subscriptions rebuilt.
   */
  start(): Promise<number> {
    this.starting ??= this.load();
    return this.starting;
  }

  private async load(): Promise<number> {
    const storage = this.storage;
    if (storage === null) return 0;
    await storage.open();
    const state = await storage.readAll();
    this.restoring = true;
    let restored: Restored;
    try {
      restored = restoreFromStorage(this, state, Date.now());
    } finally {
      this.restoring = false;
    }
    restored.finish();
    return restored.subscriptions;
  }

  /**
   * Collects the storage writes made until endWrites(), so an acknowledgement can wait for
   * them. Only around synchronous code, never nested.
   */
  beginWrites(): void {
    this.collecting = true;
  }

  /** After a window that wrote: what a handler that threw before endWrites() left is written. */
  private readonly leftover = (): void => {
    if (!this.collecting && this.batch === null) return;
    this.collecting = false;
    this.endWrites();
  };

  /**
   * Writes what was collected since beginWrites(), as one write (a publish to a thousand
   * offline sessions is one promise, not a thousand); null when there was nothing.
   */
  endWrites(): Promise<void> | null {
    this.collecting = false;
    const batch = this.batch;
    if (batch === null) return null;
    this.batch = null;
    return this.writeNow(batch.length === 1 ? batch[0]! : batch);
  }

  /** True while the storage is maxStoragePendingBytes behind: writers are held back. */
  get storageBacklogged(): boolean {
    return this.storageWait !== null;
  }

  /**
   * For a client whose packet just wrote to storage: null while the storage keeps up, else a
   * promise that resolves once it is back under half of maxStoragePendingBytes, for the client
   * to wait on (its reading pauses).
   */
  storageBacklog(): Promise<void> | null {
    if (this.storageWait !== null) return this.storageWait;
    const storage = this.storage;
    if (storage === null) return null;
    const pending = storage.pendingBytes;
    const max = this.options.maxStoragePendingBytes;
    if (pending <= max) return null;
    this.stats.storageBacklogs++;
    const since = Date.now();
    this.warn(
      this.backlogWarning,
      "broker/storage",
      `storage is ${mib(pending)} behind (maxStoragePendingBytes ${mib(max)}); holding back ` +
        `the clients that write until it is under ${mib(max / 2)}`,
    );
    const wait = storage.whenBelow(Math.floor(max / 2)).then(() => {
      this.storageWait = null;
      if (this.ctx.logs(LogLevel.DEBUG))
        this.log(LogLevel.DEBUG, "broker/storage", `storage caught up in ${Date.now() - since} ms`);
      this.releaseHeld();
    });
    this.storageWait = wait;
    return wait;
  }

  /** The storage caught up: sessions whose queue waited for it send on, in the order they waited. */
  private releaseHeld(): void {
    const held = this.storageHeld;
    this.storageHeld = null;
    if (held === null) return;
    for (const session of held) {
      // Behind again: the rest waits for the next round.
      if (this.storageWait !== null) (this.storageHeld ??= new Set()).add(session);
      else this.pump(session);
    }
  }

  /** Writes a change of a session, if the session is kept in storage. */
  persist(session: Session, op: StorageOp): void {
    if (this.storage === null || this.restoring) return;
    if (!session.persistent && !session.stored) return;
    session.stored = true;
    this.write(op);
  }

  /** Writes a change; a failure is logged (and fails whatever acknowledgement waits on it). */
  write(op: StorageOp): void {
    if (this.storage === null || this.restoring) return;
    if (!this.collecting) this.writeNow(op);
    else if (this.batch !== null) this.batch.push(op);
    else {
      this.batch = [op];
      queueMicrotask(this.leftover);
    }
  }

  private writeNow(ops: StorageOp | StorageOp[]): Promise<void> {
    const done = this.storage!.write(ops);
    // Logged here, so that a write nobody waits for (a QoS 0 publish) is never an unhandled
    // rejection, which would end the process.
    done.catch((error: unknown) =>
      this.log(LogLevel.CRITICAL, "broker/storage", `storage write failed: ${describe(error)}`),
    );
    return done;
  }

  /** The next key of a stored delivery, or 0 when the session is not stored. */
  private seqFor(session: Session): number {
    return this.storage !== null && !this.restoring && session.persistent
      ? this.storage.nextSeq()
      : 0;
  }

  /** Serves a new transport (from any listener). */
  attach(transport: Transport): ServerConn {
    const conn = new ServerConn(this, transport);
    this.allConnections.add(conn);
    this.stats.connectionsAccepted++;
    this.startSweep();
    return conn;
  }

  /** Called by a connection once it is closed. */
  detach(conn: ServerConn): void {
    this.allConnections.delete(conn);
    if (this.connections.get(conn.clientId) === conn) this.connections.delete(conn.clientId);
  }

  // --- publishing ----------------------------------------------------------------------------

  /**
   * Publishes a message: updates the retained store when it is retained, then routes it.
   * Returns how many sessions it went to.
   */
  publish(msg: BrokerMessage): number {
    if (msg.retain && this.options.retainAvailable) {
      // The topic's previous message goes first, so that its room counts for the new one.
      const replaced = this.retained.delete(msg.topic);
      if (msg.payload.length > 0 && !this.memory.fits(msg, this.options.maxTotalMessageBytes)) {
        // Not kept, and the one it replaced is not either: it would be stale.
        if (replaced) this.write({ op: "unretain", topic: msg.topic });
        this.log(
          LogLevel.WARNING,
          "broker/retained",
          `maxTotalMessageBytes reached; message on ${msg.topic} delivered but not retained`,
        );
      } else {
        this.retained.set(msg);
        this.write({ op: "retain", message: toStored(msg) });
      }
    }
    const outer = this.fanningOut;
    this.fanningOut = msg;
    try {
      return this.router.route(msg);
    } finally {
      this.fanningOut = outer;
      // The encodings shared by this fan-out go with it: a message held for later must keep
      // no more than it is counted for (two encodings would nearly triple it).
      msg.encodedV4 = undefined;
      msg.encodedV5 = undefined;
    }
  }

  /** Hands one delivery to a session: sent, queued, or dropped by the session's limits. */
  deliver(
    session: Session,
    msg: BrokerMessage,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | null,
    shared: Subscription | null = null,
  ): void {
    // Kept to give the message to another member if this session ends before it is
    // acknowledged (v5 4.8.2). A WeakMap: nothing to remove when the flow completes.
    if (shared !== null && qos > 0) (session.sharedVia ??= new WeakMap()).set(msg, shared);
    const output = session.output;
    if (output === null) {
      if (!session.persistent || (qos === 0 && !this.options.queueQoS0)) return;
      if (!this.admits(session, msg)) return;
      this.enqueue(session, { msg, qos, retain, subscriptionIds, seq: this.seqFor(session) });
      return;
    }
    if (qos === 0) {
      if (output.sendPublish({ msg, qos, retain, subscriptionIds, seq: 0 }, 0, false))
        this.stats.messagesSent++;
      else this.stats.messagesDropped++;
      return;
    }
    if (!this.admits(session, msg)) return;
    const seq = this.seqFor(session);
    // Keep order: while anything is queued or waits to be resent, new messages go behind it.
    if (
      session.queueLength > 0 ||
      session.unsentCount > 0 ||
      session.sentCount >= output.sendQuota
    ) {
      this.enqueue(session, { msg, qos, retain, subscriptionIds, seq });
      return;
    }
    this.sendInflight(session, { msg, qos, retain, subscriptionIds, seq });
  }

  /** Whether the session may hold one more message within maxTotalMessageBytes; else drops it. */
  private admits(session: Session, msg: BrokerMessage): boolean {
    if (this.memory.fits(msg, this.options.maxTotalMessageBytes)) return true;
    session.dropped++;
    this.stats.messagesDropped++;
    this.warn(
      this.dropWarning,
      "broker/queue",
      `maxTotalMessageBytes reached; message on ${msg.topic} to ${session.clientId} dropped`,
    );
    return false;
  }

  /** A warning that repeats under load: at most one line per the throttle's interval. */
  private warn(throttle: ThrottledWarning, topic: string, message: string): void {
    if (!this.ctx.logs(LogLevel.WARNING)) return;
    const line = throttle.line(message);
    if (line !== null) this.log(LogLevel.WARNING, topic, line);
  }

  private enqueue(session: Session, pending: Pending): void {
    if (session.enqueue(pending, this.options.maxQueuedMessages, this.options.maxQueuedBytes)) {
      if (pending.seq !== 0) {
        const delivery = toDelivery(pending, "queued", 0);
        this.persist(session, { op: "delivery", clientId: session.clientId, delivery });
      }
    } else {
      this.stats.messagesDropped++;
      this.warn(
        this.dropWarning,
        "broker/queue",
        `queue of ${session.clientId} is full; message on ${pending.msg.topic} dropped`,
      );
    }
  }

  private sendInflight(session: Session, pending: Pending): boolean {
    const output = session.output!;
    const id = session.allocatePacketId();
    if (id === 0) return false;
    const entry: Outgoing = {
      msg: pending.msg,
      qos: pending.qos as 1 | 2,
      retain: pending.retain,
      subscriptionIds: pending.subscriptionIds,
      seq: pending.seq,
      state: "publish",
      sent: true,
      since: 0,
    };
    session.addInflight(id, entry);
    if (entry.seq !== 0) {
      const delivery = toDelivery(entry, "publish", id);
      this.persist(session, { op: "delivery", clientId: session.clientId, delivery });
    }
    if (output.sendPublish(pending, id, false)) {
      this.stats.messagesSent++;
    } else {
      // Too large for this client [MQTT-3.1.2-25]: it counts as delivered and is dropped.
      this.completeFlow(session, id);
      this.stats.messagesDropped++;
    }
    return true;
  }

  /** A QoS 1/2 flow to the client ended (acknowledged, or refused): it leaves storage too. */
  completeFlow(session: Session, packetId: number): void {
    const entry = session.complete(packetId);
    if (entry !== undefined) this.released(session, entry);
  }

  /** The client sent PUBREC: the message is delivered, PUBREL is next. */
  markPubrel(session: Session, packetId: number, entry: Outgoing): void {
    entry.state = "pubrel";
    if (entry.seq !== 0) {
      const delivery = toDelivery(entry, "pubrel", packetId);
      this.persist(session, { op: "delivery", clientId: session.clientId, delivery });
    }
  }

  /** A stored delivery is done with. */
  private released(session: Session, d: Pending | Outgoing): void {
    if (d.seq !== 0)
      this.persist(session, { op: "release", clientId: session.clientId, seq: d.seq });
  }

  /** Sends what the session's window and queue allow (after an ack, or on reconnect). */
  pump(session: Session): void {
    const output = session.output;
    if (output === null) return;
    if (session.unsentCount > 0 && !this.resend(session, output)) return;
    const now = Date.now();
    while (session.queueLength > 0) {
      const head = session.queue![0]!;
      if (isExpired(head.msg, now)) {
        session.dequeue();
        this.released(session, head);
        continue;
      }
      // Taking a stored message out of the queue writes (its release, or its state in flight):
      // with the storage behind, it waits (a client that reads and acknowledges fast would
      // otherwise write as fast as it reads).
      if (head.seq !== 0 && this.storageBacklog() !== null) {
        (this.storageHeld ??= new Set()).add(session);
        break;
      }
      if (head.qos === 0) {
        session.dequeue();
        this.released(session, head);
        if (output.sendPublish(head, 0, false)) this.stats.messagesSent++;
        continue;
      }
      if (session.sentCount >= output.sendQuota) break;
      session.dequeue();
      if (!this.sendInflight(session, head)) break;
    }
  }

  /**
   * A client is back on its session: what was in flight is resent, with DUP [MQTT-4.4.0-1], as
   * far as its Receive Maximum allows (the rest as acknowledgements free the window), then the
   * queue is pumped.
   */
  resume(session: Session): void {
    session.sentCount = 0;
    session.unsentCount = 0;
    if (session.inflight !== null) {
      for (const entry of session.inflight.values()) entry.sent = false;
      session.unsentCount = session.inflight.size;
    }
    this.pump(session);
  }

  /** Resends in-flight messages not yet resent on this connection; true when none is left. */
  private resend(session: Session, output: SessionOutput): boolean {
    for (const [id, entry] of session.inflight!) {
      if (entry.sent) continue;
      if (session.sentCount >= output.sendQuota) return false;
      entry.sent = true;
      session.sentCount++;
      session.unsentCount--;
      if (entry.state === "pubrel") output.sendPubrel(id);
      else if (!output.sendPublish(entry, id, true)) {
        // Too large for the Maximum Packet Size of this connection (a client may lower it when
        // it comes back): dropped as if delivered [MQTT-3.1.2-25], as on the first send.
        // Kept, it would hold a Receive Maximum slot for good.
        this.completeFlow(session, id);
        this.stats.messagesDropped++;
      }
    }
    return true;
  }

  // --- subscriptions ---------------------------------------------------------------------------

  /** Shared subscription groups (`$share/<group>/<filter>`) that have members. */
  get sharedGroupCount(): number {
    return this.router.groupCount;
  }

  /** Adds or replaces a subscription; returns true when it did not exist before. */
  subscribe(sub: Subscription): boolean {
    const session = sub.session;
    const old = session.setSubscription(sub);
    if (old !== undefined) this.subscriptions.remove(old.topicFilter, old);
    else {
      // A replacement has the same filter, so the same group and cost: only a new one counts.
      this.subscriptionBytes += subscriptionCost(sub.filter);
      if (sub.group !== null) this.router.joinGroup(sub.group, sub.topicFilter);
    }
    this.subscriptions.add(sub.topicFilter, sub);
    this.persist(session, {
      op: "sub",
      clientId: session.clientId,
      sub: {
        filter: sub.filter,
        qos: sub.qos,
        noLocal: sub.noLocal,
        retainAsPublished: sub.retainAsPublished,
        retainHandling: sub.retainHandling,
        subscriptionIdentifier: sub.subscriptionIdentifier,
      },
    });
    return old === undefined;
  }

  /** Removes a subscription; false when the session had none with that filter. */
  unsubscribe(session: Session, filter: string): boolean {
    const sub = session.deleteSubscription(filter);
    if (sub === undefined) return false;
    this.subscriptions.remove(sub.topicFilter, sub);
    this.subscriptionBytes -= subscriptionCost(sub.filter);
    if (sub.group !== null) this.router.leaveGroup(sub.group, sub.topicFilter);
    this.persist(session, { op: "unsub", clientId: session.clientId, filter });
    return true;
  }

  /** The session's client went away: it ends after its expiry interval (never for 0xFFFFFFFF). */
  sessionDetached(session: Session, now: number): void {
    session.holdLong();
    this.persist(session, {
      op: "session",
      clientId: session.clientId,
      info: { expiryInterval: session.expiryInterval, disconnectedAt: now },
    });
    if (session.expiryInterval === 0xffffffff) return;
    session.expiresAt = now + session.expiryInterval * 1000;
    this.expiring.add(session);
    this.startSweep();
  }

  /**
   * A connection that was taking `session` over went away before its CONNACK: unless another
   * connection holds the session now, it is left as if its client disconnected.
   */
  sessionLost(session: Session, conn: ServerConn): void {
    if (session.output !== null || this.sessions.get(session.clientId) !== session) return;
    const live = this.connections.get(session.clientId);
    if (live !== undefined && live !== conn && live.state < ConnState.CLOSING) return;
    if (session.persistent) this.sessionDetached(session, Date.now());
    else this.endSession(session);
  }

  /** The session's client is back. */
  sessionAttached(session: Session): void {
    session.keepsLong = false;
    session.expiresAt = 0;
    this.expiring.delete(session);
  }

  /**
   * The QoS 1/2 messages a session holds through a shared subscription and has not
   * acknowledged (queued, or in flight before PUBREC), in order, with the subscription.
   */
  private sharedOrphans(session: Session): [Subscription, BrokerMessage][] {
    const via = session.sharedVia;
    const out: [Subscription, BrokerMessage][] = [];
    if (via === null) return out;
    if (session.inflight !== null)
      for (const entry of session.inflight.values()) {
        const sub = entry.state === "publish" ? via.get(entry.msg) : undefined;
        if (sub !== undefined) out.push([sub, entry.msg]);
      }
    if (session.queue !== null)
      for (const pending of session.queue) {
        const sub = pending.qos > 0 ? via.get(pending.msg) : undefined;
        if (sub !== undefined) out.push([sub, pending.msg]);
      }
    return out;
  }

  /** Ends a session: its subscriptions go, its queue and in-flight messages are dropped. */
  endSession(session: Session): void {
    this.expiring.delete(session);
    // One "drop" removes everything stored: the unsubscribes below write nothing.
    const stored = session.stored;
    session.stored = false;
    session.expiryInterval = 0;
    const orphans = this.sharedOrphans(session);
    for (const filter of [...session.subscriptions.keys()]) this.unsubscribe(session, filter);
    session.clearMessages();
    // v5 4.8.2: what a shared subscription gave this session and it never acknowledged goes to
    // another member of the group ("SHOULD"; 3.1.1 clients alike). Without, a clean-session
    // member that went away lost every message it held.
    for (const [via, msg] of orphans) this.router.routeToGroup(via, msg);
    if (stored) this.write({ op: "drop", clientId: session.clientId });
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    const will = this.wills.get(session.clientId);
    if (will !== undefined) {
      // The session ended before the will delay: the will goes now (v5 3.1.3.2.2).
      this.wills.delete(session.clientId);
      this.publish(will.msg);
    }
  }

  // --- wills -------------------------------------------------------------------------------------

  /** Publishes a will now, or after `delaySeconds` unless the session comes back first. */
  scheduleWill(clientId: string, msg: BrokerMessage, delaySeconds: number): void {
    if (delaySeconds <= 0) {
      this.publish(msg);
      return;
    }
    this.scheduleWillAt(clientId, msg, Date.now() + delaySeconds * 1000);
  }

  /** Publishes a will at epoch ms `at` unless its session comes back first. */
  scheduleWillAt(clientId: string, msg: BrokerMessage, at: number): void {
    this.wills.set(clientId, { msg, at });
    const session = this.sessions.get(clientId);
    if (session !== undefined) {
      const will: StoredWill = { message: toStored(msg), at, delay: 0 };
      this.persist(session, { op: "will", clientId, will });
    }
    this.startSweep();
  }

  /** A client reconnected to its session: its pending will must not be sent [MQTT-3.1.3-9]. */
  cancelWill(clientId: string): void {
    this.wills.delete(clientId);
  }

  /**
   * The connection of a persistent session ended: its armed will was published, scheduled
   * (stored with its time) or cleared by DISCONNECT; unless scheduled, storage forgets it.
   */
  willSettled(session: Session): void {
    if (!this.wills.has(session.clientId))
      this.persist(session, { op: "unwill", clientId: session.clientId });
  }

  /** Pending wills (introspection and tests). */
  get pendingWills(): number {
    return this.wills.size;
  }

  // --- housekeeping --------------------------------------------------------------------------------

  private startSweep(): void {
    if (this.sweepTimer !== null) return;
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    // Listeners keep the process alive, not this timer.
    this.sweepTimer.unref();
  }

  /** Keep alive, connect and write timeouts, session expiry and delayed wills. */
  sweep(now = Date.now()): void {
    this.memory.tick++;
    for (const conn of this.allConnections) {
      try {
        conn.checkTimers(now);
      } catch (error) {
        this.log(LogLevel.CRITICAL, "broker/sweep", `timer check failed: ${describe(error)}`);
      }
    }
    // A client that leaves a message unacknowledged for a second may keep what it holds for
    // long: its messages keep their own bytes only, not the network chunks they came in.
    for (const conn of this.connections.values()) conn.session?.checkHeld(HELD_LONG_SWEEPS);
    for (const session of this.expiring) {
      if (now >= session.expiresAt) {
        this.log(LogLevel.DEBUG, "broker/session", `session ${session.clientId} expired`);
        this.endSession(session);
      }
    }
    for (const [clientId, will] of this.wills) {
      if (now >= will.at) {
        this.wills.delete(clientId);
        this.publish(will.msg);
        const session = this.sessions.get(clientId);
        if (session !== undefined) this.persist(session, { op: "unwill", clientId });
      }
    }
  }

  /** Stops the sweep and closes every connection (the context is exiting). */
  async close(): Promise<void> {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const closing = [...this.allConnections];
    for (const conn of closing) conn.close(0x8b);
    // The sweep that drops a peer that does not close its side is stopped: this does it once.
    // (Not holding the process: an open socket does, and then this fires.)
    setTimeout(() => {
      for (const conn of closing) conn.channel.destroy();
    }, CLOSE_GRACE_MS).unref();
    // Waits for the writes the closing made (sessions detached, wills) before closing.
    await this.storage?.close();
  }

  /** The session of `clientId`, created when there is none. */
  sessionFor(clientId: string): Session {
    let session = this.sessions.get(clientId);
    if (session === undefined) {
      session = new Session(clientId, this.memory);
      this.sessions.set(clientId, session);
    }
    return session;
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
