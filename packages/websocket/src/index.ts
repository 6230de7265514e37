// @myqtt/websocket: MQTT over WebSocket (ws and wss) for the client and the broker, plugged in
// through the core's Transport, ListenerFactory and Connector.

export {
  connectWebSocket,
  type WebSocketClientTlsOptions,
  type WebSocketConnectOptions,
} from "./connect.js";
export {
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_PATH,
  MQTT_SUBPROTOCOLS,
} from "./constants.js";
export { WebSocketClosedError, WebSocketConnectError, WebSocketUpgradeError } from "./errors.js";
export {
  listenWebSocket,
  type WebSocketListenOptions,
  type WebSocketTlsListenOptions,
} from "./listen.js";
export { WebSocketTransport, type WebSocketTransportOptions } from "./transport.js";
export { type ConnectorSlot, useWebSocket, webSocketListener } from "./use-websocket.js";
