import { isValidTopicFilter, PacketType, ReasonCode, type UnsubscribePacket } from "@myqtt/codec";
import { describe, isPromise, LogLevel } from "@myqtt/core";
import type { ServerConn } from "../server-conn.js";

/** An UNSUBSCRIBE: each filter offered to the hook, removed, then UNSUBACK. */
export function handleUnsubscribe(
  conn: ServerConn,
  p: UnsubscribePacket,
): undefined | Promise<unknown> {
  const hook = conn.ctx.hooks.unsubscribe;
  const codes: number[] = [];
  const filters = p.topicFilters;
  const writes: Promise<void>[] = [];
  let i = 0;
  const next = (): undefined | Promise<unknown> => {
    for (; i < filters.length; i++) {
      const filter = filters[i]!;
      if (hook === null) {
        codes.push(remove(conn, filter, true, writes));
        continue;
      }
      let answer: boolean | undefined | Promise<boolean | undefined>;
      try {
        answer = hook.handler(conn.ctx, conn, filter, hook.data);
      } catch (error) {
        conn.log(LogLevel.CRITICAL, `unsubscribe hook failed on ${filter}: ${describe(error)}`);
        codes.push(ReasonCode.UNSPECIFIED_ERROR);
        continue;
      }
      if (isPromise<boolean | undefined>(answer)) {
        i++;
        return answer.then(
          (allowed) => {
            codes.push(remove(conn, filter, allowed !== false, writes));
            return next();
          },
          (error: unknown) => {
            conn.log(LogLevel.CRITICAL, `unsubscribe hook failed on ${filter}: ${describe(error)}`);
            codes.push(ReasonCode.UNSPECIFIED_ERROR);
            return next();
          },
        );
      }
      codes.push(remove(conn, filter, answer !== false, writes));
    }
    if (conn.session === null || conn.channel.closed) return undefined;
    // UNSUBACK once storage no longer holds the subscriptions.
    const stored = writes.length === 0 ? null : Promise.all(writes).then(() => {});
    const waiting = conn.ackAfter(stored, () => {
      if (conn.protocolVersion === 5) {
        conn.send({ type: PacketType.UNSUBACK, packetId: p.packetId, reasonCodes: codes });
      } else {
        conn.send({ type: PacketType.UNSUBACK, packetId: p.packetId });
      }
    });
    return waiting === null ? undefined : waiting;
  };
  return next();
}

/** Removes one subscription; the storage write it made joins `writes`. */
function remove(
  conn: ServerConn,
  filter: string,
  allowed: boolean,
  writes: Promise<void>[],
): number {
  if (!isValidTopicFilter(filter)) return ReasonCode.TOPIC_FILTER_INVALID;
  if (!allowed) return ReasonCode.NOT_AUTHORIZED;
  const session = conn.session;
  if (session === null) return ReasonCode.UNSPECIFIED_ERROR;
  const broker = conn.broker;
  broker.beginWrites();
  const existed = broker.unsubscribe(session, filter);
  const stored = broker.endWrites();
  if (stored !== null) writes.push(stored);
  return existed ? ReasonCode.SUCCESS : ReasonCode.NO_SUBSCRIPTION_EXISTED;
}
