/** What an on_publish hook decides (MyQttPublishCodes). */
export const PublishCode = {
  /** Route the message. */
  OK: 1,
  /** Drop it silently: not acknowledged, not routed. */
  DISCARD: 2,
  /** Close the publisher's connection; its will fires. */
  CONN_CLOSE: 3,
  /** No opinion: routed as OK. */
  DUNNO: 4,
} as const;
export type PublishCode = (typeof PublishCode)[keyof typeof PublishCode];

/**
 * CONNACK codes as MyQtt names them (MyQttConnAckTypes): 0 to 5 are the 3.1.1 return codes; the
 * negative ones are local (a client that could not connect) or DEFERRED (a server hook that
 * answers later with `conn.sendConnectReply`).
 */
export const ConnackCode = {
  UNKNOWN_ERR: -4,
  CONNECT_TIMEOUT: -3,
  UNABLE_TO_CONNECT: -2,
  DEFERRED: -1,
  ACCEPTED: 0,
  REFUSED: 1,
  IDENTIFIER_REJECTED: 2,
  SERVER_UNAVAILABLE: 3,
  BAD_USERNAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const;
export type ConnackCode = (typeof ConnackCode)[keyof typeof ConnackCode];

/** Returned by an on_subscribe hook to refuse a filter (SUBACK 0x80). */
export const QOS_DENIED = 0x80;

/** The roles a connection plays (MyQttPeerRole). */
export type PeerRole = "initiator" | "listener" | "master-listener" | "unknown";
