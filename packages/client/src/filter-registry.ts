import type { Subscription as SubscriptionRequest } from "@myqtt/codec";
import type { Subscription } from "./subscription.js";

/** What the client keeps of a filter: to route its messages and to subscribe again. */
export interface FilterRecord {
  request: SubscriptionRequest;
  /** The Subscription Identifier the server holds for this filter (5.0), if any. */
  identifier: number | undefined;
  subscriptions: Set<Subscription>;
}

/**
 * The filters a client is subscribed to, with the Subscriptions on each and the identifier the
 * server holds for it. Two Subscriptions on one filter share that identifier (a second
 * SUBSCRIBE replaces the server's subscription, identifier included), so messages are routed
 * identifier → filters → Subscriptions.
 */
export class FilterRegistry {
  private readonly byFilter = new Map<string, FilterRecord>();
  private readonly byIdentifier = new Map<number, Set<string>>();

  get(filter: string): FilterRecord | undefined {
    return this.byFilter.get(filter);
  }

  records(): IterableIterator<FilterRecord> {
    return this.byFilter.values();
  }

  /** A copy of the record of `filter`, to put back with restore(). */
  snapshot(filter: string): FilterRecord | undefined {
    const record = this.byFilter.get(filter);
    return record === undefined
      ? undefined
      : { ...record, subscriptions: new Set(record.subscriptions) };
  }

  /** Records `subscription` on `filter`, as the server will hold it (request, identifier). */
  add(
    filter: string,
    request: SubscriptionRequest,
    identifier: number | undefined,
    subscription: Subscription,
  ): void {
    let record = this.byFilter.get(filter);
    if (record === undefined) {
      record = { request, identifier: undefined, subscriptions: new Set() };
      this.byFilter.set(filter, record);
    }
    record.request = request;
    this.index(filter, record, identifier);
    record.subscriptions.add(subscription);
  }

  /** Puts `filter` back as a snapshot had it, or removes it (undefined). */
  restore(filter: string, previous: FilterRecord | undefined): void {
    const current = this.byFilter.get(filter);
    if (current !== undefined) this.index(filter, current, undefined);
    if (previous === undefined) {
      this.byFilter.delete(filter);
      return;
    }
    this.byFilter.set(filter, previous);
    this.index(filter, previous, previous.identifier, true);
  }

  /** Calls `fn` once for each Subscription reached by `identifiers` whose filters match `topic`. */
  forEachByIdentifiers(
    identifiers: readonly number[],
    topic: string,
    fn: (sub: Subscription) => void,
  ): void {
    const reached = new Set<Subscription>();
    for (const id of identifiers) {
      for (const filter of this.byIdentifier.get(id) ?? []) {
        for (const sub of this.byFilter.get(filter)?.subscriptions ?? []) {
          if (reached.has(sub) || !sub.matches(topic)) continue;
          reached.add(sub);
          fn(sub);
        }
      }
    }
  }

  clear(): void {
    this.byFilter.clear();
    this.byIdentifier.clear();
  }

  private index(
    filter: string,
    record: FilterRecord,
    identifier: number | undefined,
    force = false,
  ): void {
    if (!force && record.identifier === identifier) return;
    if (record.identifier !== undefined) {
      const set = this.byIdentifier.get(record.identifier);
      set?.delete(filter);
      if (set?.size === 0) this.byIdentifier.delete(record.identifier);
    }
    record.identifier = identifier;
    if (identifier !== undefined) {
      let set = this.byIdentifier.get(identifier);
      if (set === undefined) {
        set = new Set();
        this.byIdentifier.set(identifier, set);
      }
      set.add(filter);
    }
  }
}
