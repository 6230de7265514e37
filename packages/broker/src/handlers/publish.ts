import { PacketType, type PublishPacket, ReasonCode } from "@myqtt/codec";
import { describe, isPromise, LogLevel, Msg, PublishCode } from "@myqtt/core";
import { type BrokerMessage, messageFromPublish } from "../message.js";
import { ConnState, type ServerConn } from "../server-conn.js";
import { topicProblem } from "../topic-limits.js";

const DOLLAR = 0x24;

/** A PUBLISH from a client: resolve its topic, ask the hook, route, acknowledge. */
export function handlePublish(conn: ServerConn, p: PublishPacket): undefined | Promise<unknown> {
  const broker = conn.broker;
  const session = conn.session!;
  broker.stats.messagesReceived++;
  let topic = p.topic;
  const v5 = conn.protocolVersion === 5;
  if (v5) {
    const alias = p.properties?.topicAlias;
    if (alias !== undefined) {
      if (alias > broker.options.topicAliasMaximum) {
        // v5 3.3.2.3.4: an alias above our Topic Alias Maximum.
        conn.closeWith(
          ReasonCode.TOPIC_ALIAS_INVALID,
          `topic alias ${alias} above the maximum`,
          LogLevel.WARNING,
        );
        return undefined;
      }
      const aliases = (conn.inboundAliases ??= new Map());
      if (topic.length > 0) {
        aliases.set(alias, topic);
      } else {
        const known = aliases.get(alias);
        if (known === undefined) {
          conn.closeWith(
            ReasonCode.PROTOCOL_ERROR,
            `topic alias ${alias} was never set`,
            LogLevel.WARNING,
          );
          return undefined;
        }
        topic = known;
      }
    }
  }
  if (v5 && p.properties?.subscriptionIdentifiers !== undefined) {
    // [MQTT-3.3.4-6]: a client's PUBLISH must not carry a Subscription Identifier.
    conn.closeWith(
      ReasonCode.PROTOCOL_ERROR,
      "PUBLISH from a client with a Subscription Identifier",
      LogLevel.WARNING,
    );
    return undefined;
  }
  if (v5 && p.retain && !broker.options.retainAvailable) {
    // [MQTT-3.2.2-14]: we announced Retain Available 0.
    conn.closeWith(
      ReasonCode.RETAIN_NOT_SUPPORTED,
      "retained PUBLISH while retain is not available",
      LogLevel.WARNING,
    );
    return undefined;
  }
  const problem = topicProblem(topic, broker.options);
  if (problem !== null) {
    conn.closeWith(ReasonCode.TOPIC_NAME_INVALID, `topic ${problem}`, LogLevel.WARNING);
    return undefined;
  }
  const qos = p.qos;
  const packetId = p.packetId ?? 0;
  if (qos === 2 && session.incomingQoS2?.has(packetId)) {
    // A resent QoS 2 message we already accepted: acknowledge again, deliver once [MQTT-4.3.3-10].
    conn.ackAfter(null, () => conn.send({ type: PacketType.PUBREC, packetId }));
    return undefined;
  }
  if (topic.charCodeAt(0) === DOLLAR) {
    // '$' topics are the server's (4.7.2): a client's publish to one is refused.
    conn.log(LogLevel.DEBUG, `${conn.clientId} may not publish to ${topic}`);
    acknowledge(conn, qos, packetId, v5 ? ReasonCode.NOT_AUTHORIZED : 0);
    return undefined;
  }
  if (qos > 0 && v5) {
    const inFlight = (session.incomingQoS2?.size ?? 0) + conn.inboundPending;
    if (inFlight >= broker.options.receiveMaximum) {
      // [MQTT-3.3.4-9]: more QoS 1/2 publishes in flight than our Receive Maximum.
      conn.closeWith(
        ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
        `more than ${broker.options.receiveMaximum} publishes in flight`,
        LogLevel.WARNING,
      );
      return undefined;
    }
  }
  const msg = messageFromPublish(p, topic, conn.clientId, Date.now());
  const hook = conn.ctx.hooks.publish;
  // What complete() returns pauses reading (storage behind, acknowledgements waiting).
  if (hook === null) return complete(conn, msg, qos, packetId, PublishCode.OK);
  let decision: number | Promise<number>;
  try {
    const view = topic === p.topic ? p : { ...p, topic };
    decision = hook.handler(conn.ctx, conn, new Msg(view), hook.data);
  } catch (error) {
    conn.log(
      LogLevel.CRITICAL,
      `publish hook failed on ${topic}: ${describe(error)}; message discarded`,
    );
    return undefined;
  }
  if (isPromise<number>(decision)) {
    if (qos > 0) conn.inboundPending++;
    return decision.then(
      (d) => {
        if (qos > 0) conn.inboundPending--;
        return complete(conn, msg, qos, packetId, d);
      },
      (error: unknown) => {
        if (qos > 0) conn.inboundPending--;
        conn.log(
          LogLevel.CRITICAL,
          `publish hook failed on ${topic}: ${describe(error)}; message discarded`,
        );
      },
    );
  }
  return complete(conn, msg, qos, packetId, decision);
}

/**
 * Acts on the hook's decision: routes the message, then acknowledges it once storage holds
 * it (and its QoS 2 id). Returns a promise, pausing reading, only when too many acks wait.
 */
function complete(
  conn: ServerConn,
  msg: BrokerMessage,
  qos: number,
  packetId: number,
  decision: number,
): undefined | Promise<unknown> {
  if (decision === PublishCode.DISCARD) return undefined; // MyQtt: no ack, not routed.
  if (decision === PublishCode.CONN_CLOSE) {
    conn.shutdown();
    return undefined;
  }
  const broker = conn.broker;
  broker.beginWrites();
  // Routed even if the publisher is gone meanwhile: the message was accepted.
  const receivers = broker.publish(msg);
  const session = conn.session!;
  if (qos === 2) {
    (session.incomingQoS2 ??= new Set()).add(packetId);
    broker.persist(session, { op: "qos2", clientId: session.clientId, packetId });
  }
  const stored = broker.endWrites();
  if (conn.state >= ConnState.CLOSING) return undefined;
  // This publish wrote (to offline sessions, for one): with the storage behind, the publisher
  // waits until it caught up, QoS 0 too, whose writes nobody else waits for.
  const behind = stored === null ? null : broker.storageBacklog();
  if (qos === 0) return behind === null ? undefined : conn.holdForStorage(behind);
  const v5 = conn.protocolVersion === 5;
  const reasonCode = v5 && receivers === 0 ? ReasonCode.NO_MATCHING_SUBSCRIBERS : 0;
  const type = qos === 1 ? PacketType.PUBACK : PacketType.PUBREC;
  if (stored === null && conn.acksPending === 0) {
    // Nothing to wait for (the common case without persistent receivers): no closure.
    conn.send({ type, packetId, reasonCode });
    return undefined;
  }
  // QoS 2 ids already count against the Receive Maximum through incomingQoS2.
  const counted = stored !== null && qos === 1;
  if (counted) conn.inboundPending++;
  const waiting = conn.ackAfter(stored, () => {
    if (counted) conn.inboundPending--;
    conn.send({ type, packetId, reasonCode });
  });
  // A client that publishes faster than storage commits waits: reading pauses.
  const acks = waiting !== null && conn.acksPending >= broker.options.receiveMaximum;
  if (behind !== null) return conn.holdForStorage(acks ? Promise.all([behind, waiting]) : behind);
  return acks ? conn.holdForStorage(waiting) : undefined;
}

/** PUBACK for QoS 1, PUBREC for QoS 2, nothing for QoS 0: a refusal, in order with the rest. */
function acknowledge(conn: ServerConn, qos: number, packetId: number, reasonCode: number): void {
  if (qos === 0) return;
  if (qos === 2 && reasonCode < 0x80) (conn.session!.incomingQoS2 ??= new Set()).add(packetId);
  conn.ackAfter(null, () =>
    conn.send({ type: qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, packetId, reasonCode }),
  );
}
