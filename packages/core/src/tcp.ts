import { createServer, type Server, Socket } from "node:net";
import type { Transport, TransportHandlers, TransportListener } from "./transport.js";

const TRANSPORT = Symbol("myqtt.transport");

interface TaggedSocket extends Socket {
  [TRANSPORT]?: SocketTransport;
}

// Listeners shared by every socket (EventEmitter calls them with the socket as `this`), so a
// connection costs no closures.
function onSocketData(this: TaggedSocket, chunk: Buffer): void {
  this[TRANSPORT]!.handlers!.onData(chunk);
}
function onSocketDrain(this: TaggedSocket): void {
  this[TRANSPORT]!.handlers!.onDrain();
}
function onSocketError(this: TaggedSocket, error: Error): void {
  this[TRANSPORT]!.error = error;
}
function onSocketClose(this: TaggedSocket): void {
  const transport = this[TRANSPORT]!;
  transport.done = true;
  if (transport.counter !== null) transport.counter.connections--;
  transport.handlers?.onClose(transport.error);
}

/** A Transport over a TCP socket (also the base of the TLS one). */
export class SocketTransport implements Transport {
  readonly serverName: string | null;
  readonly tls: boolean;
  /** @internal */
  handlers: TransportHandlers | null = null;
  /** @internal */
  error: Error | null = null;
  /** @internal */
  done = false;
  /** @internal The listener whose open connections this one counts in. */
  counter: { connections: number } | null = null;

  constructor(
    readonly socket: Socket,
    options: { serverName?: string | null; tls?: boolean } = {},
  ) {
    this.serverName = options.serverName ?? null;
    this.tls = options.tls ?? false;
    // TCP_NODELAY: packets are batched above (one write per batch), so Nagle only adds
    // latency. listenTcp and connectTcp set it when they make the socket; others must too.
    (socket as TaggedSocket)[TRANSPORT] = this;
    // From the start, so an error before start() is never unhandled.
    socket.on("error", onSocketError);
    socket.on("close", onSocketClose);
  }

  get remoteAddress(): string {
    return this.socket.remoteAddress ?? "";
  }
  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }
  get localAddress(): string {
    return this.socket.localAddress ?? "";
  }
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }
  get writableLength(): number {
    return this.socket.writableLength;
  }
  get closed(): boolean {
    return this.done || this.socket.destroyed;
  }

  start(handlers: TransportHandlers): void {
    if (this.handlers !== null) throw new Error("transport already started");
    this.handlers = handlers;
    const socket = this.socket;
    // Sockets do not allow half-open connections (the default), so a peer's FIN closes ours.
    socket.on("data", onSocketData);
    socket.on("drain", onSocketDrain);
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    return this.socket.write(chunk);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (!this.closed) this.socket.end();
  }

  destroy(error?: Error): void {
    this.socket.destroy(error);
  }
}

/** Options of listenTcp. */
export interface TcpListenOptions {
  /** listen() backlog (default 511). */
  backlog?: number;
}

class TcpListener implements TransportListener {
  readonly scheme = "mqtt";
  host = "";
  port = 0;
  connections = 0;

  constructor(private readonly server: Server) {}

  close(): Promise<void> {
    // Node calls close()'s callback only when every connection has ended; the listening socket
    // itself stops at once, which is what this promise reports.
    this.server.close();
    return Promise.resolve();
  }
}

/**
 * Listens on `host:port` (port 0 picks a free one) and hands each connection to `onTransport`.
 * Rejects when the address cannot be bound.
 */
export function listenTcp(
  host: string,
  port: number,
  onTransport: (transport: Transport) => void,
  options: TcpListenOptions = {},
): Promise<TransportListener> {
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true }, (socket) => {
      listener.connections++;
      const transport = new SocketTransport(socket);
      transport.counter = listener;
      onTransport(transport);
    });
    const listener = new TcpListener(server);
    server.once("error", reject);
    server.listen({ host, port, backlog: options.backlog ?? 511 }, () => {
      server.off("error", reject);
      // Accept errors (EMFILE and the like) must not crash the process; the listener goes on.
      server.on("error", () => {});
      const address = server.address();
      const bound =
        typeof address === "object" && address !== null ? address : { address: host, port };
      listener.host = bound.address;
      listener.port = bound.port;
      resolve(listener);
    });
  });
}

/** Options of connectTcp. */
export interface TcpConnectOptions {
  /** Give up after this many milliseconds (default: the operating system's). */
  timeoutMs?: number;
}

/** Connects to `host:port`. */
export function connectTcp(
  host: string,
  port: number,
  options: TcpConnectOptions = {},
): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (error: Error): void => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.once("error", fail);
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(
        () => fail(new Error(`connect to ${host}:${port} timed out`)),
        options.timeoutMs,
      );
    }
    socket.connect({ host, port }, () => {
      if (timer) clearTimeout(timer);
      // socket.connect() ignores a noDelay option: TCP_NODELAY is set here, on the live socket.
      socket.setNoDelay(true);
      socket.off("error", fail);
      resolve(new SocketTransport(socket));
    });
  });
}
