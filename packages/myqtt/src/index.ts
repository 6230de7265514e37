// myqtt: the PyMyQtt-shaped API in one import (`import * as myqtt from "myqtt"`), re-exporting
// the packages of MyQtt for TypeScript.

export {
  Broker,
  type BrokerMessage,
  type BrokerOptions,
  type BrokerStats,
  ConnState,
  configureBroker,
  createListener,
  DEFAULT_OPTIONS,
  getBroker,
  Listener,
  type ListenerOptions,
  type Outgoing,
  type Pending,
  ServerConn,
  type Session,
  type Subscription as BrokerSubscription,
  unlockListeners,
  waitListeners,
} from "@myqtt/broker";
export * from "@myqtt/client";
// The codec functions MyQtt exposed (remaining length, UTF-8, topic matching).
export {
  decodeRemainingLength,
  encodeRemainingLength,
  isValidTopicFilter,
  isValidUtf8,
  match,
  type QoS,
  validateUtf8,
} from "@myqtt/codec";
export * from "@myqtt/core";
export { FileStorage, MemoryStorage, type Storage, StorageInflightStore } from "@myqtt/storage";
export type {
  CaSource,
  CertificateHandler,
  ConnectorHolder,
  DigestMethod,
  PemSource,
  SniHook,
  TlsCertificate,
  TlsConnectOptions,
  TlsErrorCode,
  TlsErrorOptions,
  TlsListener,
  TlsListenOptions,
  TlsMinVersion,
} from "@myqtt/tls";
export type {
  ConnectorSlot,
  WebSocketClientTlsOptions,
  WebSocketConnectOptions,
  WebSocketListenOptions,
  WebSocketTlsListenOptions,
  WebSocketTransportOptions,
} from "@myqtt/websocket";
export * from "./constants.js";
export * as tls from "./tls.js";
export * as websocket from "./websocket.js";
