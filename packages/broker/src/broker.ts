import { type QoS, SubscriptionTrie } from "@myqtt/codec";
import { type Ctx, describe, LogLevel, type Transport } from "@myqtt/core";
import { type BrokerMessage, isExpired } from "./message.js";
import { type BrokerOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { RetainedStore } from "./retained.js";
import { Router } from "./router.js";
import { ServerConn } from "./server-conn.js";
import { type Pending, Session, type SessionOutput, type Subscription } from "./session.js";

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
}

/** A will waiting for its delay (v5 3.1.3.2.2) or for its session to end. */
interface PendingWill {
  msg: BrokerMessage;
  at: number;
}

const SWEEP_MS = 250;

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
  readonly retained = new RetainedStore();
  readonly stats: BrokerStats = {
    messagesReceived: 0,
    messagesSent: 0,
    messagesDropped: 0,
    connectionsAccepted: 0,
  };
  private readonly router: Router;
  private readonly wills = new Map<string, PendingWill>();
  /** Sessions whose client is away and that end at `expiresAt`. */
  private readonly expiring = new Set<Session>();
  private sweepTimer: ReturnType<typeof setInterval> | null = null;

  constructor(ctx: Ctx, options: BrokerOptions = {}) {
    this.ctx = ctx;
    this.options = resolveOptions(options);
    this.router = new Router(this.subscriptions, (session, msg, qos, retain, ids) =>
      this.deliver(session, msg, qos, retain, ids),
    );
  }

  /** Changes broker-wide options; connections already open keep what they negotiated. */
  configure(options: BrokerOptions): void {
    this.options = resolveOptions(options, this.options);
  }

  log(level: (typeof LogLevel)[keyof typeof LogLevel], file: string, message: string): void {
    this.ctx.log(level, file, message);
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
    if (msg.retain && this.options.retainAvailable) this.retained.set(msg);
    return this.router.route(msg);
  }

  /** Hands one delivery to a session: sent, queued, or dropped by the session's limits. */
  deliver(
    session: Session,
    msg: BrokerMessage,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | null,
  ): void {
    const output = session.output;
    if (output === null) {
      if (!session.persistent || (qos === 0 && !this.options.queueQoS0)) return;
      this.enqueue(session, { msg, qos, retain, subscriptionIds });
      return;
    }
    if (qos === 0) {
      if (output.sendPublish({ msg, qos, retain, subscriptionIds }, 0, false))
        this.stats.messagesSent++;
      else this.stats.messagesDropped++;
      return;
    }
    // Keep order: while anything is queued or waits to be resent, new messages go behind it.
    if (
      session.queueLength > 0 ||
      session.unsentCount > 0 ||
      session.sentCount >= output.sendQuota
    ) {
      this.enqueue(session, { msg, qos, retain, subscriptionIds });
      return;
    }
    this.sendInflight(session, { msg, qos, retain, subscriptionIds });
  }

  private enqueue(session: Session, pending: Pending): void {
    if (!session.enqueue(pending, this.options.maxQueuedMessages, this.options.maxQueuedBytes)) {
      this.stats.messagesDropped++;
      if (this.ctx.logging) {
        this.log(
          LogLevel.WARNING,
          "broker/queue",
          `queue of ${session.clientId} is full; message on ${pending.msg.topic} dropped`,
        );
      }
    }
  }

  private sendInflight(session: Session, pending: Pending): boolean {
    const output = session.output!;
    const id = session.allocatePacketId();
    if (id === 0) return false;
    const inflight = (session.inflight ??= new Map());
    inflight.set(id, {
      msg: pending.msg,
      qos: pending.qos as 1 | 2,
      retain: pending.retain,
      subscriptionIds: pending.subscriptionIds,
      state: "publish",
      sent: true,
    });
    session.sentCount++;
    if (output.sendPublish(pending, id, false)) {
      this.stats.messagesSent++;
    } else {
      // Too large for this client [MQTT-3.1.2-25]: it counts as delivered and is dropped.
      session.complete(id);
      this.stats.messagesDropped++;
    }
    return true;
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
        continue;
      }
      if (head.qos === 0) {
        session.dequeue();
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
      else output.sendPublish(entry, id, true);
    }
    return true;
  }

  // --- subscriptions ---------------------------------------------------------------------------

  /** Adds or replaces a subscription; returns true when it did not exist before. */
  subscribe(sub: Subscription): boolean {
    const session = sub.session;
    const old = session.subscriptions.get(sub.filter);
    if (old !== undefined) this.subscriptions.remove(old.topicFilter, old);
    session.subscriptions.set(sub.filter, sub);
    this.subscriptions.add(sub.topicFilter, sub);
    return old === undefined;
  }

  /** Removes a subscription; false when the session had none with that filter. */
  unsubscribe(session: Session, filter: string): boolean {
    const sub = session.subscriptions.get(filter);
    if (sub === undefined) return false;
    session.subscriptions.delete(filter);
    this.subscriptions.remove(sub.topicFilter, sub);
    if (sub.group !== null && this.subscriptions.get(sub.topicFilter) === undefined) {
      this.router.forgetGroup(sub.group, sub.topicFilter);
    }
    return true;
  }

  /** The session's client went away: it ends after its expiry interval (never for 0xFFFFFFFF). */
  sessionDetached(session: Session, now: number): void {
    if (session.expiryInterval === 0xffffffff) return;
    session.expiresAt = now + session.expiryInterval * 1000;
    this.expiring.add(session);
    this.startSweep();
  }

  /** The session's client is back. */
  sessionAttached(session: Session): void {
    session.expiresAt = 0;
    this.expiring.delete(session);
  }

  /** Ends a session: its subscriptions go, its queue and in-flight messages are dropped. */
  endSession(session: Session): void {
    this.expiring.delete(session);
    for (const filter of [...session.subscriptions.keys()]) this.unsubscribe(session, filter);
    session.clearMessages();
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
    this.wills.set(clientId, { msg, at: Date.now() + delaySeconds * 1000 });
    this.startSweep();
  }

  /** A client reconnected to its session: its pending will must not be sent [MQTT-3.1.3-9]. */
  cancelWill(clientId: string): void {
    this.wills.delete(clientId);
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
    for (const conn of this.allConnections) {
      try {
        conn.checkTimers(now);
      } catch (error) {
        this.log(LogLevel.CRITICAL, "broker/sweep", `timer check failed: ${describe(error)}`);
      }
    }
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
      }
    }
  }

  /** Stops the sweep and closes every connection (the context is exiting). */
  async close(): Promise<void> {
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const conn of [...this.allConnections]) conn.close(0x8b);
  }

  /** The session of `clientId`, created when there is none. */
  sessionFor(clientId: string): Session {
    let session = this.sessions.get(clientId);
    if (session === undefined) {
      session = new Session(clientId);
      this.sessions.set(clientId, session);
    }
    return session;
  }
}
