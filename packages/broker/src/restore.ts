import { parseSharedSubscription } from "@myqtt/codec";
import { LogLevel } from "@myqtt/core";
import type { StoredClient, StoredState } from "@myqtt/storage";
import type { Broker } from "./broker.js";
import { isExpired, makeMessage } from "./message.js";
import { fromStored } from "./persistence.js";
import type { Outgoing, Session, Subscription } from "./session.js";

/** What a restore rebuilt, and what it leaves to do once writing is allowed again. */
export interface Restored {
  subscriptions: number;
  /** Ends the expired sessions in storage and publishes or schedules the wills. */
  finish(): void;
}

/**
 * Rebuilds what storage holds into a starting broker: persistent sessions with their
 * subscriptions, in-flight and queued messages and QoS 2 ids; retained messages; wills.
 * Sessions that expired while the broker was down end (their wills go out).
 */
export function restoreFromStorage(broker: Broker, state: StoredState, now: number): Restored {
  const expiredRetained: string[] = [];
  for (const m of state.retained) {
    const msg = fromStored(m);
    if (isExpired(msg, now)) expiredRetained.push(m.topic);
    else broker.retained.set(msg);
  }
  let subscriptions = 0;
  const ended: string[] = [];
  const leftNow: Session[] = [];
  const wills: (() => void)[] = [];
  for (const client of state.clients) {
    const last = client.deliveries.at(-1);
    if (last !== undefined) broker.storage?.advanceSeq(last.seq);
    // Stored without session details (MyQtt's offline publish to a client id): it lasts until
    // the client comes, as a 3.1.1 persistent session does.
    const info = client.session ?? { expiryInterval: 0xffffffff, disconnectedAt: 0 };
    // A client connected when the broker stopped is gone since now.
    const leftAt = info.disconnectedAt === 0 ? now : info.disconnectedAt;
    const endsAt = leftAt + info.expiryInterval * 1000;
    const expired =
      info.expiryInterval === 0 || (info.expiryInterval !== 0xffffffff && endsAt <= now);
    if (expired) {
      ended.push(client.clientId);
      if (client.will !== null) {
        const msg = fromStored(client.will.message);
        wills.push(() => broker.publish(msg));
      }
      continue;
    }
    const session = broker.sessionFor(client.clientId);
    session.expiryInterval = info.expiryInterval;
    session.stored = true;
    subscriptions += restoreSubscriptions(broker, session, client);
    restoreMessages(session, client);
    if (info.disconnectedAt === 0) leftNow.push(session);
    if (client.incomingQoS2.length > 0) session.incomingQoS2 = new Set(client.incomingQoS2);
    broker.sessionDetached(session, leftAt);
    const will = client.will;
    if (will !== null) {
      if (will.at !== 0) {
        const msg = fromStored(will.message);
        wills.push(() => broker.scheduleWillAt(client.clientId, msg, will.at));
      } else {
        // Armed when the broker stopped: its connection is lost now, so the will's delay starts.
        const m = will.message;
        const msg = makeMessage(
          m.topic,
          m.payload,
          m.qos,
          m.retain,
          m.properties,
          m.publisher,
          now,
        );
        const delay = Math.min(will.delay, session.expiryInterval);
        wills.push(() => broker.scheduleWill(client.clientId, msg, delay));
      }
    }
  }
  broker.log(
    LogLevel.DEBUG,
    "broker/storage",
    `restored ${broker.sessions.size} sessions, ${subscriptions} subscriptions, ${broker.retained.size} retained messages${ended.length > 0 ? `; ${ended.length} expired sessions ended` : ""}`,
  );
  return {
    subscriptions,
    finish() {
      for (const clientId of ended) broker.write({ op: "drop", clientId });
      for (const topic of expiredRetained) broker.write({ op: "unretain", topic });
      for (const session of leftNow) broker.sessionDetached(session, now);
      for (const publish of wills) publish();
    },
  };
}

function restoreSubscriptions(broker: Broker, session: Session, client: StoredClient): number {
  for (const s of client.subscriptions) {
    const shared = parseSharedSubscription(s.filter);
    const sub: Subscription = {
      session,
      filter: s.filter,
      topicFilter: shared === null ? s.filter : shared.topicFilter,
      group: shared === null ? null : shared.group,
      qos: s.qos,
      noLocal: s.noLocal,
      retainAsPublished: s.retainAsPublished,
      retainHandling: s.retainHandling,
      subscriptionIdentifier: s.subscriptionIdentifier ?? undefined,
    };
    broker.subscribe(sub);
  }
  return client.subscriptions.length;
}

function restoreMessages(session: Session, client: StoredClient): void {
  // The client is away: what it holds is kept for long, its own bytes only (not the storage's
  // read buffers).
  session.holdLong();
  for (const d of client.deliveries) {
    const msg = fromStored(d.message);
    const ids = d.subscriptionIds === null ? null : [...d.subscriptionIds];
    if (d.state === "queued") {
      // Expired ones are dropped (and released) when the queue is pumped.
      session.pushQueued({ msg, qos: d.qos, retain: d.retain, subscriptionIds: ids, seq: d.seq });
      continue;
    }
    const entry: Outgoing = {
      msg,
      qos: d.qos as 1 | 2,
      retain: d.retain,
      subscriptionIds: ids,
      seq: d.seq,
      state: d.state,
      sent: false,
      since: 0,
    };
    session.addInflight(d.packetId, entry);
  }
}
