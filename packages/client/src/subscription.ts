import { match, parseSharedSubscription, type QoS, type RetainHandling } from "@myqtt/codec";
import type { Msg } from "@myqtt/core";

/** Options of one subscribe call. */
export interface SubscribeOptions {
  qos?: QoS;
  /** 5.0: do not receive your own publications. */
  noLocal?: boolean;
  /** 5.0: keep the RETAIN flag of forwarded messages. */
  retainAsPublished?: boolean;
  /** 5.0: 0 send retained messages on subscribe, 1 only for a new subscription, 2 never. */
  retainHandling?: RetainHandling;
  /** 5.0: the Subscription Identifier (the client assigns one itself when it can). */
  subscriptionIdentifier?: number;
  /**
   * false: the Subscription is only a handle (for unsubscribe); its messages reach the
   * client's "message" listeners but are not buffered for iteration (default true).
   */
  iterate?: boolean;
  signal?: AbortSignal;
}

/** What a Subscription needs from its client. */
export interface SubscriptionOwner {
  unsubscribeFor(subscription: Subscription): Promise<void>;
}

/**
 * The messages of one subscribe call: an async iterable (`for await (const msg of sub)`),
 * with `unsubscribe()` and `Symbol.asyncDispose`. It buffers up to a bound for a slow reader;
 * beyond it the client stops reading from the server until the reader catches up, unless the
 * client waits for an answer from the server (a publish, subscribe, ping... awaited in the
 * loop body): then it reads on, withholds the acknowledgement of the QoS 1/2 messages it
 * buffers past the bound (the server's in-flight window bounds them) and drops the QoS 0
 * messages past it (counted in `dropped`, reported by the client's "drop" event).
 */
export class Subscription implements AsyncIterable<Msg> {
  /** The granted QoS (or failure code) of each filter, in order. */
  readonly granted: number[];
  private readonly buffer: Msg[] = [];
  private readonly waiters: Array<(result: IteratorResult<Msg>) => void> = [];
  private done = false;
  private drainWaiters: Array<() => void> = [];
  private droppedCount = 0;
  /** The patterns matched against topics (shared prefixes taken off). */
  private readonly patterns: string[];

  constructor(
    private readonly owner: SubscriptionOwner,
    readonly filters: readonly string[],
    granted: number[],
    /** The identifier the client gave this subscription (5.0), if any. */
    readonly identifier: number | undefined,
    private readonly limit: number,
    private readonly iterate = true,
  ) {
    this.granted = granted;
    this.patterns = filters.map((f) => parseSharedSubscription(f)?.topicFilter ?? f);
  }

  /** Whether a message on `topic` belongs here (used when no identifier tells). */
  matches(topic: string): boolean {
    for (const p of this.patterns) if (match(p, topic)) return true;
    return false;
  }

  /** Whether the subscription still delivers. */
  get active(): boolean {
    return !this.done;
  }

  /** Messages waiting for the reader. */
  get buffered(): number {
    return this.buffer.length;
  }

  /**
   * QoS 0 messages not buffered because the buffer was full while the client read on for an
   * answer from the server.
   */
  get dropped(): number {
    return this.droppedCount;
  }

  /** @internal Whether the buffer is at its bound (a message for it would go past it). */
  get full(): boolean {
    return this.iterate && !this.done && this.buffer.length >= this.limit;
  }

  /** @internal Resolves once the reader took the buffer down to half its bound (now if not full). */
  whenDrained(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** @internal A QoS 0 message for this Subscription was dropped (the buffer was full). */
  drop(): void {
    this.droppedCount++;
  }

  /**
   * @internal Hands a message over; returns a promise while the buffer is at or over its
   * bound, settled once the reader took it down to half the bound (or the iteration ended).
   */
  push(msg: Msg): Promise<void> | undefined {
    if (this.done || !this.iterate) return undefined;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter({ value: msg, done: false });
      return undefined;
    }
    this.buffer.push(msg);
    if (this.buffer.length < this.limit) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** The next message; resolves done when the subscription ends. */
  next(): Promise<IteratorResult<Msg>> {
    const msg = this.buffer.shift();
    if (msg !== undefined) {
      if (this.drainWaiters.length > 0 && this.buffer.length <= this.limit / 2) this.releaseDrain();
      return Promise.resolve({ value: msg, done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  [Symbol.asyncIterator](): AsyncIterator<Msg> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.unsubscribe();
        return { value: undefined, done: true };
      },
    };
  }

  /** Unsubscribes (UNSUBSCRIBE to the server) and ends the iteration. */
  async unsubscribe(): Promise<void> {
    if (this.done) return;
    this.end();
    await this.owner.unsubscribeFor(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.unsubscribe();
  }

  /** @internal Ends the iteration (the client closed, or unsubscribe). */
  end(): void {
    if (this.done) return;
    this.done = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
    this.releaseDrain();
  }

  private releaseDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
