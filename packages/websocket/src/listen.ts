import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import {
  createServer as createHttpsServer,
  type Server as HttpsServer,
  type ServerOptions,
} from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type TLSSocket, Server as TlsServer } from "node:tls";
import type { ListenerFactory, Transport, TransportListener } from "@myqtt/core";
import { WebSocketServer } from "ws";
import { DEFAULT_MAX_PAYLOAD, DEFAULT_PATH, MQTT_SUBPROTOCOLS } from "./constants.js";
import { pathOf, serverNameFromHost } from "./host.js";
import { answer, refuseUpgrade } from "./http-reply.js";
import { chooseSubprotocol } from "./subprotocol.js";
import { WebSocketTransport, type WebSocketTransportOptions } from "./transport.js";

/** TLS of a wss listener: Node's https server options, with a certificate and key required. */
export interface WebSocketTlsListenOptions extends ServerOptions {
  cert: NonNullable<ServerOptions["cert"]>;
  key: NonNullable<ServerOptions["key"]>;
  /** CAs that client certificates must chain to (with `requestCert`). */
  ca?: NonNullable<ServerOptions["ca"]>;
  /** Ask clients for a certificate; with Node's default `rejectUnauthorized`, require a valid one. */
  requestCert?: boolean;
}

/** Options of listenWebSocket. */
export interface WebSocketListenOptions
  extends Pick<WebSocketTransportOptions, "highWaterMark" | "maxFrameSize" | "closeTimeoutMs"> {
  /** The path clients upgrade on (default "/mqtt"); other paths get 404. */
  path?: string;
  /** Accept the upgrade on any path (MyQtt's noPoll listeners served "/" and took anything). */
  anyPath?: boolean;
  /** Serve wss: an https server with this certificate. */
  tls?: WebSocketTlsListenOptions;
  /**
   * An http or https server of your application to share: MQTT is served on its upgrades to
   * `path` and the rest is left to it. When it is not listening yet it is made to listen on
   * host:port. close() leaves it open: it is yours.
   */
  server?: Server | HttpsServer;
  /** Subprotocols accepted, first preferred (default "mqtt", "mqttv3.1"). */
  protocols?: readonly string[];
  /** The largest WebSocket message accepted; a larger one closes that connection (1009). */
  maxPayload?: number;
  /** listen() backlog (default 511). */
  backlog?: number;
}

class WebSocketListener implements TransportListener {
  host = "";
  port = 0;
  connections = 0;

  constructor(
    readonly scheme: "ws" | "wss",
    private readonly stop: () => void,
  ) {}

  close(): Promise<void> {
    // As for TCP: the listening socket stops at once; open connections are left to their owners.
    this.stop();
    return Promise.resolve();
  }
}

function ignore(): void {}

function listen(server: Server | HttpsServer, host: string, port: number, backlog: number) {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, backlog }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/**
 * Listens for MQTT over WebSocket on `host:port` (port 0 picks a free one): an http server, or
 * https with `tls` (wss), or the application's own `server`. Each upgraded connection on `path`
 * becomes a WebSocketTransport handed to `onTransport`. Rejects when the address cannot be bound.
 */
export const listenWebSocket: ListenerFactory<WebSocketListenOptions> = async (
  host: string,
  port: number,
  onTransport: (transport: Transport) => void,
  options: WebSocketListenOptions = {},
) => {
  const path = options.path === undefined ? DEFAULT_PATH : normalizePath(options.path);
  const anyPath = options.anyPath ?? false;
  const accepted = options.protocols ?? MQTT_SUBPROTOCOLS;
  const embedded = options.server !== undefined;
  const server =
    options.server ??
    (options.tls !== undefined
      ? createHttpsServer({ noDelay: true, ...options.tls })
      : createHttpServer({ noDelay: true }));
  const secure = server instanceof TlsServer;
  const transportOptions: WebSocketTransportOptions = { tls: secure };
  if (options.highWaterMark !== undefined) transportOptions.highWaterMark = options.highWaterMark;
  if (options.maxFrameSize !== undefined) transportOptions.maxFrameSize = options.maxFrameSize;
  if (options.closeTimeoutMs !== undefined)
    transportOptions.closeTimeoutMs = options.closeTimeoutMs;

  const wss = new WebSocketServer({
    noServer: true,
    // Counted here instead; ws's own set would only duplicate the broker's bookkeeping.
    clientTracking: false,
    // Compression costs a zlib context per connection and CPU per packet; MQTT peers rarely
    // offer it, and memory per connection matters more to a broker.
    perMessageDeflate: false,
    // Text frames carry MQTT bytes too (MyQtt sends them), which are rarely valid UTF-8.
    skipUTF8Validation: true,
    maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    handleProtocols: (offered) => chooseSubprotocol(offered, accepted),
  });
  let closed = false;

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!anyPath && pathOf(request.url) !== path) {
      // Inside an application's server another handler may serve that path.
      if (embedded && server.listenerCount("upgrade") > 1) return;
      refuseUpgrade(socket, 404);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const tcp = request.socket as Socket;
      const sni = secure ? (tcp as TLSSocket).servername : null;
      const transport = new WebSocketTransport(ws, tcp, {
        ...transportOptions,
        // MyQtt: serverName is the Host header; the SNI name stands in when there is none.
        serverName: serverNameFromHost(request.headers.host) ?? (sni || null),
      });
      if (!transport.closed) {
        listener.connections++;
        transport.counter = listener;
      }
      onTransport(transport);
    });
  };

  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    if (!anyPath && pathOf(request.url) !== path) answer(response, 404);
    else answer(response, 426, { Upgrade: "websocket" });
  };

  const listener = new WebSocketListener(secure ? "wss" : "ws", () => {
    if (closed) return;
    closed = true;
    server.off("upgrade", onUpgrade);
    wss.close();
    if (!embedded) {
      server.close();
      // Keep-alive HTTP connections would keep the port busy; upgraded ones are not idle.
      server.closeIdleConnections();
    }
  });

  server.on("upgrade", onUpgrade);
  if (!embedded) server.on("request", onRequest);
  try {
    if (!server.listening) await listen(server, host, port, options.backlog ?? 511);
  } catch (error) {
    closed = true;
    server.off("upgrade", onUpgrade);
    if (!embedded) server.off("request", onRequest);
    wss.close();
    throw error;
  }
  if (!embedded) {
    // Accept errors (EMFILE and the like) must not crash the process; the listener goes on.
    server.on("error", ignore);
  }
  const address = server.address();
  if (typeof address === "object" && address !== null) {
    listener.host = address.address;
    listener.port = address.port;
  } else {
    listener.host = host;
    listener.port = port;
  }
  return listener;
};

function normalizePath(path: string): string {
  return path.startsWith("/") ? path : `/${path}`;
}
