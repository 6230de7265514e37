import type { QoS, RetainHandling } from "@myqtt/codec";
import { type BrokerMessage, detach, sizeOf, stringBytes } from "./message.js";
import type { MessageMemory } from "./message-memory.js";

/** One subscription of a session. */
export interface Subscription {
  readonly session: Session;
  /** The filter as subscribed, `$share/<group>/` included. */
  readonly filter: string;
  /** The part matched against topics. */
  readonly topicFilter: string;
  /** The share name of a shared subscription, else null. */
  readonly group: string | null;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: RetainHandling;
  subscriptionIdentifier: number | undefined;
}

/**
 * Beside its filter's text, what one subscription takes: the Subscription, its entries in the
 * session's map, in the trie's set for its filter and in the storage's record (measured on
 * Node 20: 370 bytes without storage, 500 with FileStorage; a shared one 570 / 700).
 */
export const SUBSCRIPTION_BYTES = 512;

/**
 * What each level of a wildcard filter may take: the trie keeps such a filter as one node per
 * level, each with its map of children and its level's string (measured on Node 20: 238
 * bytes for one-character levels, 269 for 13-character ones, 276 for 12-character levels of
 * two-byte characters). Counted for every level, as though no other filter shared the node.
 */
export const WILDCARD_LEVEL_BYTES = 280;

/**
 * What a subscription is counted for against maxTotalSubscriptionBytes: its filter's text,
 * held twice as large when a character needs two bytes in the JavaScript string (V8 then keeps
 * every character in two), SUBSCRIPTION_BYTES, and WILDCARD_LEVEL_BYTES per level of a filter
 * with a wildcard (a shared filter's `$share/<group>/` is not in the trie). Measured against
 * the heap on Node 20: an 8 KB shared filter takes 8.8 KB and is counted 8.7 KB; a
 * 128-level `x/a/a/.../#` of 260 bytes takes 31 KB (counted 36.6 KB; it was counted 773
 * bytes, which let 137,000 of them run the broker out of heap within the default budget).
 */
export function subscriptionCost(filter: string): number {
  // Native scans (includes, indexOf, a regular expression): a loop over the characters took
  // 50 times as long, 20 µs for an 8 KB filter, counted several times for each subscription.
  const text = stringBytes(filter);
  if (!filter.includes("+") && !filter.includes("#")) return SUBSCRIPTION_BYTES + text;
  let levels = filter.startsWith("$share/") ? -1 : 1;
  for (let i = filter.indexOf("/"); i !== -1; i = filter.indexOf("/", i + 1)) levels++;
  return SUBSCRIPTION_BYTES + text + levels * WILDCARD_LEVEL_BYTES;
}

/** A QoS 1/2 message sent and not yet fully acknowledged. */
export interface Outgoing {
  readonly msg: BrokerMessage;
  readonly qos: 1 | 2;
  readonly retain: boolean;
  readonly subscriptionIds: number[] | null;
  /** Its key in storage (0: not stored). */
  readonly seq: number;
  /** "publish": waiting for PUBACK/PUBREC; "pubrel": PUBREL sent, waiting for PUBCOMP. */
  state: "publish" | "pubrel";
  /** Sent on the current connection (false: waiting to be resent after a reconnect). */
  sent: boolean;
  /** The broker's sweep count (MessageMemory.tick) when it was put in flight. */
  since: number;
}

/** A delivery waiting for the client (offline, or its in-flight window is full). */
export interface Pending {
  readonly msg: BrokerMessage;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly subscriptionIds: number[] | null;
  /** Its key in storage (0: not stored). */
  readonly seq: number;
}

/** Where a session's deliveries go while its client is connected. */
export interface SessionOutput {
  /** QoS 1/2 messages the client accepts in flight. */
  readonly sendQuota: number;
  /**
   * Sends a delivery; false when it was dropped for good (QoS 0 to a backed-up client, larger
   * than the client accepts). A QoS 1/2 message to a connection that just closed counts as
   * sent: it stays in flight and is resent when the session resumes.
   */
  sendPublish(pending: Pending, packetId: number, dup: boolean): boolean;
  sendPubrel(packetId: number): void;
}

const NO_SUBSCRIPTIONS: ReadonlyMap<string, Subscription> = new Map();

/**
 * The state of one client id that outlives a connection when the session is persistent:
 * subscriptions, QoS 1/2 messages in flight both ways, and the queue of messages waiting.
 */
export class Session {
  readonly clientId: string;
  /** The connection serving it, or null while the client is away. */
  output: SessionOutput | null = null;
  /** Made on the first subscription: most idle connections never subscribe. */
  private subscriptionMap: Map<string, Subscription> | null = null;
  /** Seconds the session outlives its connection: 0 ends it with the connection. */
  expiryInterval = 0;
  /** Epoch ms at which a disconnected session ends; 0 while connected or never. */
  expiresAt = 0;
  /** Outgoing QoS 1/2 messages by packet id, in send order. */
  inflight: Map<number, Outgoing> | null = null;
  /** Of those, sent on the current connection: they use its Receive Maximum (v5 4.9). */
  sentCount = 0;
  /** Of those, still to be resent on the current connection. */
  unsentCount = 0;
  /** Deliveries waiting, oldest first. */
  queue: Pending[] | null = null;
  /** The shared subscription each message it holds came through (made on first need). */
  sharedVia: WeakMap<BrokerMessage, Subscription> | null = null;
  queuedBytes = 0;
  /** Messages dropped because the queue was full. */
  dropped = 0;
  /** Incoming QoS 2 packet ids received and not yet released by PUBREL. */
  incomingQoS2: Set<number> | null = null;
  /** Something of it was written to storage: its end must be written too. */
  stored = false;
  private lastPacketId = 0;
  /** The sweep count (MessageMemory.tick) when the queue last moved: took its head, or began. */
  private queueMovedAt = 0;

  /**
   * What the session holds is kept for long: its client is away, left a message in flight
   * unacknowledged for a second, or its queue has not moved for a second. Its held messages are then detached from the network buffers
   * they arrived in (see detach); those of a client that acknowledges in time are not copied.
   */
  keepsLong = false;

  constructor(
    clientId: string,
    private readonly memory: MessageMemory,
  ) {
    this.clientId = clientId;
  }

  /** The subscriptions by filter, as subscribed (`$share/<group>/` included). */
  get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.subscriptionMap ?? NO_SUBSCRIPTIONS;
  }

  /** Adds or replaces the subscription of `sub.filter`; returns the one it replaced. */
  setSubscription(sub: Subscription): Subscription | undefined {
    const map = (this.subscriptionMap ??= new Map());
    const old = map.get(sub.filter);
    map.set(sub.filter, sub);
    return old;
  }

  /** Removes the subscription of `filter`; returns it. */
  deleteSubscription(filter: string): Subscription | undefined {
    const map = this.subscriptionMap;
    const sub = map?.get(filter);
    if (sub !== undefined) map!.delete(filter);
    return sub;
  }

  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** QoS 1/2 messages in flight to the client (introspection). */
  get inflightCount(): number {
    return this.inflight === null ? 0 : this.inflight.size;
  }

  /** Keeps a message sent (or, restored, to resend) until the client acknowledges it. */
  addInflight(packetId: number, entry: Outgoing): void {
    (this.inflight ??= new Map()).set(packetId, entry);
    this.memory.hold(entry.msg);
    entry.since = this.memory.tick;
    if (this.keepsLong) detach(entry.msg);
    if (entry.sent) this.sentCount++;
    else this.unsentCount++;
  }

  /** A QoS 1/2 flow is complete (or refused): forgets it and frees its place in the window. */
  complete(packetId: number): Outgoing | undefined {
    const entry = this.inflight?.get(packetId);
    if (entry === undefined) return undefined;
    this.inflight!.delete(packetId);
    this.memory.release(entry.msg);
    if (entry.sent) this.sentCount--;
    else this.unsentCount--;
    return entry;
  }

  get queueLength(): number {
    return this.queue === null ? 0 : this.queue.length;
  }

  /** The next free packet id (rotating through 1..65535), or 0 when all are in use. */
  allocatePacketId(): number {
    const inflight = this.inflight;
    for (let tries = 0; tries < 65_535; tries++) {
      this.lastPacketId = this.lastPacketId === 65_535 ? 1 : this.lastPacketId + 1;
      if (inflight === null || !inflight.has(this.lastPacketId)) return this.lastPacketId;
    }
    return 0;
  }

  /** Queues a delivery; false (and counted as dropped) when the queue is full. */
  enqueue(pending: Pending, maxMessages: number, maxBytes: number): boolean {
    if (this.queueLength >= maxMessages || this.queuedBytes + sizeOf(pending.msg) > maxBytes) {
      this.dropped++;
      return false;
    }
    this.pushQueued(pending);
    return true;
  }

  /** Queues a delivery whatever the limits (one read back from storage). */
  pushQueued(pending: Pending): void {
    const queue = (this.queue ??= []);
    if (queue.length === 0) this.queueMovedAt = this.memory.tick;
    queue.push(pending);
    this.queuedBytes += sizeOf(pending.msg);
    this.memory.hold(pending.msg);
    if (this.keepsLong) detach(pending.msg);
  }

  /** From now on what the session holds is kept for long: detaches it, and what comes later. */
  holdLong(): void {
    if (this.keepsLong) return;
    this.keepsLong = true;
    if (this.queue !== null) for (const pending of this.queue) detach(pending.msg);
    if (this.inflight !== null) for (const entry of this.inflight.values()) detach(entry.msg);
  }

  /**
   * For the broker's sweep, while the client is connected: holds long once the oldest message
   * in flight has waited for its acknowledgement `sweeps` sweeps, or the queue has not moved
   * for as long (the storage is behind, say, with nothing in flight), and no longer once
   * neither is so. A queue that moves, however long, keeps each message briefly.
   */
  checkHeld(sweeps: number): void {
    const tick = this.memory.tick;
    // The size first: no iterator for the many sessions with nothing in flight.
    const inflight = this.inflight;
    const oldest =
      inflight === null || inflight.size === 0 ? undefined : inflight.values().next().value;
    if (
      (oldest !== undefined && tick - oldest.since >= sweeps) ||
      (this.queueLength > 0 && tick - this.queueMovedAt >= sweeps)
    )
      this.holdLong();
    else this.keepsLong = false;
  }

  /** Takes the oldest queued delivery. */
  dequeue(): Pending | undefined {
    const pending = this.queue?.shift();
    if (pending !== undefined) {
      this.queueMovedAt = this.memory.tick;
      this.queuedBytes -= sizeOf(pending.msg);
      this.memory.release(pending.msg);
    }
    return pending;
  }

  /** Forgets queued and in-flight messages (a clean start, or the session ended). */
  clearMessages(): void {
    if (this.queue !== null) for (const pending of this.queue) this.memory.release(pending.msg);
    if (this.inflight !== null)
      for (const entry of this.inflight.values()) this.memory.release(entry.msg);
    this.queue = null;
    this.queuedBytes = 0;
    this.inflight = null;
    this.sentCount = 0;
    this.unsentCount = 0;
    this.incomingQoS2 = null;
  }
}
