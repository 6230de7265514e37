// @myqtt/core: the MyQtt context, the shared object model of client and broker, transports.

export { AsyncQueue } from "./async-queue.js";
export { ConnackCode, type PeerRole, PublishCode, QOS_DENIED } from "./codes.js";
export {
  Ctx,
  DEFAULT_STORAGE_HASH_SIZE,
  DEFAULT_STORAGE_PATH,
  describe,
  type OnCtxMsgHandler,
} from "./ctx.js";
export { HeldReads, HOLD_BYTES } from "./held-reads.js";
export type {
  AuthReply,
  AuthRequest,
  CtxHooks,
  Hook,
  OnAuthHandler,
  OnConnectHandler,
  OnPublishHandler,
  OnServerCloseHandler,
  OnSubscribeHandler,
  OnUnsubscribeHandler,
} from "./hooks.js";
export { isPromise } from "./is-promise.js";
export { type LogHandler, LogLevel } from "./log.js";
export { Msg } from "./msg.js";
export {
  type FlushTiming,
  PacketChannel,
  type PacketChannelHandlers,
  type PacketChannelOptions,
} from "./packet-channel.js";
export type { ConnectReply, ServerConnection } from "./server-connection.js";
export {
  connectTcp,
  listenTcp,
  SocketTransport,
  type SocketTransportOptions,
  type TcpConnectOptions,
  type TcpListenOptions,
} from "./tcp.js";
export type { EventHandler } from "./timed-events.js";
export { readTlsPeer } from "./tls-peer.js";
export type {
  Connector,
  ListenerFactory,
  TlsPeer,
  Transport,
  TransportHandlers,
  TransportListener,
} from "./transport.js";
