import {
  type ConnackPacket,
  type ConnectPacket,
  encodeUtf8,
  isValidReasonCode,
  type Packet,
  PacketType,
  packetTypeName,
  ReasonCode,
} from "@myqtt/codec";
import {
  type Connector,
  connectTcp,
  describe,
  PacketChannel,
  type PacketChannelHandlers,
} from "@myqtt/core";
import { ConnackError, ConnectionClosedError, ConnectionError, TimeoutError } from "./errors.js";
import type { ResolvedClientOptions } from "./options.js";
import type { Timers } from "./timers.js";

/** What a link reports once it is established. */
export interface LinkHandlers {
  onPacket(packet: Packet): undefined | Promise<unknown>;
  onError(error: unknown): void;
  onClose(error: Error | null): void;
  /** The socket took everything written to it after refusing more (the server read). */
  onDrain?(): void;
}

/** How long end() waits for the server to close its side before dropping the connection. */
const END_GRACE_MS = 1000;

/**
 * One network connection of a client: the transport, the CONNECT/CONNACK handshake (with any
 * enhanced authentication), then packets in both directions.
 */
export class Link implements PacketChannelHandlers {
  readonly channel: PacketChannel;
  connack: ConnackPacket | null = null;
  /** Epoch ms of the last packet sent (keep alive). */
  lastSentAt = 0;
  private handlers: LinkHandlers | null = null;
  /** Packets behind the CONNACK wait for the handlers (the channel holds the rest in order). */
  private attached: Promise<void> | null = null;
  private release: (() => void) | null = null;
  private handshake: { resolve: (p: ConnackPacket) => void; reject: (e: Error) => void } | null =
    null;
  private closed = false;
  private closeError: Error | null = null;
  /** Drops the link if the server leaves it half open after end(). */
  private endTimer: unknown = null;
  private authStep = 0;

  private constructor(
    channelFor: (link: Link) => PacketChannel,
    private readonly options: ResolvedClientOptions,
    private readonly timers: Timers,
  ) {
    this.channel = channelFor(this);
  }

  /**
   * Connects to host:port and completes the MQTT handshake. Rejects with ConnectionError
   * (transport, timeout) or ConnackError (refused); the link is closed then.
   */
  static async open(
    options: ResolvedClientOptions,
    host: string,
    port: number,
    connect: ConnectPacket,
    timers: Timers,
  ): Promise<Link> {
    const deadline = timers.now() + options.connectTimeoutMs;
    const connector = options.connector ?? (connectTcp as Connector<unknown>);
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = timers.setTimeout(
        () =>
          reject(
            new TimeoutError(
              `no CONNACK from ${host}:${port} within ${options.connectTimeoutMs} ms`,
            ),
          ),
        Math.max(0, deadline - timers.now()),
      );
    });
    let link: Link | null = null;
    try {
      let timedOut = false;
      const connecting = connector(host, port, options.connectorOptions).then(
        (t) => {
          // Connected after the deadline: nobody will use it.
          if (timedOut) t.destroy();
          return t;
        },
        (error: unknown) => {
          throw new ConnectionError(`cannot connect to ${host}:${port}: ${describe(error)}`, {
            cause: error,
          });
        },
      );
      const transport = await Promise.race([
        connecting,
        timeout.catch((error: unknown) => {
          timedOut = true;
          connecting.catch(() => {});
          throw error;
        }),
      ]);
      link = new Link(
        (l) =>
          new PacketChannel(transport, l, {
            protocolVersion: options.protocolVersion,
            // A client's requests go out before the event loop waits again (no turn to share).
            flushTiming: "task",
            ...(options.properties?.maximumPacketSize !== undefined
              ? { maximumIncomingPacketSize: options.properties.maximumPacketSize }
              : {}),
          }),
        options,
        timers,
      );
      const connack = await Promise.race([link.handshakeWith(connect), timeout]);
      if (connack.reasonCode !== 0) {
        throw new ConnackError(
          connack.reasonCode,
          options.protocolVersion,
          connack.properties?.serverReference,
        );
      }
      // A client that asked for a clean start holds no session: told that one is present, it
      // must close the connection [MQTT-3.2.2-4] (its subscriptions and flows would be unknown).
      if (connect.clean && connack.sessionPresent)
        throw new ConnectionError(
          "protocol error from the server: Session Present in the CONNACK of a clean start",
        );
      return link;
    } catch (error) {
      link?.destroy();
      if (error instanceof TimeoutError) throw new ConnectionError(error.message, { cause: error });
      throw error;
    } finally {
      timers.clearTimeout(timer);
    }
  }

  private handshakeWith(connect: ConnectPacket): Promise<ConnackPacket> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(
          new ConnectionClosedError("the connection closed before CONNACK", {
            cause: this.closeError,
          }),
        );
        return;
      }
      this.handshake = { resolve, reject };
      this.send(connect);
    });
  }

  /** Hands the established link its handlers (after CONNACK). */
  attach(handlers: LinkHandlers): void {
    this.handlers = handlers;
    const release = this.release;
    this.release = null;
    this.attached = null;
    release?.();
    if (this.closed) handlers.onClose(this.closeError);
  }

  get isClosed(): boolean {
    return this.closed || this.channel.closed;
  }

  /** Sends a packet (throws on an invalid or oversized one: nothing is sent then). */
  send(packet: Packet): void {
    this.channel.send(packet);
    this.lastSentAt = this.timers.now();
  }

  /**
   * Flushes what is queued and closes our side. The server must close its side then (after
   * our DISCONNECT, or its own); one that does not would hold this link half open for good,
   * the client "connected" to nothing and never reconnecting: the link is dropped after
   * END_GRACE_MS.
   */
  end(): void {
    this.channel.end();
    if (this.closed || this.endTimer !== null) return;
    this.endTimer = this.timers.setTimeout(() => {
      this.endTimer = null;
      if (!this.closed) this.destroy();
    }, END_GRACE_MS);
  }

  destroy(error?: Error): void {
    this.channel.destroy(error);
  }

  // --- PacketChannelHandlers ---------------------------------------------------------------

  onPacket(packet: Packet): undefined | Promise<unknown> {
    const handshake = this.handshake;
    if (handshake !== null) {
      if (packet.type === PacketType.CONNACK) {
        this.handshake = null;
        this.connack = packet;
        handshake.resolve(packet);
        return undefined;
      }
      if (packet.type === PacketType.AUTH) return this.authStepFor(packet, handshake);
      this.handshake = null;
      handshake.reject(
        new ConnectionError(`the server sent ${packetTypeName(packet.type)} before CONNACK`),
      );
      this.destroy();
      return undefined;
    }
    if (this.handlers !== null) return this.handlers.onPacket(packet);
    // A resumed session sends its messages right behind the CONNACK: keep them for attach().
    this.attached ??= new Promise<void>((resolve) => {
      this.release = resolve;
    });
    return this.attached.then(() => this.handlers?.onPacket(packet));
  }

  onError(error: unknown): void {
    const handshake = this.handshake;
    if (handshake !== null) {
      this.handshake = null;
      handshake.reject(
        new ConnectionError(`bad data from the server: ${describe(error)}`, { cause: error }),
      );
      this.destroy();
      return;
    }
    this.handlers?.onError(error);
    // 5.0: the server hears why before the connection closes (4.13): 0x81 malformed packet,
    // 0x82 protocol error, 0x95 packet too large... as the error says.
    const reasonCode = (error as { reasonCode?: unknown } | null)?.reasonCode;
    if (
      this.options.protocolVersion === 5 &&
      !this.closed &&
      typeof reasonCode === "number" &&
      reasonCode >= 0x80 &&
      isValidReasonCode(PacketType.DISCONNECT, reasonCode)
    ) {
      this.channel.send({ type: PacketType.DISCONNECT, reasonCode });
      this.end();
      return;
    }
    this.destroy();
  }

  onClose(error: Error | null): void {
    this.closed = true;
    if (this.endTimer !== null) {
      this.timers.clearTimeout(this.endTimer);
      this.endTimer = null;
    }
    this.closeError = error;
    const handshake = this.handshake;
    if (handshake !== null) {
      this.handshake = null;
      handshake.reject(
        new ConnectionClosedError("the server closed the connection before CONNACK", {
          cause: error,
        }),
      );
    }
    this.handlers?.onClose(error);
  }

  onDrain(): void {
    this.handlers?.onDrain?.();
  }

  /** An AUTH 0x18 during the handshake: the auth handler answers with the next step. */
  private authStepFor(
    packet: Extract<Packet, { type: 15 }>,
    handshake: { reject: (e: Error) => void },
  ): undefined | Promise<unknown> {
    const auth = this.options.auth;
    if (auth?.handler === undefined || packet.reasonCode !== ReasonCode.CONTINUE_AUTHENTICATION) {
      this.handshake = null;
      handshake.reject(
        new ConnectionError("the server asked for authentication steps this client cannot take"),
      );
      this.destroy();
      return undefined;
    }
    this.authStep++;
    return Promise.resolve(auth.handler(packet.properties?.authenticationData, this.authStep)).then(
      (data) => {
        const properties =
          data === undefined
            ? { authenticationMethod: auth.method }
            : { authenticationMethod: auth.method, authenticationData: data };
        this.send({
          type: PacketType.AUTH,
          reasonCode: ReasonCode.CONTINUE_AUTHENTICATION,
          properties,
        });
      },
      (error: unknown) => {
        this.handshake = null;
        handshake.reject(
          new ConnectionError(`the auth handler failed: ${describe(error)}`, { cause: error }),
        );
        this.destroy();
      },
    );
  }
}

/** The CONNECT of a client. */
export function connectPacket(
  options: ResolvedClientOptions,
  clientId: string,
  clean: boolean,
): ConnectPacket {
  const packet: ConnectPacket = {
    type: PacketType.CONNECT,
    protocolVersion: options.protocolVersion,
    clean,
    keepAlive: options.keepAlive,
    clientId,
  };
  if (options.username !== undefined) packet.username = options.username;
  if (options.password !== undefined) packet.password = options.password;
  const will = options.will;
  if (will !== undefined) {
    packet.will = {
      topic: will.topic,
      payload: typeof will.payload === "string" ? encodeUtf8(will.payload) : will.payload,
      qos: will.qos ?? 0,
      retain: will.retain ?? false,
    };
    if (will.properties !== undefined && options.protocolVersion === 5)
      packet.will.properties = will.properties;
  }
  if (options.protocolVersion === 5) {
    const properties = { ...options.properties };
    if (options.auth !== undefined) {
      properties.authenticationMethod = options.auth.method;
      if (options.auth.data !== undefined) properties.authenticationData = options.auth.data;
    }
    if (Object.keys(properties).length > 0) packet.properties = properties;
  }
  return packet;
}
