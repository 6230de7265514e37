// myqtt.websocket: MQTT over WebSocket listeners and connections (MyQtt's web-socket layer).
import {
  createListener as createPlainListener,
  type Listener,
  type ListenerOptions,
} from "@myqtt/broker";
import { Conn, ConnOpts } from "@myqtt/client";
import type { Ctx } from "@myqtt/core";
import {
  listenWebSocket,
  useWebSocket,
  type WebSocketConnectOptions,
  type WebSocketListenOptions,
} from "@myqtt/websocket";

// Values only: the d.ts bundler cannot put types in a namespace (they are exported at the top).
export {
  connectWebSocket,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_PATH,
  listenWebSocket,
  MQTT_SUBPROTOCOLS,
  useWebSocket,
  WebSocketClosedError,
  WebSocketConnectError,
  WebSocketTransport,
  WebSocketUpgradeError,
  webSocketListener,
} from "@myqtt/websocket";

/** A WebSocket listener (wss when `opts.tls` is given). Never throws: check `isOk()`. */
export function createListener(
  ctx: Ctx,
  host: string,
  port: string | number,
  opts: WebSocketListenOptions = {},
  brokerOptions: Omit<ListenerOptions, "transport" | "transportOptions"> = {},
): Promise<Listener> {
  return createPlainListener(ctx, host, port, {
    ...brokerOptions,
    transport: listenWebSocket,
    transportOptions: opts,
  });
}

/** Connects over WebSocket (wss with `wsOptions.tls`). Never throws: check `isOk()`. */
export function createConn(
  ctx: Ctx,
  host: string,
  port: string | number,
  clientId: string | null = null,
  cleanSession = false,
  keepAlive = 0,
  opts: ConnOpts = new ConnOpts(),
  wsOptions: WebSocketConnectOptions = {},
): Promise<Conn> {
  useWebSocket(opts, wsOptions);
  return Conn.connect(ctx, host, port, clientId, cleanSession, keepAlive, opts);
}
