import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import {
  HeldReads,
  readTlsPeer,
  type TlsPeer,
  type Transport,
  type TransportHandlers,
} from "@myqtt/core";
import WebSocket from "ws";
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_MAX_FRAME,
} from "./constants.js";
import { WebSocketClosedError } from "./errors.js";

const TRANSPORT = Symbol("myqtt.websocket-transport");

interface TaggedWebSocket extends WebSocket {
  [TRANSPORT]?: WebSocketTransport;
}

/** Options of a WebSocketTransport. */
export interface WebSocketTransportOptions {
  /** The Host header (server side) the peer asked for. */
  serverName?: string | null;
  /** Whether the socket underneath is TLS (wss). */
  tls?: boolean;
  /** write() returns false above this many buffered bytes (default 16 KiB). */
  highWaterMark?: number;
  /** Longer writes are sent as several messages of at most this size (default 16 MiB). */
  maxFrameSize?: number;
  /** A closing handshake longer than this cuts the socket (default 2000 ms). */
  closeTimeoutMs?: number;
}

// Sent as binary: the bytes are MQTT packets, not text (architecture: binary sent).
const BINARY = { binary: true } as const;

// Close codes that mean an ordinary end: normal, going away, no status, no close frame (the peer
// closed TCP, as an MQTT client without WebSocket courtesy does). Others are reported.
function isOrdinaryClose(code: number): boolean {
  return code === 1000 || code === 1001 || code === 1005 || code === 1006;
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

// Listeners shared by every WebSocket (ws calls them with the WebSocket as `this`), so a
// connection costs no closures for its events.
function onMessage(this: TaggedWebSocket, data: WebSocket.RawData): void {
  // Text frames are accepted as bytes: MyQtt sends MQTT in text frames (skipUTF8Validation
  // keeps ws from rejecting them).
  this[TRANSPORT]!.received(toBytes(data));
}
function onError(this: TaggedWebSocket, error: Error): void {
  this[TRANSPORT]!.failed(error);
}
function onClose(this: TaggedWebSocket, code: number, reason: Buffer): void {
  this[TRANSPORT]!.ended(code, reason);
}
function deliverEarly(transport: WebSocketTransport): void {
  transport.deliverEarly();
}
function cut(ws: WebSocket): void {
  ws.terminate();
}

/**
 * A Transport over an open `ws` WebSocket, client or server side: MQTT bytes in binary messages
 * out, binary and text messages in, and the backpressure, pause and close semantics of a TCP
 * socket.
 */
export class WebSocketTransport implements Transport {
  readonly serverName: string | null;
  readonly tls: boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** @internal The listener whose open connections this one counts in. */
  counter: { connections: number } | null = null;
  private handlers: TransportHandlers | null = null;
  /** Messages that came before start(), or before they could be handed over. */
  private early: Uint8Array[] | null = null;
  /** Messages received while the consumer is paused. */
  private readonly reads = new HeldReads();
  /** What destroy() was given: reported as it is. */
  private error: Error | null = null;
  /** What ws reported (a bad frame, a message over maxPayload). */
  private wsError: Error | null = null;
  private done = false;
  private closeReported = false;
  private closeError: Error | null = null;
  private needDrain = false;
  /** Sends made while over the high-water mark whose callback has not run yet. */
  private unsent = 0;
  private closeTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly highWaterMark: number;
  private readonly maxFrameSize: number;
  private readonly closeTimeoutMs: number;
  // ws has no drain event: the callbacks of the sends made while blocked say when the socket
  // took the bytes; when the last one has run, everything is out.
  private readonly onSent = (error?: Error | null): void => {
    this.unsent--;
    // Node calls back with null (not undefined) for a write that went out.
    if (this.unsent > 0 || !this.needDrain || (error ?? null) !== null || this.done) return;
    this.needDrain = false;
    this.handlers?.onDrain();
  };

  constructor(
    readonly ws: WebSocket,
    /** The TCP or TLS socket under the WebSocket (addresses, TLS details). */
    readonly socket: Socket,
    options: WebSocketTransportOptions = {},
  ) {
    this.serverName = options.serverName ?? null;
    this.tls = options.tls ?? false;
    this.highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.maxFrameSize = Math.max(1, options.maxFrameSize ?? DEFAULT_MAX_FRAME);
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    // Read now: a destroyed socket forgets its addresses, and logs of a closed one want them.
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    // TCP_NODELAY: packets are batched above (one write per batch), so Nagle only adds latency.
    socket.setNoDelay(true);
    (ws as TaggedWebSocket)[TRANSPORT] = this;
    // From the start, so an error before start() is never unhandled and no message is lost.
    ws.on("message", onMessage);
    ws.on("error", onError);
    ws.on("close", onClose);
    if (ws.readyState === WebSocket.CLOSED) this.ended(1006, Buffer.alloc(0));
  }

  get writableLength(): number {
    return this.done ? 0 : this.ws.bufferedAmount;
  }

  get closed(): boolean {
    return this.done || this.ws.readyState === WebSocket.CLOSED;
  }

  start(handlers: TransportHandlers): void {
    if (this.handlers !== null) throw new TypeError("transport already started");
    this.handlers = handlers;
    // Not from inside start(): the caller is still being constructed.
    if (this.early !== null || this.done) process.nextTick(deliverEarly, this);
  }

  write(chunk: Uint8Array): boolean {
    const ws = this.ws;
    if (this.done || ws.readyState !== WebSocket.OPEN) return false;
    if (chunk.length > this.maxFrameSize) {
      let ok = true;
      for (let at = 0; at < chunk.length; at += this.maxFrameSize) {
        ok = this.send(chunk.subarray(at, at + this.maxFrameSize));
      }
      return ok;
    }
    return this.send(chunk);
  }

  private send(chunk: Uint8Array): boolean {
    const ws = this.ws;
    // As a stream's write(): false once the buffered bytes reach the mark, whether or not the
    // kernel takes them at once; drain follows when they are out.
    if (this.needDrain || ws.bufferedAmount + chunk.length >= this.highWaterMark) {
      this.needDrain = true;
      this.unsent++;
      ws.send(chunk, BINARY, this.onSent);
      return false;
    }
    ws.send(chunk, BINARY);
    return true;
  }

  /**
   * Stops handing messages over. Reading goes on until HOLD_BYTES are held, so that a peer's
   * close is still seen while the consumer is busy (as the TCP transport does).
   */
  pause(): void {
    this.reads.pause();
  }

  resume(): void {
    if (!this.reads.paused) return;
    this.deliverHeld(false);
    // Paused again with enough held: reading stays stopped.
    if (this.reads.full) return;
    this.ws.resume();
  }

  end(): void {
    if (this.closed) return;
    // The close frame goes out behind the bytes already sent. The peer's answering close frame
    // must be read for the handshake to finish (a client waits for the server to end TCP), so
    // reading resumes even if backpressure had paused it: nothing else is wanted from the peer.
    this.ws.close(1000);
    this.ws.resume();
    this.armCloseTimer();
  }

  destroy(error?: Error): void {
    if (error !== undefined && this.error === null) this.error = error;
    // Closing at once drops what was read and not handed over, as the TCP transport does.
    this.reads.drop();
    if (!this.done) this.ws.terminate();
  }

  tlsPeer(): TlsPeer | null {
    return this.socket instanceof TLSSocket ? readTlsPeer(this.socket) : null;
  }

  /** @internal */
  received(chunk: Uint8Array): void {
    if (this.handlers === null || this.early !== null) (this.early ??= []).push(chunk);
    else if (!this.reads.paused) this.handlers.onData(chunk);
    else if (this.reads.hold(chunk)) this.ws.pause();
  }

  /** Hands the messages held while paused over (see HeldReads.deliver). */
  private deliverHeld(all: boolean): void {
    const handlers = this.handlers;
    if (handlers !== null && this.reads.paused) this.reads.deliver(all, (c) => handlers.onData(c));
  }

  /** @internal ws reports a protocol error (bad frame, message over maxPayload) and closes. */
  failed(error: Error): void {
    if (this.wsError === null) this.wsError = error;
    // ws sent a close frame and waits for the peer's; a peer that broke the protocol gets
    // little time to answer.
    this.armCloseTimer();
  }

  /** @internal */
  ended(code: number, reason: Buffer): void {
    if (this.done) return;
    this.done = true;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = null;
    if (this.counter !== null) this.counter.connections--;
    const wsError = this.wsError;
    this.closeError =
      this.error ??
      (wsError !== null
        ? new WebSocketClosedError(code, wsError.message, wsError)
        : isOrdinaryClose(code)
          ? null
          : new WebSocketClosedError(code, reason.toString("utf8")));
    if (this.handlers !== null && this.early === null) {
      // What was read before the close comes first, paused or not.
      this.deliverHeld(true);
      this.reportClose();
    }
  }

  /** @internal Hands over what came before start(), then the close if it came too. */
  deliverEarly(): void {
    const early = this.early;
    this.early = null;
    const handlers = this.handlers!;
    if (early !== null) for (const chunk of early) handlers.onData(chunk);
    if (this.done) this.reportClose();
  }

  private reportClose(): void {
    if (this.closeReported) return;
    this.closeReported = true;
    this.handlers!.onClose(this.closeError);
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== null || this.done) return;
    this.closeTimer = setTimeout(cut, this.closeTimeoutMs, this.ws);
    this.closeTimer.unref?.();
  }
}
