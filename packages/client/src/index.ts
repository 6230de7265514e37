// @myqtt/client: an MQTT 3.1 / 3.1.1 / 5.0 client that loses nothing, and the MyQtt Conn API.

// The codec's errors the client raises too (bad input, limits, a server breaking the protocol).
export {
  InvalidPacketError,
  InvalidTopicError,
  MqttError,
  PacketTooLargeError,
  ProtocolError,
} from "@myqtt/codec";
export { type BackoffOptions, backoffDelay } from "./backoff.js";
export {
  type ClientEvents,
  type ClientState,
  MqttClient,
  type PublishOptions,
  type PublishResult,
} from "./client.js";
export {
  Conn,
  ConnOpts,
  ConnStatus,
  type OnCloseHandler,
  type OnMsgHandler,
  type OnReconnectHandler,
} from "./conn.js";
export {
  AbortedError,
  ConnackError,
  ConnectionClosedError,
  ConnectionError,
  NotConnectedError,
  PublishError,
  QueueFullError,
  SubscribeError,
  TimeoutError,
} from "./errors.js";
export {
  type InflightEntry,
  type InflightStore,
  MemoryInflightStore,
  type OfflinePublish,
} from "./inflight-store.js";
export type { ClientAuth, ClientOptions } from "./options.js";
export type { RequestOptions } from "./request-response.js";
export { type SubscribeOptions, Subscription } from "./subscription.js";
export { realTimers, type Timers } from "./timers.js";

import { MqttClient } from "./client.js";
import type { ClientOptions } from "./options.js";

/** Connects a client: `await connect("mqtt://localhost:1883", { protocolVersion: 5 })`. */
export function connect(
  urlOrOptions: string | ClientOptions,
  options?: ClientOptions,
): Promise<MqttClient> {
  return MqttClient.connect(urlOrOptions, options);
}
