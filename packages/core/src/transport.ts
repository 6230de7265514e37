/**
 * Where a transport's bytes and events go. An object (often the consumer itself) rather than
 * callbacks, so a connection costs no closures.
 */
export interface TransportHandlers {
  /** Received bytes, in order. */
  onData(chunk: Uint8Array): void;
  /** The write buffer drained after write() returned false. */
  onDrain(): void;
  /** The transport closed; `error` says why when it was not a clean end. */
  onClose(error: Error | null): void;
}

/**
 * A byte stream to one peer: TCP, TLS or WebSocket. The MQTT layers (client and broker) see
 * only this, so every transport plugs into both.
 */
export interface Transport {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The TLS SNI name or WebSocket Host header the peer asked for, when known. */
  readonly serverName: string | null;
  /** Whether the bytes are encrypted (mqtts, wss). */
  readonly tls: boolean;
  /**
   * onData's chunk is only valid during the call: the transport reads every time into the
   * same memory. The consumer copies what it keeps (PacketChannel's decoder does).
   */
  readonly reusesReadBuffer?: boolean;
  /** Bytes accepted by write() and not yet handed to the operating system. */
  readonly writableLength: number;
  readonly closed: boolean;
  /** Starts the flow of events; called once. */
  start(handlers: TransportHandlers): void;
  /** Sends bytes; false when the caller should wait for drain before sending more. */
  write(chunk: Uint8Array): boolean;
  /** Stops reading from the peer (TCP backpressure) until resume(). */
  pause(): void;
  resume(): void;
  /** Closes after the written bytes are flushed. */
  end(): void;
  /** Closes at once. */
  destroy(error?: Error): void;
  /** What TLS knows of the peer; absent (or null) on a transport without TLS. */
  tlsPeer?(): TlsPeer | null;
}

/** The peer of a TLS connection (mqtts, wss), as verified during the handshake. */
export interface TlsPeer {
  /** The peer's certificate chains to a trusted CA (and, for a server, matches the name). */
  readonly authorized: boolean;
  /** Why it is not authorized (an OpenSSL code such as "CERT_HAS_EXPIRED"), else null. */
  readonly authorizationError: string | null;
  /** The peer's certificate in DER, or null when it sent none. */
  readonly certificate: Uint8Array | null;
  /** The negotiated protocol ("TLSv1.3"...). */
  readonly protocol: string | null;
}

/** A listening endpoint that hands each accepted connection over as a Transport. */
export interface TransportListener {
  readonly host: string;
  readonly port: number;
  /** "mqtt", "mqtts", "ws" or "wss". */
  readonly scheme: string;
  /** Connections currently open through this listener. */
  readonly connections: number;
  /** Stops accepting; open connections are left to their owners. */
  close(): Promise<void>;
}

/**
 * Creates a listener; `onTransport` receives each accepted connection. Declared as a method
 * so that a factory with typed options (TLS, WebSocket) fits where `ListenerFactory` (unknown
 * options) is expected.
 */
export type ListenerFactory<O = unknown> = {
  create(
    host: string,
    port: number,
    onTransport: (transport: Transport) => void,
    options?: O,
  ): Promise<TransportListener>;
}["create"];

/** Opens a client transport (a method type for the same reason as ListenerFactory). */
export type Connector<O = unknown> = {
  open(host: string, port: number, options?: O): Promise<Transport>;
}["open"];
