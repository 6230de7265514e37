import { type AuthPacket, PacketType, ReasonCode } from "@myqtt/codec";
import { type AuthReply, describe, isPromise, LogLevel } from "@myqtt/core";
import { ConnState, type ServerConn } from "../server-conn.js";
import { refuse, runConnectHook } from "./connect.js";

// MQTT 5.0 enhanced authentication (v5 4.12): CONNECT names a method, AUTH packets carry the
// exchange, the auth hook decides each step; AUTH 0x19 re-authenticates a live connection.

/** A CONNECT with an Authentication Method. */
export function startAuth(
  conn: ServerConn,
  method: string,
  data: Uint8Array | undefined,
): undefined | Promise<unknown> {
  conn.authMethod = method;
  conn.authStep = 0;
  conn.state = ConnState.AUTHENTICATING;
  return step(conn, data, false);
}

/** An AUTH from the client. */
export function handleAuth(conn: ServerConn, p: AuthPacket): undefined | Promise<unknown> {
  const method = p.properties?.authenticationMethod;
  if (conn.authMethod === null || method !== conn.authMethod) {
    // [MQTT-4.12.0-5]: every AUTH carries the Authentication Method of the CONNECT.
    conn.closeWith(ReasonCode.PROTOCOL_ERROR, "AUTH with another (or no) authentication method");
    return undefined;
  }
  const data = p.properties?.authenticationData;
  if (conn.state === ConnState.AUTHENTICATING || conn.reauthenticating) {
    if (p.reasonCode !== ReasonCode.CONTINUE_AUTHENTICATION) {
      conn.closeWith(
        ReasonCode.PROTOCOL_ERROR,
        `AUTH 0x${p.reasonCode.toString(16)} during an exchange`,
      );
      return undefined;
    }
    conn.authStep++;
    return step(conn, data, conn.reauthenticating);
  }
  if (p.reasonCode !== ReasonCode.RE_AUTHENTICATE) {
    conn.closeWith(
      ReasonCode.PROTOCOL_ERROR,
      `AUTH 0x${p.reasonCode.toString(16)} outside an exchange`,
    );
    return undefined;
  }
  conn.reauthenticating = true;
  conn.authStep = 0;
  return step(conn, data, true);
}

function step(
  conn: ServerConn,
  data: Uint8Array | undefined,
  reauthenticate: boolean,
): undefined | Promise<unknown> {
  const hook = conn.ctx.hooks.auth;
  if (hook === null) {
    fail(conn, ReasonCode.BAD_AUTHENTICATION_METHOD, reauthenticate, "no auth hook is set");
    return undefined;
  }
  let reply: AuthReply | Promise<AuthReply>;
  try {
    reply = hook.handler(
      conn.ctx,
      conn,
      { method: conn.authMethod!, data, step: conn.authStep, reauthenticate },
      hook.data,
    );
  } catch (error) {
    hookFailed(conn, error, reauthenticate);
    return undefined;
  }
  if (isPromise<AuthReply>(reply)) {
    return reply.then(
      (r) => answer(conn, r, reauthenticate),
      (error: unknown) => hookFailed(conn, error, reauthenticate),
    );
  }
  return answer(conn, reply, reauthenticate);
}

function answer(
  conn: ServerConn,
  reply: AuthReply,
  reauthenticate: boolean,
): undefined | Promise<unknown> {
  if (conn.state >= ConnState.CLOSING) return undefined;
  const code = (reply as { reasonCode?: unknown } | null | undefined)?.reasonCode;
  if (typeof code !== "number" || !Number.isInteger(code)) {
    // Not a reply (a forgotten return): the hook failed.
    hookFailed(
      conn,
      new TypeError(`it returned ${String(reply)}, not { reasonCode }`),
      reauthenticate,
    );
    return undefined;
  }
  const properties = { ...reply.properties, authenticationMethod: conn.authMethod! };
  if (reply.data !== undefined) Object.assign(properties, { authenticationData: reply.data });
  if (reply.reasonCode === ReasonCode.CONTINUE_AUTHENTICATION) {
    conn.send({
      type: PacketType.AUTH,
      reasonCode: ReasonCode.CONTINUE_AUTHENTICATION,
      properties,
    });
    return undefined;
  }
  if (reply.reasonCode === ReasonCode.SUCCESS) {
    if (reauthenticate) {
      conn.reauthenticating = false;
      conn.send({ type: PacketType.AUTH, reasonCode: ReasonCode.SUCCESS, properties });
      return undefined;
    }
    conn.authReplyData = reply.data;
    return runConnectHook(conn);
  }
  fail(
    conn,
    reply.reasonCode,
    reauthenticate,
    `authentication refused (0x${reply.reasonCode.toString(16)})`,
  );
  return undefined;
}

function hookFailed(conn: ServerConn, error: unknown, reauthenticate: boolean): void {
  conn.log(LogLevel.CRITICAL, `auth hook failed for ${conn.clientId}: ${describe(error)}`);
  fail(conn, ReasonCode.UNSPECIFIED_ERROR, reauthenticate, "the auth hook failed");
}

function fail(conn: ServerConn, reasonCode: number, reauthenticate: boolean, why: string): void {
  const code = reasonCode >= 0x80 ? reasonCode : ReasonCode.NOT_AUTHORIZED;
  if (reauthenticate) {
    conn.closeWith(code, why, LogLevel.WARNING);
  } else {
    refuse(conn, code, undefined, why);
  }
}
