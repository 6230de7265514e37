import type { AuthProperties } from "@myqtt/codec";
import type { PublishCode } from "./codes.js";
import type { Ctx } from "./ctx.js";
import type { Msg } from "./msg.js";
import type { ConnectReply, ServerConnection } from "./server-connection.js";

type MaybePromise<T> = T | Promise<T>;

/** Decides on a CONNECT: a ConnackCode, a v5 reason code, or DEFERRED. */
export type OnConnectHandler<D = unknown> = (
  ctx: Ctx,
  conn: ServerConnection,
  data: D,
) => MaybePromise<ConnectReply>;

/** Decides on a PUBLISH before it is acknowledged or routed. */
export type OnPublishHandler<D = unknown> = (
  ctx: Ctx,
  conn: ServerConnection,
  msg: Msg,
  data: D,
) => MaybePromise<PublishCode>;

/** Grants a QoS for one filter of a SUBSCRIBE, or QOS_DENIED (or a v5 failure code). */
export type OnSubscribeHandler<D = unknown> = (
  ctx: Ctx,
  conn: ServerConnection,
  topicFilter: string,
  qos: number,
  data: D,
) => MaybePromise<number>;

/** Sees one filter of an UNSUBSCRIBE; false keeps the subscription (UNSUBACK is still sent). */
export type OnUnsubscribeHandler<D = unknown> = (
  ctx: Ctx,
  conn: ServerConnection,
  topicFilter: string,
  data: D,
) => MaybePromise<boolean | undefined>;

/** Told once when an accepted server connection closed, for any reason (not a refused CONNECT). */
export type OnServerCloseHandler<D = unknown> = (ctx: Ctx, conn: ServerConnection, data: D) => void;

/** One step of an MQTT 5.0 enhanced authentication exchange (v5 4.12). */
export interface AuthRequest {
  /** The Authentication Method the client named. */
  method: string;
  /** The client's Authentication Data for this step (absent when it sent none). */
  data: Uint8Array | undefined;
  /** The step: 0 the CONNECT, then each AUTH 0x18 (continue) the client sends. */
  step: number;
  /** True for a re-authentication (AUTH 0x19) of a connection already accepted. */
  reauthenticate: boolean;
}

/**
 * The answer to an AuthRequest: 0x18 (continue, with data for the client), 0x00 (success; the
 * CONNECT then goes on to the connect hook), or a failure reason code (0x86, 0x87, 0x8C...).
 */
export interface AuthReply {
  reasonCode: number;
  data?: Uint8Array;
  properties?: Omit<AuthProperties, "authenticationMethod" | "authenticationData">;
}

/** Runs MQTT 5.0 enhanced authentication (CONNECT with an Authentication Method, and AUTH). */
export type OnAuthHandler<D = unknown> = (
  ctx: Ctx,
  conn: ServerConnection,
  request: AuthRequest,
  data: D,
) => MaybePromise<AuthReply>;

/** A hook with the data it was registered with. */
export interface Hook<H> {
  readonly handler: H;
  readonly data: unknown;
}

/** The server hooks of a context; the broker reads them. */
export interface CtxHooks {
  connect: Hook<OnConnectHandler> | null;
  publish: Hook<OnPublishHandler> | null;
  subscribe: Hook<OnSubscribeHandler> | null;
  unsubscribe: Hook<OnUnsubscribeHandler> | null;
  close: Hook<OnServerCloseHandler> | null;
  auth: Hook<OnAuthHandler> | null;
}
