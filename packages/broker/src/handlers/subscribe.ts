import {
  isValidTopicFilter,
  PacketType,
  parseSharedSubscription,
  type QoS,
  ReasonCode,
  type Subscription as Requested,
  type SubscribePacket,
} from "@myqtt/codec";
import { describe, isPromise, LogLevel, QOS_DENIED } from "@myqtt/core";
import type { ServerConn } from "../server-conn.js";
import { type Session, type Subscription, subscriptionCost } from "../session.js";
import { topicProblem } from "../topic-limits.js";

/** A SUBSCRIBE: each filter checked and offered to the hook, in order; SUBACK; retained. */
export function handleSubscribe(
  conn: ServerConn,
  p: SubscribePacket,
): undefined | Promise<unknown> {
  const hook = conn.ctx.hooks.subscribe;
  const codes: number[] = [];
  const requested = p.subscriptions;
  const quota = SubscriptionQuota.for(conn, requested);
  let i = 0;
  const granted = (entry: Requested, code: number): void => {
    codes.push(code);
    if (code < 0x80) quota?.taken(entry.topicFilter);
  };
  const next = (): undefined | Promise<unknown> => {
    for (; i < requested.length; i++) {
      const entry = requested[i]!;
      const failure = check(conn, entry);
      if (failure !== 0) {
        codes.push(failure);
        continue;
      }
      const full = quota === null ? null : quota.refuses(entry.topicFilter);
      if (full !== null) {
        conn.log(LogLevel.DEBUG, `${conn.clientId}: ${entry.topicFilter} refused, ${full} reached`);
        codes.push(failureCode(conn, ReasonCode.QUOTA_EXCEEDED));
        continue;
      }
      if (hook === null) {
        granted(entry, entry.qos);
        continue;
      }
      let answer: number | Promise<number>;
      try {
        answer = hook.handler(conn.ctx, conn, entry.topicFilter, entry.qos, hook.data);
      } catch (error) {
        codes.push(hookFailed(conn, entry, error));
        continue;
      }
      if (isPromise<number>(answer)) {
        i++;
        return answer.then(
          (qos) => {
            granted(entry, grant(conn, entry, qos));
            return next();
          },
          (error: unknown) => {
            codes.push(hookFailed(conn, entry, error));
            return next();
          },
        );
      }
      granted(entry, grant(conn, entry, answer));
    }
    return done(conn, p, codes);
  };
  return next();
}

/**
 * The room for new subscriptions while one SUBSCRIBE is answered: the session's
 * (maxSubscriptionsPerClient) and the broker's (maxTotalSubscriptionBytes). A filter the
 * session already has, or one granted earlier in the packet, replaces and takes no room.
 */
class SubscriptionQuota {
  private readonly fresh = new Set<string>();
  private freshBytes = 0;

  private constructor(
    private readonly conn: ServerConn,
    private readonly session: Session,
  ) {}

  /** Null when the packet cannot reach either limit, however many of its filters are new. */
  static for(conn: ServerConn, requested: readonly Requested[]): SubscriptionQuota | null {
    const session = conn.session;
    if (session === null) return null;
    const options = conn.broker.options;
    if (session.subscriptions.size + requested.length > options.maxSubscriptionsPerClient)
      return new SubscriptionQuota(conn, session);
    let bytes = conn.broker.subscriptionBytes;
    for (const entry of requested) bytes += subscriptionCost(entry.topicFilter);
    return bytes > options.maxTotalSubscriptionBytes ? new SubscriptionQuota(conn, session) : null;
  }

  /** Null when the filter fits, else which limit it would pass. */
  refuses(filter: string): string | null {
    if (this.session.subscriptions.has(filter) || this.fresh.has(filter)) return null;
    const broker = this.conn.broker;
    if (
      this.session.subscriptions.size + this.fresh.size >=
      broker.options.maxSubscriptionsPerClient
    )
      return "maxSubscriptionsPerClient";
    const bytes = broker.subscriptionBytes + this.freshBytes + subscriptionCost(filter);
    return bytes > broker.options.maxTotalSubscriptionBytes ? "maxTotalSubscriptionBytes" : null;
  }

  taken(filter: string): void {
    if (this.session.subscriptions.has(filter) || this.fresh.has(filter)) return;
    this.fresh.add(filter);
    this.freshBytes += subscriptionCost(filter);
  }
}

function failureCode(conn: ServerConn, v5Code: number): number {
  return conn.protocolVersion === 5 ? v5Code : 0x80;
}

/** 0 when the filter may be subscribed, else the SUBACK failure code. */
function check(conn: ServerConn, entry: Requested): number {
  const filter = entry.topicFilter;
  if (!isValidTopicFilter(filter)) {
    conn.log(LogLevel.DEBUG, `${conn.clientId}: invalid topic filter ${JSON.stringify(filter)}`);
    return failureCode(conn, ReasonCode.TOPIC_FILTER_INVALID);
  }
  // The limits apply to the filter that is matched, not to a `$share/<group>/` prefix; the
  // group name, kept with each member, is held to maxTopicLength on its own.
  const shared = parseSharedSubscription(filter);
  const options = conn.broker.options;
  const problem = topicProblem(shared === null ? filter : shared.topicFilter, options);
  if (problem !== null) {
    conn.log(LogLevel.DEBUG, `${conn.clientId}: topic filter ${problem}`);
    return failureCode(conn, ReasonCode.TOPIC_FILTER_INVALID);
  }
  if (shared !== null && Buffer.byteLength(shared.group, "utf8") > options.maxTopicLength) {
    conn.log(LogLevel.DEBUG, `${conn.clientId}: shared group name longer than maxTopicLength`);
    return failureCode(conn, ReasonCode.TOPIC_FILTER_INVALID);
  }
  return 0;
}

/**
 * The subscribe hook's answer for a filter asked at `requested`: a QoS it may lower, not raise
 * (3.9.3: the server may grant less than asked), or a failure code. Anything else (3 to 127, a
 * forgotten return) fails the filter with 0x80, logged.
 */
function grant(conn: ServerConn, entry: Requested, granted: unknown): number {
  if (typeof granted === "number" && Number.isInteger(granted)) {
    if (granted >= 0 && granted <= 2) return Math.min(granted, entry.qos);
    if (granted >= 0x80 || granted === QOS_DENIED) return failureCode(conn, granted);
  }
  return hookFailed(conn, entry, new TypeError(`it returned ${String(granted)}, not a QoS`));
}

function hookFailed(conn: ServerConn, entry: Requested, error: unknown): number {
  conn.log(LogLevel.CRITICAL, `subscribe hook failed on ${entry.topicFilter}: ${describe(error)}`);
  return failureCode(conn, ReasonCode.UNSPECIFIED_ERROR);
}

/**
 * Takes the granted subscriptions, answers SUBACK once storage holds them, then sends what is
 * retained for them.
 */
function done(conn: ServerConn, p: SubscribePacket, codes: number[]): undefined | Promise<void> {
  const broker = conn.broker;
  const session = conn.session;
  if (session === null || conn.channel.closed) return undefined;
  broker.beginWrites();
  const subscriptionIdentifier = p.properties?.subscriptionIdentifier;
  const retainedFor: [Subscription, boolean][] = [];
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code >= 0x80) continue;
    const entry = p.subscriptions[i]!;
    const shared = parseSharedSubscription(entry.topicFilter);
    const sub: Subscription = {
      session,
      filter: entry.topicFilter,
      topicFilter: shared === null ? entry.topicFilter : shared.topicFilter,
      group: shared === null ? null : shared.group,
      qos: code as QoS,
      noLocal: entry.noLocal ?? false,
      retainAsPublished: entry.retainAsPublished ?? false,
      retainHandling: entry.retainHandling ?? 0,
      subscriptionIdentifier,
    };
    const isNew = broker.subscribe(sub);
    retainedFor.push([sub, isNew]);
  }
  const stored = broker.endWrites();
  const reply = (): void => {
    conn.send({ type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: codes });
    sendRetained(conn, session, retainedFor);
  };
  const waiting = conn.ackAfter(stored, reply);
  return waiting === null ? undefined : waiting;
}

/** [MQTT-3.3.1-6]: what is retained for the new subscriptions, with RETAIN set. */
function sendRetained(
  conn: ServerConn,
  session: Session,
  retainedFor: [Subscription, boolean][],
): void {
  const broker = conn.broker;
  if (!broker.options.retainAvailable || broker.retained.size === 0) return;
  const now = Date.now();
  for (const [sub, isNew] of retainedFor) {
    // Shared subscriptions get no retained messages (v5 4.8.2); Retain Handling decides the rest.
    if (sub.group !== null || sub.retainHandling === 2 || (sub.retainHandling === 1 && !isNew))
      continue;
    const ids = sub.subscriptionIdentifier === undefined ? null : [sub.subscriptionIdentifier];
    for (const msg of broker.retained.match(sub.topicFilter, now)) {
      // [MQTT-3.3.1-8]: RETAIN is 1 on messages sent because of a new subscription.
      broker.deliver(session, msg, Math.min(msg.qos, sub.qos) as QoS, true, ids);
    }
  }
}
