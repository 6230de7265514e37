import { type AckPacket, PacketType, ReasonCode } from "@myqtt/codec";
import { LogLevel } from "@myqtt/core";
import type { ServerConn } from "../server-conn.js";

// The acknowledgements of QoS 1/2 flows, both directions.

/** PUBACK of a QoS 1 message we sent. */
export function handlePuback(conn: ServerConn, p: AckPacket): void {
  const session = conn.session!;
  const entry = session.inflight?.get(p.packetId);
  if (entry === undefined || entry.qos !== 1) {
    conn.log(LogLevel.DEBUG, `${conn.clientId}: PUBACK for unknown packet id ${p.packetId}`);
    return;
  }
  conn.broker.completeFlow(session, p.packetId);
  conn.broker.pump(session);
}

/** PUBREC of a QoS 2 message we sent: answer PUBREL (or drop it on a failure code). */
export function handlePubrec(conn: ServerConn, p: AckPacket): void {
  const session = conn.session!;
  const entry = session.inflight?.get(p.packetId);
  if (entry === undefined || entry.qos !== 2) {
    // v5 4.3.3: a PUBREC we cannot place is answered with PUBREL 0x92.
    const reasonCode = conn.protocolVersion === 5 ? ReasonCode.PACKET_IDENTIFIER_NOT_FOUND : 0;
    conn.send({ type: PacketType.PUBREL, packetId: p.packetId, reasonCode });
    return;
  }
  if ((p.reasonCode ?? 0) >= 0x80) {
    // The client refused the message: the flow ends here (v5 4.3.3).
    conn.broker.completeFlow(session, p.packetId);
    conn.broker.pump(session);
    return;
  }
  // PUBREL goes once "pubrel" is stored, like every acknowledgement [MQTT-4.3.3-5]: sent
  // before, a crash in between made the restarted broker resend the PUBLISH, which a client
  // that had released the id takes as a new message (QoS 2 delivered twice).
  const broker = conn.broker;
  broker.beginWrites();
  broker.markPubrel(session, p.packetId, entry);
  conn.ackAfter(broker.endWrites(), () => conn.sendPubrel(p.packetId));
}

/** PUBCOMP: the QoS 2 message we sent is done. */
export function handlePubcomp(conn: ServerConn, p: AckPacket): void {
  const session = conn.session!;
  const entry = session.inflight?.get(p.packetId);
  if (entry === undefined || entry.state !== "pubrel") {
    conn.log(LogLevel.DEBUG, `${conn.clientId}: PUBCOMP for unknown packet id ${p.packetId}`);
    return;
  }
  conn.broker.completeFlow(session, p.packetId);
  conn.broker.pump(session);
}

/**
 * PUBREL of a QoS 2 message the client sent: release its id, answer PUBCOMP once the release
 * is stored (a stale stored id would make a later message with that id look like a resend).
 */
export function handlePubrel(conn: ServerConn, p: AckPacket): void {
  const session = conn.session!;
  const known = session.incomingQoS2?.delete(p.packetId) ?? false;
  const reasonCode = known || conn.protocolVersion < 5 ? 0 : ReasonCode.PACKET_IDENTIFIER_NOT_FOUND;
  const broker = conn.broker;
  broker.beginWrites();
  if (known)
    broker.persist(session, { op: "qos2done", clientId: session.clientId, packetId: p.packetId });
  conn.ackAfter(broker.endWrites(), () =>
    conn.send({ type: PacketType.PUBCOMP, packetId: p.packetId, reasonCode }),
  );
}
