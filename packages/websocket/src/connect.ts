import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { SecureContextOptions } from "node:tls";
import type { Connector, Transport } from "@myqtt/core";
import WebSocket from "ws";
import { DEFAULT_MAX_PAYLOAD, DEFAULT_PATH } from "./constants.js";
import { WebSocketConnectError, WebSocketUpgradeError } from "./errors.js";
import { urlHost } from "./host.js";
import { WebSocketTransport, type WebSocketTransportOptions } from "./transport.js";

/** TLS of a wss connection. */
export interface WebSocketClientTlsOptions {
  /** CAs to trust instead of Node's bundled ones. */
  ca?: NonNullable<SecureContextOptions["ca"]>;
  /** A client certificate and its key (mutual TLS). */
  cert?: NonNullable<SecureContextOptions["cert"]>;
  key?: NonNullable<SecureContextOptions["key"]>;
  passphrase?: string;
  /** Check the server's certificate and name (default true). */
  verifyPeer?: boolean;
  /** The SNI name and the name the certificate must match (default: the host). */
  serverName?: string;
}

/** Options of connectWebSocket. */
export interface WebSocketConnectOptions
  extends Pick<WebSocketTransportOptions, "highWaterMark" | "maxFrameSize" | "closeTimeoutMs"> {
  /** The path of the URL (default "/mqtt"; MyQtt listeners use "/"). */
  path?: string;
  /** wss: true for Node's defaults, or the TLS details. */
  tls?: boolean | WebSocketClientTlsOptions;
  /**
   * The subprotocol(s) offered (default "mqtt"). null or [] offers none, as MyQtt clients do;
   * a server that then names one fails the handshake (RFC 6455 §4.1).
   */
  protocol?: string | readonly string[] | null;
  /** Extra HTTP headers of the upgrade request (a Host header replaces the URL's). */
  headers?: Record<string, string>;
  /** Give up opening the WebSocket after this many milliseconds (default 30000). */
  connectTimeoutMs?: number;
  /** The largest WebSocket message accepted from the server (default 16 MiB + 1 KiB). */
  maxPayload?: number;
}

function ignore(): void {}

function protocolsOf(protocol: WebSocketConnectOptions["protocol"]): string[] {
  if (protocol === undefined) return ["mqtt"];
  if (protocol === null) return [];
  return typeof protocol === "string" ? [protocol] : [...protocol];
}

/**
 * Opens ws://host:port/path (wss with `tls`) and resolves with a WebSocketTransport once the
 * upgrade is done. Rejects with WebSocketUpgradeError when the server answers the upgrade with
 * an HTTP status (404 for a wrong path...), WebSocketConnectError otherwise.
 */
export const connectWebSocket: Connector<WebSocketConnectOptions> = (
  host: string,
  port: number,
  options: WebSocketConnectOptions = {},
) =>
  new Promise<Transport>((resolve, reject) => {
    const tls =
      options.tls === true
        ? {}
        : options.tls === false || options.tls === undefined
          ? null
          : options.tls;
    const path = options.path ?? DEFAULT_PATH;
    const url = `${tls !== null ? "wss" : "ws"}://${urlHost(host)}:${port}${path.startsWith("/") ? path : `/${path}`}`;
    // ws hands servername on to tls.connect; its types do not name it.
    const clientOptions: WebSocket.ClientOptions & { servername?: string } = {
      // See listenWebSocket: no compression, MQTT bytes in text frames accepted.
      perMessageDeflate: false,
      skipUTF8Validation: true,
      maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
      followRedirects: false,
    };
    if (options.headers !== undefined) clientOptions.headers = options.headers;
    if (tls !== null) {
      clientOptions.rejectUnauthorized = tls.verifyPeer ?? true;
      if (tls.ca !== undefined) clientOptions.ca = tls.ca;
      if (tls.cert !== undefined) clientOptions.cert = tls.cert;
      if (tls.key !== undefined) clientOptions.key = tls.key;
      if (tls.passphrase !== undefined) clientOptions.passphrase = tls.passphrase;
      if (tls.serverName !== undefined) clientOptions.servername = tls.serverName;
    }
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, protocolsOf(options.protocol), clientOptions);
    } catch (error) {
      reject(new WebSocketConnectError(`cannot open ${url}: ${(error as Error).message}`, error));
      return;
    }
    let socket: Socket | null = null;
    let settled = false;
    const timeoutMs = options.connectTimeoutMs ?? 30_000;
    const detach = (): void => {
      clearTimeout(timer);
      ws.off("upgrade", onUpgrade);
      ws.off("unexpected-response", onUnexpected);
      ws.off("error", onError);
      ws.off("open", onOpen);
    };
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      detach();
      // ws still reports the aborted handshake: nobody may be left to hear it unhandled.
      ws.on("error", ignore);
      ws.terminate();
      reject(error);
    };
    const onUpgrade = (response: IncomingMessage): void => {
      socket = response.socket as Socket;
    };
    const onUnexpected = (_request: unknown, response: IncomingMessage): void => {
      response.resume();
      fail(new WebSocketUpgradeError(url, response.statusCode ?? 0, response.statusMessage));
    };
    const onError = (error: Error): void => {
      fail(new WebSocketConnectError(`cannot open ${url}: ${error.message}`, error));
    };
    const onOpen = (): void => {
      if (settled) return;
      settled = true;
      detach();
      const transportOptions: WebSocketTransportOptions = { tls: tls !== null };
      if (options.highWaterMark !== undefined)
        transportOptions.highWaterMark = options.highWaterMark;
      if (options.maxFrameSize !== undefined) transportOptions.maxFrameSize = options.maxFrameSize;
      if (options.closeTimeoutMs !== undefined)
        transportOptions.closeTimeoutMs = options.closeTimeoutMs;
      // 'upgrade' always precedes 'open' and carries the socket the WebSocket runs on.
      resolve(new WebSocketTransport(ws, socket!, transportOptions));
    };
    const timer = setTimeout(
      () => fail(new WebSocketConnectError(`opening ${url} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    ws.on("upgrade", onUpgrade);
    ws.on("unexpected-response", onUnexpected);
    ws.on("error", onError);
    ws.on("open", onOpen);
  });
