import type { ConnectProperties, ProtocolVersion, QoS, WillProperties } from "@myqtt/codec";
import type { Connector, Msg } from "@myqtt/core";
import type { BackoffOptions } from "./backoff.js";
import type { InflightStore } from "./inflight-store.js";
import type { Timers } from "./timers.js";

/** One step of MQTT 5.0 enhanced authentication, client side. */
export interface ClientAuth {
  /** The Authentication Method (CONNECT and every AUTH carry it). */
  method: string;
  /** Authentication Data of the CONNECT. */
  data?: Uint8Array;
  /** Answers the server's AUTH 0x18: returns the data for the client's next AUTH. */
  handler?: (
    serverData: Uint8Array | undefined,
    step: number,
  ) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
}

/** How a client connects and behaves. */
export interface ClientOptions {
  host?: string;
  port?: number;
  /** Opens the byte stream (default plain TCP); TLS and WebSocket plug in here. */
  connector?: Connector<unknown>;
  /** Options handed to the connector. */
  connectorOptions?: unknown;
  /** 3 (MQTT 3.1), 4 (3.1.1, default) or 5. */
  protocolVersion?: ProtocolVersion;
  /**
   * The client id. Empty: a 5.0 server assigns one; for 3.1/3.1.1 the client makes one up and
   * uses a clean session (as MyQtt does).
   */
  clientId?: string;
  /** Clean Session (3.1.1) / Clean Start (5.0); default true. */
  clean?: boolean;
  /** Seconds; 0 turns keep alive off (default 60). */
  keepAlive?: number;
  username?: string;
  password?: string | Uint8Array;
  will?: {
    topic: string;
    payload: string | Uint8Array;
    qos?: QoS;
    retain?: boolean;
    properties?: WillProperties;
  };
  /** MQTT 5.0 CONNECT properties. */
  properties?: ConnectProperties;
  /** MQTT 5.0 enhanced authentication. */
  auth?: ClientAuth;
  /** Milliseconds for TCP connect + CONNACK (default 30000). */
  connectTimeoutMs?: number;
  /** Reconnect after a lost connection (default true), with these delays. */
  reconnect?: boolean | BackoffOptions;
  /**
   * Follow a 5.0 server redirection (CONNACK or DISCONNECT 0x9C/0x9D with a Server Reference):
   * connect there, or reconnect there after such a DISCONNECT; default false.
   */
  followRedirects?: boolean;
  /** Subscribe again after reconnecting when the server kept no session (default true). */
  resubscribe?: boolean;
  /** Use topic aliases towards a 5.0 server that allows them (default true). */
  topicAliases?: boolean;
  /**
   * The publish queue: QoS 1/2 publishes waiting for a connection or for room in the server's
   * Receive Maximum, and publishes of any QoS waiting for the server to read (over
   * `maxOutgoingBytes`), kept up to these bounds connected or not (default 1000 messages,
   * 16 MiB of payload + topic); beyond, publish rejects with QueueFullError. QoS 0 is queued
   * while offline only if `qos0`.
   */
  offlineQueue?: { maxMessages?: number; maxBytes?: number; qos0?: boolean };
  /**
   * The most bytes a connection may hold unsent (default 1 MiB) before publishes wait: once
   * the socket refuses more (the server reads slower than the client publishes, or not at all)
   * and more than this waits to be written, a publish of any QoS joins the publish queue,
   * within its bound (`offlineQueue`), and leaves when the server has read enough. A QoS 0
   * publish then resolves once it is handed to the connection. At least 1024.
   */
  maxOutgoingBytes?: number;
  /** Where unacknowledged QoS 1/2 publishes are kept (default: memory). */
  inflightStore?: InflightStore;
  /**
   * Messages a subscription buffers for a slow reader before the client stops reading (default
   * 1000). While the client waits for an answer from the server it reads on instead: QoS 1/2
   * messages past the bound are buffered unacknowledged (the server's in-flight window bounds
   * them), QoS 0 ones are dropped (`subscription.dropped`, the "drop" event).
   */
  subscriptionBuffer?: number;
  /**
   * A "message" listener registered before the first CONNECT: a persistent session's queued
   * messages arrive right behind the CONNACK, before connect() resolves.
   */
  onMessage?: (topic: string, payload: Uint8Array, msg: Msg) => void;
  /** The clock (tests inject a fake one). */
  timers?: Timers;
  /** Random numbers in [0, 1) for backoff jitter (tests inject a fixed one). */
  random?: () => number;
}

export interface ResolvedClientOptions {
  host: string;
  port: number;
  connector: Connector<unknown> | undefined;
  connectorOptions: unknown;
  protocolVersion: ProtocolVersion;
  clientId: string;
  clean: boolean;
  keepAlive: number;
  username: string | undefined;
  password: Uint8Array | undefined;
  will: ClientOptions["will"];
  properties: ConnectProperties | undefined;
  auth: ClientAuth | undefined;
  connectTimeoutMs: number;
  reconnect: BackoffOptions | false;
  followRedirects: boolean;
  resubscribe: boolean;
  topicAliases: boolean;
  offlineQueue: { maxMessages: number; maxBytes: number; qos0: boolean };
  maxOutgoingBytes: number;
  subscriptionBuffer: number;
}

/** The connector each scheme needs, and its default port. */
const SCHEMES: Record<string, { needs: string; port: number }> = {
  "mqtts:": { needs: "connectTls from @myqtt/tls", port: 8883 },
  "ssl:": { needs: "connectTls from @myqtt/tls", port: 8883 },
  "ws:": { needs: "connectWebSocket from @myqtt/websocket", port: 80 },
  "wss:": { needs: "connectWebSocket from @myqtt/websocket", port: 443 },
};

/**
 * Reads `mqtt://user:password@host:port` into options (explicit options win). `mqtts:`,
 * `ssl:`, `ws:` and `wss:` are read too when a connector for them is given.
 */
export function optionsFromUrl(url: string, hasConnector = false): ClientOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(url)}`);
  }
  const scheme = SCHEMES[parsed.protocol];
  if (parsed.protocol !== "mqtt:" && parsed.protocol !== "tcp:") {
    if (scheme === undefined) throw new TypeError(`unsupported scheme ${parsed.protocol}`);
    if (!hasConnector)
      throw new TypeError(`${parsed.protocol}// needs the option connector: ${scheme.needs}`);
  }
  const out: ClientOptions = { host: parsed.hostname.replace(/^\[|\]$/g, "") || "localhost" };
  if (parsed.port) out.port = Number(parsed.port);
  else if (scheme !== undefined) out.port = scheme.port;
  if (parsed.username) out.username = decodeURIComponent(parsed.username);
  if (parsed.password) out.password = decodeURIComponent(parsed.password);
  return out;
}

export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  const version = options.protocolVersion ?? 4;
  if (version !== 3 && version !== 4 && version !== 5)
    throw new RangeError(`protocolVersion must be 3, 4 or 5`);
  const keepAlive = options.keepAlive ?? 60;
  if (!Number.isInteger(keepAlive) || keepAlive < 0 || keepAlive > 65_535) {
    throw new RangeError("keepAlive must be an integer number of seconds in 0..65535");
  }
  const port = options.port ?? 1883;
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new RangeError(`invalid port ${port}`);
  const maxOutgoingBytes = options.maxOutgoingBytes ?? 1024 * 1024;
  if (
    !Number.isInteger(maxOutgoingBytes) ||
    maxOutgoingBytes < 1024 ||
    maxOutgoingBytes > Number.MAX_SAFE_INTEGER
  )
    throw new RangeError("maxOutgoingBytes must be an integer number of bytes, at least 1024");
  const password = options.password;
  return {
    host: options.host ?? "localhost",
    port,
    connector: options.connector,
    connectorOptions: options.connectorOptions,
    protocolVersion: version,
    clientId: options.clientId ?? "",
    clean: options.clean ?? true,
    keepAlive,
    username: options.username,
    password: typeof password === "string" ? new TextEncoder().encode(password) : password,
    will: options.will,
    properties: options.properties,
    auth: options.auth,
    connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
    reconnect:
      options.reconnect === false
        ? false
        : options.reconnect === true || options.reconnect === undefined
          ? {}
          : options.reconnect,
    followRedirects: options.followRedirects ?? false,
    resubscribe: options.resubscribe ?? true,
    topicAliases: options.topicAliases ?? true,
    offlineQueue: {
      maxMessages: options.offlineQueue?.maxMessages ?? 1000,
      maxBytes: options.offlineQueue?.maxBytes ?? 16 * 1024 * 1024,
      qos0: options.offlineQueue?.qos0 ?? false,
    },
    maxOutgoingBytes,
    subscriptionBuffer: options.subscriptionBuffer ?? 1000,
  };
}
