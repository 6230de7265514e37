import type { Connector, ListenerFactory } from "@myqtt/core";
import { connectWebSocket, type WebSocketConnectOptions } from "./connect.js";
import { listenWebSocket, type WebSocketListenOptions } from "./listen.js";

/** What a client's options (ClientOptions, MyQtt's ConnOpts) have for plugging a transport in. */
export interface ConnectorSlot {
  connector?: unknown;
  connectorOptions?: unknown;
}

/**
 * Makes client options connect over WebSocket: sets `connector` and `connectorOptions` on `opts`
 * (a ClientOptions object or a MyQtt ConnOpts) and returns it.
 *
 *     const opts = new ConnOpts();
 *     useWebSocket(opts, { path: "/" });
 *     const conn = await Conn.connect(ctx, "localhost", 1918, null, false, 0, opts);
 */
export function useWebSocket<T extends object>(
  opts: T & ConnectorSlot,
  options: WebSocketConnectOptions = {},
): T & { connector: Connector<unknown>; connectorOptions: WebSocketConnectOptions } {
  const slot = opts as ConnectorSlot;
  // The client's slot takes options it cannot know the type of; these are the connector's own.
  slot.connector = connectWebSocket as Connector<unknown>;
  slot.connectorOptions = options;
  return opts as T & { connector: Connector<unknown>; connectorOptions: WebSocketConnectOptions };
}

/**
 * The `transport` and `transportOptions` of createListener for a WebSocket listener:
 * `createListener(ctx, host, port, { ...webSocketListener({ path: "/mqtt" }), ...brokerOptions })`.
 */
export function webSocketListener(options: WebSocketListenOptions = {}): {
  transport: ListenerFactory<unknown>;
  transportOptions: WebSocketListenOptions;
} {
  return { transport: listenWebSocket as ListenerFactory<unknown>, transportOptions: options };
}
