import type {
  ConnackProperties,
  ConnectProperties,
  ProtocolVersion,
  QoS,
  Will,
} from "@myqtt/codec";
import type { PeerRole } from "./codes.js";
import type { Ctx } from "./ctx.js";
import type { Transport } from "./transport.js";

/**
 * What a CONNECT hook answers: a ConnackCode (0 to 5, DEFERRED), an MQTT 5.0 reason code
 * (0x80 and up), or an object that adds CONNACK properties, e.g. a Server Reference with 0x9C
 * (use another server) or 0x9D (server moved).
 */
export type ConnectReply = number | { reasonCode: number; properties?: ConnackProperties };

/** A client's connection as the broker's hooks see it (role "listener"). */
export interface ServerConnection {
  /** Unique in the process. */
  readonly id: number;
  readonly ctx: Ctx;
  readonly role: PeerRole;
  readonly clientId: string;
  readonly username: string | null;
  /** The password as UTF-8 text (null when none was sent); see `passwordBytes` for binary. */
  readonly password: string | null;
  readonly passwordBytes: Uint8Array | null;
  /** The peer's address and port. */
  readonly host: string;
  readonly port: number;
  /** The local address and port the client connected to. */
  readonly localAddress: string;
  readonly localPort: number;
  /** The TLS SNI name or the WebSocket Host header, when there is one. */
  readonly serverName: string | null;
  readonly tls: boolean;
  /** The byte stream underneath: `transport.tlsPeer?.()` tells a hook about a client certificate. */
  readonly transport: Transport;
  readonly protocolVersion: ProtocolVersion;
  readonly cleanSession: boolean;
  readonly keepAlive: number;
  readonly will: Will | null;
  /** CONNECT properties (MQTT 5.0; empty before). */
  readonly connectProperties: ConnectProperties;
  isOk(): boolean;
  setData(key: string, value: unknown): void;
  getData<T = unknown>(key: string): T | undefined;
  /** Completes a CONNECT whose hook returned ConnackCode.DEFERRED. */
  sendConnectReply(reply: ConnectReply): void;
  /** Publishes to this one connection, bypassing routing (admin replies and the like). */
  publish(topic: string, payload: string | Uint8Array, qos?: QoS, retain?: boolean): void;
  /** Drops the connection at once, without DISCONNECT: the will fires. */
  shutdown(): void;
  /** Closes the connection; an MQTT 5.0 client is told why with DISCONNECT `reasonCode`. */
  close(reasonCode?: number): void;
}
