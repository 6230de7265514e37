import { type DisconnectPacket, ReasonCode } from "@myqtt/codec";
import { LogLevel } from "@myqtt/core";
import type { ServerConn } from "../server-conn.js";

/** The client disconnects: reason 0 drops the will, 0x04 and errors keep it [MQTT-3.14.4-3]. */
export function handleDisconnect(conn: ServerConn, p: DisconnectPacket): undefined {
  const reasonCode = p.reasonCode ?? 0;
  const session = conn.session;
  const expiry = p.properties?.sessionExpiryInterval;
  if (expiry !== undefined && session !== null) {
    if ((conn.connectProperties.sessionExpiryInterval ?? 0) === 0 && expiry !== 0) {
      // [MQTT-3.14.2-2]: a session the CONNECT asked to end with the connection cannot be
      // extended here. What the CONNECT said counts, not the maxSessionExpiryInterval cap.
      conn.closeWith(
        ReasonCode.PROTOCOL_ERROR,
        "DISCONNECT set a session expiry after CONNECT set 0",
      );
      return undefined;
    }
    session.expiryInterval = Math.min(expiry, conn.broker.options.maxSessionExpiryInterval);
  }
  if (reasonCode === ReasonCode.NORMAL_DISCONNECTION) conn.willCleared = true;
  conn.endByClient(
    reasonCode === 0 ? "DISCONNECT" : `DISCONNECT with reason 0x${reasonCode.toString(16)}`,
    reasonCode >= 0x80 ? LogLevel.WARNING : LogLevel.DEBUG,
  );
  return undefined;
}
