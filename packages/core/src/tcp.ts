import { createServer, type Server, Socket } from "node:net";
import type { Transport, TransportHandlers, TransportListener } from "./transport.js";

/** A Transport over a TCP socket (also the base of the TLS one). */
export class SocketTransport implements Transport {
  readonly serverName: string | null;
  readonly tls: boolean;
  private started = false;
  private done = false;

  constructor(
    readonly socket: Socket,
    options: { serverName?: string | null; tls?: boolean } = {},
  ) {
    this.serverName = options.serverName ?? null;
    this.tls = options.tls ?? false;
    // Packets are batched above (one write per batch), so Nagle only adds latency.
    socket.setNoDelay(true);
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
    if (this.started) throw new Error("transport already started");
    this.started = true;
    const socket = this.socket;
    let error: Error | null = null;
    socket.on("data", handlers.data);
    socket.on("drain", handlers.drain);
    socket.on("error", (e) => {
      error = e;
    });
    // A half-closed peer is done with MQTT: close our side too.
    socket.on("end", () => socket.end());
    socket.on("close", () => {
      this.done = true;
      handlers.close(error);
    });
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
      socket.once("close", () => listener.connections--);
      onTransport(new SocketTransport(socket));
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
    socket.connect({ host, port, noDelay: true }, () => {
      if (timer) clearTimeout(timer);
      socket.off("error", fail);
      resolve(new SocketTransport(socket));
    });
  });
}
