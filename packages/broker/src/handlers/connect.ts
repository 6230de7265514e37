import { randomBytes } from "node:crypto";
import {
  type ConnackProperties,
  type ConnectPacket,
  PacketType,
  ReasonCode,
  type UnsupportedProtocolError,
} from "@myqtt/codec";
import { ConnackCode, type ConnectReply, describe, isPromise, LogLevel } from "@myqtt/core";
import type { StoredMessage } from "@myqtt/storage";
import { ConnState, type ServerConn } from "../server-conn.js";
import type { Session } from "../session.js";
import { topicProblem } from "../topic-limits.js";
import { startAuth } from "./auth.js";

const EMPTY = Object.freeze({});

/** A CONNECT arrived on a fresh connection. */
export function handleConnect(conn: ServerConn, p: ConnectPacket): undefined | Promise<unknown> {
  const options = conn.broker.options;
  const v5 = p.protocolVersion === 5;
  conn.protocolVersion = p.protocolVersion;
  conn.channel.protocolVersion = p.protocolVersion;
  conn.cleanSession = p.clean;
  conn.keepAlive = p.keepAlive;
  conn.will = p.will ?? null;
  conn.username = p.username ?? null;
  conn.passwordBytes = p.password ?? null;
  conn.connectProperties = p.properties ?? EMPTY;
  conn.pendingConnect = p;
  conn.sendQuota = options.maxInflight;
  if (v5) {
    const props = p.properties;
    if (props?.maximumPacketSize !== undefined)
      conn.channel.maximumOutgoingPacketSize = props.maximumPacketSize;
    conn.sendQuota = Math.min(options.maxInflight, props?.receiveMaximum ?? 65_535);
    conn.clientTopicAliasMaximum = props?.topicAliasMaximum ?? 0;
    // A 5.0 client is told the keep alive it must use (Server Keep Alive, v5 3.2.2.3.14).
    if (
      p.keepAlive > options.maxKeepAlive ||
      (p.keepAlive === 0 && options.maxKeepAlive < 65_535)
    ) {
      conn.keepAlive = options.maxKeepAlive;
    }
  }
  if (p.will !== undefined) {
    if (v5 && p.will.retain && !options.retainAvailable) {
      // v5 3.2.2.3.5: a Will Retain the server cannot honour is refused with 0x9A.
      refuse(
        conn,
        ReasonCode.RETAIN_NOT_SUPPORTED,
        undefined,
        "will retain while retain is not available",
      );
      return undefined;
    }
    const problem = topicProblem(p.will.topic, options);
    if (problem !== null) {
      refuse(conn, ReasonCode.TOPIC_NAME_INVALID, undefined, `will topic ${problem}`);
      return undefined;
    }
    if (p.will.topic.startsWith("$")) {
      // '$' topics are the server's (4.7.2): a will there would be a client's publish to one,
      // which is refused (a retained will could replace what the server keeps there).
      refuse(
        conn,
        ReasonCode.NOT_AUTHORIZED,
        undefined,
        `will topic ${p.will.topic} is the server's`,
      );
      return undefined;
    }
  }
  if (p.clientId.length === 0) {
    // [MQTT-3.1.3-8]: 3.1.1 assigns an id only to a clean session; 3.1 requires one.
    if (p.protocolVersion === 3 || (p.protocolVersion === 4 && !p.clean)) {
      refuse(conn, ConnackCode.IDENTIFIER_REJECTED, undefined, "empty client id");
      return undefined;
    }
    conn.clientId = `myqtt-${randomBytes(9).toString("base64url")}`;
    conn.assignedClientId = true;
  } else {
    conn.clientId = p.clientId;
  }
  // An enhanced-authentication exchange is still read under the CONNECT's limit: the AUTH
  // packets of a client that is not yet trusted may not be larger than its CONNECT could be.
  if (v5 && p.properties?.authenticationMethod !== undefined)
    return startAuth(conn, p.properties.authenticationMethod, p.properties.authenticationData);
  return runConnectHook(conn);
}

/**
 * Asks the connect hook (when there is one) and answers with its reply. Packets after the
 * CONNECT (a publish pipelined behind it) may now be as large as any: the hook decides before
 * they are handled.
 */
export function runConnectHook(conn: ServerConn): undefined | Promise<unknown> {
  conn.channel.maximumIncomingPacketSize = conn.broker.options.maximumPacketSize;
  const hook = conn.ctx.hooks.connect;
  if (hook === null) return finishConnect(conn, ConnackCode.ACCEPTED);
  let reply: ConnectReply | Promise<ConnectReply>;
  conn.connectHookRunning = true;
  try {
    reply = hook.handler(conn.ctx, conn, hook.data);
  } catch (error) {
    conn.connectHookRunning = false;
    hookFailed(conn, error);
    return undefined;
  }
  if (isPromise(reply)) {
    return reply.then(
      (r) => {
        conn.connectHookRunning = false;
        return answerConnect(conn, r);
      },
      (error: unknown) => {
        conn.connectHookRunning = false;
        hookFailed(conn, error);
      },
    );
  }
  conn.connectHookRunning = false;
  return answerConnect(conn, reply);
}

/** The CONNACK code of a connect reply (a code, or `{ reasonCode, properties }`); else null. */
export function connectReplyCode(reply: unknown): number | null {
  const code =
    typeof reply === "object" && reply !== null
      ? (reply as { reasonCode?: unknown }).reasonCode
      : reply;
  return typeof code === "number" && Number.isInteger(code) ? code : null;
}

/** The connect hook's answer: one that is not a reply at all (a forgotten return) fails it. */
function answerConnect(conn: ServerConn, reply: unknown): undefined | Promise<void> {
  if (connectReplyCode(reply) === null) {
    hookFailed(conn, new TypeError(`it returned ${String(reply)}, not a CONNACK code`));
    return undefined;
  }
  return finishConnect(conn, reply as ConnectReply);
}

function hookFailed(conn: ServerConn, error: unknown): void {
  conn.log(LogLevel.CRITICAL, `connect hook failed for ${conn.clientId}: ${describe(error)}`);
  refuse(conn, ReasonCode.UNSPECIFIED_ERROR, undefined, "the connect hook failed");
}

/**
 * Applies the answer to a CONNECT: accept, refuse, or wait (DEFERRED). Waiting returns a promise
 * that settles with the later reply, so packets the client sent right after CONNECT wait for
 * it ("Clients need not wait for a CONNACK", 3.1.4).
 */
export function finishConnect(conn: ServerConn, reply: ConnectReply): undefined | Promise<void> {
  if (conn.state >= ConnState.CLOSING) return undefined;
  const code = typeof reply === "number" ? reply : reply.reasonCode;
  const properties = typeof reply === "number" ? undefined : reply.properties;
  if (code === ConnackCode.DEFERRED) {
    const early = conn.earlyConnectReply;
    if (early !== null) {
      // sendConnectReply came while the hook was still running: the reply is here already.
      conn.earlyConnectReply = null;
      return finishConnect(conn, early);
    }
    conn.state = ConnState.DEFERRED;
    return new Promise<void>((resolve) => {
      conn.releaseDeferred = resolve;
    });
  }
  if (code !== ConnackCode.ACCEPTED) {
    refuse(conn, code, properties, "refused by the connect hook");
    return undefined;
  }
  return accept(conn, properties);
}

/** MyQtt's 3.1.1 codes as MQTT 5.0 reason codes. */
function toV5(code: number): number {
  if (code >= 0x80) return code;
  switch (code) {
    case ConnackCode.REFUSED:
      return ReasonCode.UNSUPPORTED_PROTOCOL_VERSION;
    case ConnackCode.IDENTIFIER_REJECTED:
      return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID;
    case ConnackCode.SERVER_UNAVAILABLE:
      return ReasonCode.SERVER_UNAVAILABLE;
    case ConnackCode.BAD_USERNAME_OR_PASSWORD:
      return ReasonCode.BAD_USER_NAME_OR_PASSWORD;
    case ConnackCode.NOT_AUTHORIZED:
      return ReasonCode.NOT_AUTHORIZED;
    default:
      return ReasonCode.UNSPECIFIED_ERROR;
  }
}

/** MQTT 5.0 reason codes as the nearest 3.1.1 return code. */
function toV3(code: number): number {
  if (code > 0 && code <= 5) return code;
  switch (code) {
    case ReasonCode.UNSUPPORTED_PROTOCOL_VERSION:
      return ConnackCode.REFUSED;
    case ReasonCode.CLIENT_IDENTIFIER_NOT_VALID:
      return ConnackCode.IDENTIFIER_REJECTED;
    case ReasonCode.SERVER_UNAVAILABLE:
    case ReasonCode.SERVER_BUSY:
    case ReasonCode.USE_ANOTHER_SERVER:
    case ReasonCode.SERVER_MOVED:
    case ReasonCode.QUOTA_EXCEEDED:
    case ReasonCode.CONNECTION_RATE_EXCEEDED:
      return ConnackCode.SERVER_UNAVAILABLE;
    case ReasonCode.BAD_USER_NAME_OR_PASSWORD:
    case ReasonCode.BAD_AUTHENTICATION_METHOD:
      return ConnackCode.BAD_USERNAME_OR_PASSWORD;
    default:
      return ConnackCode.NOT_AUTHORIZED;
  }
}

/** Sends a refusing CONNACK and closes [MQTT-3.2.2-7]. */
export function refuse(
  conn: ServerConn,
  code: number,
  properties: ConnackProperties | undefined,
  why: string,
): void {
  const v5 = conn.protocolVersion === 5;
  const reasonCode = v5 ? toV5(code) : toV3(code);
  const connack = { type: PacketType.CONNACK, sessionPresent: false, reasonCode } as const;
  conn.send(v5 && properties !== undefined ? { ...connack, properties } : connack);
  conn.closeWith(
    reasonCode,
    `CONNECT of ${conn.clientId || "(no id)"} refused (${reasonCode}): ${why}`,
    LogLevel.WARNING,
  );
}

/** A CONNECT for a protocol level we do not speak [MQTT-3.1.2-2]. */
export function refuseUnsupported(conn: ServerConn, error: UnsupportedProtocolError): void {
  if (error.code === "UNSUPPORTED_PROTOCOL_VERSION") {
    // Answered the 3.1.1 way (2 bytes, return code 1), which every version can read.
    conn.send({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: ConnackCode.REFUSED });
  }
  conn.closeWith(ReasonCode.UNSUPPORTED_PROTOCOL_VERSION, error.message, LogLevel.WARNING);
}

/**
 * Accepts the CONNECT: takes the session over or creates it, stores it, answers CONNACK once
 * storage confirmed, resends. Returns a promise while storage is written.
 */
function accept(conn: ServerConn, extra: ConnackProperties | undefined): undefined | Promise<void> {
  const broker = conn.broker;
  const options = broker.options;
  const p = conn.pendingConnect!;
  const clientId = conn.clientId;
  const v5 = conn.protocolVersion === 5;

  const requested = v5
    ? (p.properties?.sessionExpiryInterval ?? 0)
    : conn.cleanSession
      ? 0
      : 0xffffffff;
  // A 3.1.1 session "persists" until the administrator's policy says otherwise (3.1.2.4).
  const expiry = Math.min(requested, options.maxSessionExpiryInterval);
  if (expiry > 0 && !broker.sessions.has(clientId) && broker.sessions.size >= options.maxSessions) {
    refuse(conn, ReasonCode.QUOTA_EXCEEDED, undefined, `the broker holds maxSessions sessions`);
    return undefined;
  }

  const existing = broker.connections.get(clientId);
  if (existing !== undefined && existing !== conn && existing.state < ConnState.CLOSING) {
    if (options.duplicateClientId === "reject") {
      refuse(conn, ConnackCode.IDENTIFIER_REJECTED, undefined, "client id already connected");
      return undefined;
    }
    // [MQTT-3.1.4-3]: the new connection takes the session over.
    existing.closeWith(
      ReasonCode.SESSION_TAKEN_OVER,
      `session taken over by connection ${conn.id}`,
    );
  }

  broker.beginWrites();
  let session = broker.sessions.get(clientId);
  let sessionPresent = false;
  if (session !== undefined) {
    if (conn.cleanSession) {
      broker.endSession(session);
      session = undefined;
    } else {
      sessionPresent = true;
    }
  }
  // [MQTT-3.1.3-9]: a will waiting for its delay is not sent when the session comes back.
  broker.cancelWill(clientId);
  session ??= broker.sessionFor(clientId);

  session.expiryInterval = expiry;
  broker.sessionAttached(session);
  conn.session = session;
  broker.connections.set(clientId, conn);
  conn.pendingConnect = null;
  storeSession(conn, session);
  const stored = broker.endWrites();
  const asked = { keepAlive: p.keepAlive, expiry: requested };
  // The session gets its output with the CONNACK: until then (storage writing) deliveries to
  // it are queued, so the CONNACK is the first packet the client gets [MQTT-3.2.0-1].
  const attach = (): void => {
    session.output = conn;
    conn.state = ConnState.CONNECTED;
    sendConnack(conn, session, sessionPresent, asked, expiry, extra);
  };
  if (stored === null) {
    attach();
    return undefined;
  }
  return stored.then(
    () => {
      if (conn.state < ConnState.CLOSING) attach();
      else broker.sessionLost(session, conn);
    },
    () => {
      refuse(conn, ConnackCode.SERVER_UNAVAILABLE, undefined, "the session cannot be stored");
      broker.sessionLost(session, conn);
    },
  );
}

/** Writes the session and its will, when the session is kept in storage. */
function storeSession(conn: ServerConn, session: Session): void {
  if (!session.persistent && !session.stored) return;
  const broker = conn.broker;
  const clientId = session.clientId;
  broker.persist(session, {
    op: "session",
    clientId,
    info: { expiryInterval: session.expiryInterval, disconnectedAt: 0 },
  });
  const will = conn.will;
  if (will === null || !session.persistent) {
    broker.persist(session, { op: "unwill", clientId });
    return;
  }
  // Armed while the connection lives: a broker restart counts as losing the connection.
  const { willDelayInterval, ...properties } = will.properties ?? {};
  const message: StoredMessage = {
    topic: will.topic,
    payload: will.payload,
    qos: will.qos,
    retain: will.retain,
    properties: Object.keys(properties).length > 0 ? properties : undefined,
    expiresAt: 0,
    publisher: clientId,
  };
  broker.persist(session, {
    op: "will",
    clientId,
    will: { message, at: 0, delay: willDelayInterval ?? 0 },
  });
}

/** The CONNACK of an accepted connection, then what the session has to send. */
function sendConnack(
  conn: ServerConn,
  session: Session,
  sessionPresent: boolean,
  asked: { keepAlive: number; expiry: number },
  expiry: number,
  extra: ConnackProperties | undefined,
): void {
  const broker = conn.broker;
  const options = broker.options;
  const clientId = session.clientId;
  const v5 = conn.protocolVersion === 5;

  if (v5) {
    const properties: ConnackProperties = { ...extra };
    if (options.receiveMaximum < 65_535) properties.receiveMaximum = options.receiveMaximum;
    if (options.maximumPacketSize < 268_435_460)
      properties.maximumPacketSize = options.maximumPacketSize;
    if (options.topicAliasMaximum > 0) properties.topicAliasMaximum = options.topicAliasMaximum;
    if (!options.retainAvailable) properties.retainAvailable = false;
    if (conn.assignedClientId) properties.assignedClientIdentifier = clientId;
    if (conn.keepAlive !== asked.keepAlive) properties.serverKeepAlive = conn.keepAlive;
    if (expiry !== asked.expiry) properties.sessionExpiryInterval = expiry;
    if (conn.authMethod !== null) {
      properties.authenticationMethod = conn.authMethod;
      if (conn.authReplyData !== undefined) properties.authenticationData = conn.authReplyData;
    }
    conn.send({ type: PacketType.CONNACK, sessionPresent, reasonCode: 0, properties });
  } else {
    conn.send({ type: PacketType.CONNACK, sessionPresent, reasonCode: 0 });
  }
  // Built only when shown: the peer's address is a system call, and this is every connection.
  if (conn.ctx.logs(LogLevel.DEBUG)) {
    conn.log(
      LogLevel.DEBUG,
      `connection ${conn.id} from ${conn.host}:${conn.port} accepted as ${clientId} (MQTT level ${conn.protocolVersion}, session ${sessionPresent ? "resumed" : "new"})`,
    );
  }
  broker.resume(session);
}
