// What the admin topics read from the broker of the context: sessions, their subscriptions and
// their queues.
import * as myqtt from "myqtt";
import type { SubscriptionView } from "./subscription-format.js";

/** The subscriptions of `clientId`'s session (none when it has no session). */
export function subscriptionsOf(ctx: myqtt.Ctx, clientId: string): SubscriptionView[] {
  const session = myqtt.getBroker(ctx).sessions.get(clientId);
  if (session === undefined) return [];
  return [...session.subscriptions.values()].map((s) => ({ filter: s.filter, qos: s.qos }));
}

/**
 * MyQtt's ctx "online" tables: for each filter, how many connected clients subscribe to it.
 * Sessions whose client is away (persistent, offline) do not count.
 */
export function onlineFilterCounts(ctx: myqtt.Ctx): Map<string, number> {
  const counts = new Map<string, number>();
  for (const session of myqtt.getBroker(ctx).sessions.values()) {
    if (session.output === null) continue;
    for (const filter of session.subscriptions.keys())
      counts.set(filter, (counts.get(filter) ?? 0) + 1);
  }
  return counts;
}

/** Messages waiting for `clientId`: queued, plus sent and not yet acknowledged. */
export function queuedMessages(ctx: myqtt.Ctx, clientId: string): number {
  const session = myqtt.getBroker(ctx).sessions.get(clientId);
  if (session === undefined) return 0;
  return session.queueLength + session.inflightCount;
}
