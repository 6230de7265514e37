import {
  type ConnectPacket,
  type ConnectProperties,
  decodeUtf8,
  encodeUtf8,
  isValidReasonCode,
  MqttError,
  type Packet,
  PacketTooLargeError,
  PacketType,
  type ProtocolVersion,
  type PublishPacket,
  packetTypeName,
  type QoS,
  ReasonCode,
  UnsupportedProtocolError,
  type Will,
} from "@myqtt/codec";
import {
  ConnackCode,
  type ConnectReply,
  type Ctx,
  describe,
  isPromise,
  LogLevel,
  PacketChannel,
  type PacketChannelHandlers,
  type PeerRole,
  type ServerConnection,
  type Transport,
} from "@myqtt/core";
import type { Broker } from "./broker.js";
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from "./handlers/acks.js";
import { handleAuth } from "./handlers/auth.js";
import {
  connectReplyCode,
  finishConnect,
  handleConnect,
  refuseUnsupported,
} from "./handlers/connect.js";
import { handleDisconnect } from "./handlers/disconnect.js";
import { handlePublish } from "./handlers/publish.js";
import { handleSubscribe } from "./handlers/subscribe.js";
import { handleUnsubscribe } from "./handlers/unsubscribe.js";
import { deliveryProperties, isExpired, makeMessage, sharedQoS0Encoding } from "./message.js";
import type { Pending, Session, SessionOutput } from "./session.js";

/** Where a connection is in its life. */
export const ConnState = {
  /** Waiting for CONNECT. */
  CONNECTING: 0,
  /** An enhanced authentication exchange is under way. */
  AUTHENTICATING: 1,
  /** The connect hook answered DEFERRED; waiting for sendConnectReply. */
  DEFERRED: 2,
  CONNECTED: 3,
  /** Closing: no more packets are handled. */
  CLOSING: 4,
  CLOSED: 5,
} as const;
export type ConnState = (typeof ConnState)[keyof typeof ConnState];

const EMPTY_PROPERTIES: ConnectProperties = Object.freeze({});
/** Grace given to a peer to close after our DISCONNECT or FIN before the socket is destroyed. */
export const CLOSE_GRACE_MS = 2000;

let lastConnId = 0;

/**
 * A client's connection, server side (role "listener"): the MQTT state machine of one
 * connection, and the output of its session while it is connected.
 */
export class ServerConn implements ServerConnection, SessionOutput, PacketChannelHandlers {
  readonly id = ++lastConnId;
  readonly ctx: Ctx;
  readonly broker: Broker;
  readonly channel: PacketChannel;
  readonly transport: Transport;
  readonly role: PeerRole = "listener";
  state: ConnState = ConnState.CONNECTING;
  clientId = "";
  username: string | null = null;
  passwordBytes: Uint8Array | null = null;
  protocolVersion: ProtocolVersion = 4;
  cleanSession = true;
  keepAlive = 0;
  will: Will | null = null;
  connectProperties: ConnectProperties = EMPTY_PROPERTIES;
  session: Session | null = null;
  /** The CONNECT being processed (auth, deferred reply). */
  pendingConnect: ConnectPacket | null = null;
  /** QoS 1/2 messages the client accepts in flight from us. */
  sendQuota = 65_535;
  /** Topic aliases the client accepts from us (0: none). */
  clientTopicAliasMaximum = 0;
  /** Topic → alias we assigned for this connection. */
  outboundAliases: Map<string, number> | null = null;
  /** Alias → topic the client assigned. */
  inboundAliases: Map<number, string> | null = null;
  /** Enhanced authentication: the method of this connection and the step reached. */
  authMethod: string | null = null;
  authStep = 0;
  reauthenticating = false;
  /** The client id was assigned by the broker (the client sent none). */
  assignedClientId = false;
  /** Authentication Data of the last successful auth step, for the CONNACK. */
  authReplyData: Uint8Array | undefined = undefined;
  /** Releases the packets held back while a DEFERRED CONNECT waits for its reply. */
  releaseDeferred: (() => void) | null = null;
  /** The connect hook is running (sync, or its promise pending). */
  connectHookRunning = false;
  /** A sendConnectReply that came while the hook was still running, for its DEFERRED. */
  earlyConnectReply: ConnectReply | null = null;
  /** QoS 1/2 publishes received and not acknowledged yet (in the publish hook, or being stored). */
  inboundPending = 0;
  /** Acknowledgements waiting for storage; later ones queue behind them. */
  private acksWaiting = 0;
  private ackTail: Promise<void> | null = null;
  /** Epoch ms since which reading is paused until storage catches up (0: it is not). */
  private storageHeldSince = 0;
  /** Epoch ms at which the last such pause ended. */
  private storageHeldUntil = 0;
  /** Set by a DISCONNECT with reason 0: no will. */
  willCleared = false;
  private readonly connectDeadline: number;
  private closeDeadline = 0;
  private finished = false;
  private data: Map<string, unknown> | null = null;

  constructor(broker: Broker, transport: Transport) {
    this.broker = broker;
    this.ctx = broker.ctx;
    this.transport = transport;
    this.connectDeadline = Date.now() + broker.options.connectTimeoutMs;
    // The CONNECT obeys the smaller of the two limits: it is read before anyone is trusted.
    const options = broker.options;
    this.channel = new PacketChannel(transport, this, {
      maximumIncomingPacketSize: Math.min(
        options.maximumConnectPacketSize,
        options.maximumPacketSize,
      ),
      pauseReadingAbove: options.maxOutgoingBytes,
      maximumTopicFilters: options.maxTopicFiltersPerPacket,
      maximumUserProperties: options.maxUserPropertiesPerPacket,
    });
  }

  // --- ServerConnection ------------------------------------------------------------------------

  get password(): string | null {
    return this.passwordBytes === null ? null : decodeUtf8(this.passwordBytes);
  }
  get host(): string {
    return this.transport.remoteAddress;
  }
  get port(): number {
    return this.transport.remotePort;
  }
  get localAddress(): string {
    return this.transport.localAddress;
  }
  get localPort(): number {
    return this.transport.localPort;
  }
  get serverName(): string | null {
    return this.transport.serverName;
  }
  get tls(): boolean {
    return this.transport.tls;
  }

  isOk(): boolean {
    return this.state === ConnState.CONNECTED && !this.channel.closed;
  }

  setData(key: string, value: unknown): void {
    if (value === undefined || value === null) this.data?.delete(key);
    else (this.data ??= new Map()).set(key, value);
  }

  getData<T = unknown>(key: string): T | undefined {
    return this.data?.get(key) as T | undefined;
  }

  sendConnectReply(reply: ConnectReply): void {
    const code = connectReplyCode(reply);
    if (code === null)
      throw new TypeError(
        `sendConnectReply needs a CONNACK code or { reasonCode, properties }, got ${String(reply)}`,
      );
    if (code === ConnackCode.DEFERRED) {
      // Only the connect hook defers; a second DEFERRED would leave the client waiting for good.
      this.log(LogLevel.WARNING, `sendConnectReply(DEFERRED) ignored on connection ${this.id}`);
      return;
    }
    if (this.connectHookRunning && this.state < ConnState.DEFERRED) {
      // The hook defers and answered already (a cached lookup, say), before it returned.
      this.earlyConnectReply = reply;
      return;
    }
    if (this.state !== ConnState.DEFERRED) {
      this.log(
        LogLevel.WARNING,
        `sendConnectReply ignored: connection ${this.id} is not waiting for one`,
      );
      return;
    }
    const accepted = finishConnect(this, reply);
    // Packets held back go on once the CONNACK is out (after storage, when there is one).
    if (accepted === undefined) this.releaseHeldPackets();
    else void accepted.then(() => this.releaseHeldPackets());
  }

  private releaseHeldPackets(): void {
    const release = this.releaseDeferred;
    this.releaseDeferred = null;
    release?.();
  }

  publish(topic: string, payload: string | Uint8Array, qos: QoS = 0, retain = false): void {
    if (this.session === null || this.state !== ConnState.CONNECTED) return;
    const bytes = typeof payload === "string" ? encodeUtf8(payload) : payload;
    const msg = makeMessage(topic, bytes, qos, retain, undefined, null, Date.now());
    this.broker.deliver(this.session, msg, qos, retain, null);
  }

  shutdown(): void {
    if (this.state >= ConnState.CLOSING) return;
    if (this.ctx.logs(LogLevel.DEBUG))
      this.log(LogLevel.DEBUG, `connection ${this.id} (${this.clientId}) shut down`);
    this.state = ConnState.CLOSING;
    this.finish();
    this.channel.destroy();
  }

  close(reasonCode = 0x00): void {
    this.closeWith(reasonCode, "closed by the server");
  }

  // --- SessionOutput -------------------------------------------------------------------------------

  sendPublish(pending: Pending, packetId: number, dup: boolean): boolean {
    const { msg, qos, retain, subscriptionIds } = pending;
    // The socket is gone but the close is not processed yet: a QoS 1/2 message stays in flight
    // and is resent (DUP) when the session comes back; QoS 0 is lost with the connection.
    if (this.channel.closed) return qos > 0;
    const v5 = this.protocolVersion === 5;
    const aliasing = v5 && this.clientTopicAliasMaximum > 0;
    if (qos === 0) {
      if (this.channel.bufferedOutgoing > this.broker.options.maxOutgoingBytes) return false;
      // A message being routed is on its way now: only one sent later (queued, retained) can
      // have expired [MQTT-3.3.2-5]. So a Message Expiry Interval of 0 reaches the subscribers
      // connected at the publish, at QoS 0 as at QoS 1, and no one later.
      if (msg.expiresAt !== 0 && msg !== this.broker.fanningOut && isExpired(msg, Date.now()))
        return false;
      if (!retain && subscriptionIds === null && msg.expiresAt === 0 && !aliasing) {
        // Encoded once, copied to every plain receiver of the message being routed; a queued
        // one is encoded on its own, or its message would keep the encoding while held.
        const bytes =
          msg !== this.broker.fanningOut
            ? sharedQoS0Encoding(msg, v5)
            : v5
              ? (msg.encodedV5 ??= sharedQoS0Encoding(msg, true))
              : (msg.encodedV4 ??= sharedQoS0Encoding(msg, false));
        return this.sendOrDrop(bytes);
      }
    }
    const packet: PublishPacket = {
      type: PacketType.PUBLISH,
      topic: msg.topic,
      payload: msg.payload,
      qos,
      retain,
      dup,
    };
    if (qos > 0) packet.packetId = packetId;
    let newAlias: string | null = null;
    if (v5) {
      const properties = deliveryProperties(msg, subscriptionIds, Date.now());
      if (properties !== undefined) packet.properties = properties;
      if (aliasing) newAlias = this.applyOutboundAlias(packet);
    }
    const sent = this.sendOrDrop(packet);
    // An alias the client never saw set must not be used later [MQTT-3.3.2-12].
    if (!sent && newAlias !== null) this.outboundAliases!.delete(newAlias);
    return sent;
  }

  sendPubrel(packetId: number): void {
    this.send({ type: PacketType.PUBREL, packetId });
  }

  /** Queues a PUBLISH (a packet, or bytes already encoded); false when it was dropped. */
  private sendOrDrop(publish: PublishPacket | Uint8Array): boolean {
    try {
      // No closure per delivery: this runs for every subscriber of every message.
      if (publish instanceof Uint8Array) this.channel.sendEncoded(publish);
      else this.channel.send(publish);
      return true;
    } catch (error) {
      // [MQTT-3.1.2-25]: a message larger than the client's Maximum Packet Size is dropped.
      if (error instanceof PacketTooLargeError) {
        this.log(LogLevel.DEBUG, `message for ${this.clientId} dropped: ${error.message}`);
        return false;
      }
      throw error;
    }
  }

  /** Puts a topic alias on `packet`; returns the topic when it assigned a new alias. */
  private applyOutboundAlias(packet: PublishPacket): string | null {
    if (!this.broker.options.outboundTopicAliases) return null;
    const aliases = (this.outboundAliases ??= new Map());
    const known = aliases.get(packet.topic);
    if (known !== undefined) {
      packet.properties = { ...packet.properties, topicAlias: known };
      packet.topic = "";
      return null;
    }
    if (aliases.size >= this.clientTopicAliasMaximum) return null;
    const alias = aliases.size + 1;
    aliases.set(packet.topic, alias);
    packet.properties = { ...packet.properties, topicAlias: alias };
    return packet.topic;
  }

  // --- I/O -------------------------------------------------------------------------------------------

  /** Acknowledgements waiting for storage. */
  get acksPending(): number {
    return this.acksWaiting;
  }

  /**
   * Sends an acknowledgement once `stored` resolved, and after every acknowledgement queued
   * before it: acks go out in the order their packets came [MQTT-4.6.0-2]. A failed write
   * closes the connection without the ack, so the client sends the packet again. Returns a
   * promise while the ack waits, else null (sent now).
   */
  ackAfter(stored: Promise<void> | null, send: () => void): Promise<void> | null {
    if (stored === null && this.acksWaiting === 0) {
      send();
      return null;
    }
    this.acksWaiting++;
    const prev = this.ackTail;
    const wait = prev === null ? stored! : stored === null ? prev : Promise.all([prev, stored]);
    const tail = wait.then(
      () => {
        if (--this.acksWaiting === 0) this.ackTail = null;
        if (this.state < ConnState.CLOSING) send();
      },
      (error: unknown) => {
        if (--this.acksWaiting === 0) this.ackTail = null;
        this.closeWith(
          ReasonCode.UNSPECIFIED_ERROR,
          `storage failed, no acknowledgement sent: ${describe(error)}`,
          LogLevel.CRITICAL,
        );
      },
    );
    this.ackTail = tail;
    return tail;
  }

  /**
   * What a handler returns to pause reading until `wait` resolves because storage is behind:
   * the pause is counted, and keep alive is not held against the client meanwhile (we are the
   * ones not reading its PINGREQ).
   */
  holdForStorage(wait: Promise<unknown>): Promise<void> {
    this.broker.stats.storageHolds++;
    this.storageHeldSince = Date.now();
    return wait.then(() => {
      this.storageHeldSince = 0;
      this.storageHeldUntil = Date.now();
    });
  }

  /** Sends a packet; a failure to encode is logged and closes the connection. */
  send(packet: Packet): void {
    if (this.channel.closed) return;
    try {
      this.channel.send(packet);
    } catch (error) {
      // Too large for the Maximum Packet Size the client announced is the client's own doing
      // (a CONNACK it cannot take is closed without one [MQTT-3.1.2-24]): not worth more than
      // a debug line, or any client could fill the critical log.
      this.log(
        error instanceof PacketTooLargeError ? LogLevel.DEBUG : LogLevel.CRITICAL,
        `cannot send ${packetTypeName(packet.type)} to ${this.clientId}: ${describe(error)}`,
      );
      this.shutdown();
    }
  }

  log(level: (typeof LogLevel)[keyof typeof LogLevel], message: string): void {
    this.ctx.log(level, "broker/conn", message);
  }

  /** @internal PacketChannelHandlers: one packet from the client, in order. */
  onPacket(p: Packet): undefined | Promise<unknown> {
    if (this.state >= ConnState.CLOSING) return undefined;
    if (this.state === ConnState.CONNECTING) {
      if (p.type !== PacketType.CONNECT) {
        // [MQTT-3.1.0-1]: the first packet must be CONNECT.
        this.log(
          LogLevel.WARNING,
          `connection ${this.id} from ${this.host}: ${packetTypeName(p.type)} before CONNECT [MQTT-3.1.0-1]`,
        );
        this.shutdown();
        return undefined;
      }
      return handleConnect(this, p);
    }
    if (this.state !== ConnState.CONNECTED) {
      // During enhanced authentication only AUTH and DISCONNECT may come.
      if (this.state === ConnState.AUTHENTICATING && p.type === PacketType.AUTH)
        return handleAuth(this, p);
      if (p.type === PacketType.DISCONNECT) return handleDisconnect(this, p);
      this.closeWith(
        0x82,
        `${packetTypeName(p.type)} before the CONNECT was accepted`,
        LogLevel.WARNING,
      );
      return undefined;
    }
    switch (p.type) {
      case PacketType.PUBLISH:
        return handlePublish(this, p);
      case PacketType.PUBACK:
        handlePuback(this, p);
        return undefined;
      case PacketType.PUBREC:
        handlePubrec(this, p);
        return undefined;
      case PacketType.PUBREL:
        handlePubrel(this, p);
        return undefined;
      case PacketType.PUBCOMP:
        handlePubcomp(this, p);
        return undefined;
      case PacketType.SUBSCRIBE:
        return handleSubscribe(this, p);
      case PacketType.UNSUBSCRIBE:
        return handleUnsubscribe(this, p);
      case PacketType.PINGREQ:
        this.send({ type: PacketType.PINGRESP });
        return undefined;
      case PacketType.DISCONNECT:
        return handleDisconnect(this, p);
      case PacketType.AUTH:
        return handleAuth(this, p);
      case PacketType.CONNECT:
        // [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error.
        this.closeWith(0x82, "second CONNECT [MQTT-3.1.0-2]", LogLevel.WARNING);
        return undefined;
      default:
        // CONNACK, SUBACK, UNSUBACK, PINGRESP are server-to-client only.
        this.closeWith(0x82, `${packetTypeName(p.type)} is not sent by clients`, LogLevel.WARNING);
        return undefined;
    }
  }

  /** @internal PacketChannelHandlers: the client sent something that is not MQTT. */
  onError(error: unknown): void {
    if (this.state >= ConnState.CLOSING) return;
    if (error instanceof UnsupportedProtocolError) {
      if (this.state === ConnState.CONNECTING) refuseUnsupported(this, error);
      // [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error, whatever it says.
      else
        this.closeWith(
          ReasonCode.PROTOCOL_ERROR,
          `second CONNECT (${error.message})`,
          LogLevel.WARNING,
        );
      return;
    }
    if (MqttError.is(error)) {
      this.closeWith(
        error.reasonCode ?? 0x81,
        `bad packet from ${this.host}: ${error.message}`,
        LogLevel.WARNING,
      );
      return;
    }
    this.log(LogLevel.CRITICAL, `connection ${this.id}: handler failed: ${describe(error)}`);
    this.closeWith(0x83, "internal error");
  }

  /**
   * Closes the connection: an MQTT 5.0 client that got its CONNACK is told why with
   * DISCONNECT `reasonCode` first. The will is published (the client did not disconnect).
   */
  closeWith(
    reasonCode: number,
    why: string,
    level: (typeof LogLevel)[keyof typeof LogLevel] = LogLevel.DEBUG,
  ): void {
    if (this.state >= ConnState.CLOSING) return;
    if (this.ctx.logs(level))
      this.log(level, `closing connection ${this.id} (${this.clientId || this.host}): ${why}`);
    const told = this.protocolVersion === 5 && this.state === ConnState.CONNECTED;
    this.state = ConnState.CLOSING;
    if (told) {
      // Only codes DISCONNECT may carry (v5 3.14.2.1); others say "unspecified error".
      const code = isValidReasonCode(PacketType.DISCONNECT, reasonCode)
        ? reasonCode
        : ReasonCode.UNSPECIFIED_ERROR;
      this.send({ type: PacketType.DISCONNECT, reasonCode: code });
    }
    this.finish();
    this.closeDeadline = Date.now() + CLOSE_GRACE_MS;
    this.channel.end();
  }

  /** The client sent DISCONNECT: close without telling it anything back. */
  endByClient(why: string, level: (typeof LogLevel)[keyof typeof LogLevel]): void {
    if (this.state >= ConnState.CLOSING) return;
    if (this.ctx.logs(level)) this.log(level, `connection ${this.id} (${this.clientId}): ${why}`);
    this.state = ConnState.CLOSING;
    this.finish();
    this.closeDeadline = Date.now() + CLOSE_GRACE_MS;
    this.channel.end();
  }

  /** @internal PacketChannelHandlers: the transport is gone. */
  onClose(error: Error | null): void {
    if (error !== null && this.ctx.logs(LogLevel.DEBUG))
      this.log(LogLevel.DEBUG, `connection ${this.id} (${this.clientId}) lost: ${error.message}`);
    this.state = ConnState.CLOSED;
    this.finish();
    this.broker.detach(this);
  }

  /**
   * Once per connection, when it starts closing: the session loses its output (and ends
   * unless persistent), the will is published or scheduled, the close hook runs.
   */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const broker = this.broker;
    const session = this.session;
    const accepted = session !== null && session.output === this;
    if (accepted) {
      session.output = null;
      this.publishWill(session);
      if (!session.persistent) {
        broker.endSession(session);
      } else {
        broker.willSettled(session);
        broker.sessionDetached(session, Date.now());
      }
    }
    if (broker.connections.get(this.clientId) === this) broker.connections.delete(this.clientId);
    this.releaseHeldPackets();
    const hook = this.ctx.hooks.close;
    if (accepted && hook !== null) {
      const failed = (error: unknown): void =>
        this.log(LogLevel.CRITICAL, `close hook failed for ${this.clientId}: ${describe(error)}`);
      try {
        const result: unknown = hook.handler(this.ctx, this, hook.data);
        if (isPromise(result)) result.catch(failed);
      } catch (error) {
        failed(error);
      }
    }
  }

  private publishWill(session: Session): void {
    const will = this.will;
    if (will === null || this.willCleared) return;
    this.will = null;
    const { willDelayInterval, ...properties } = will.properties ?? {};
    const msg = makeMessage(
      will.topic,
      will.payload,
      will.qos,
      will.retain,
      Object.keys(properties).length > 0 ? properties : undefined,
      this.clientId,
      Date.now(),
    );
    // The will waits its delay, but never beyond the end of the session (v5 3.1.3.2.2).
    const delay = Math.min(willDelayInterval ?? 0, session.expiryInterval);
    this.broker.scheduleWill(this.clientId, msg, delay);
  }

  /** Timeouts, checked by the broker's sweep. */
  checkTimers(now: number): void {
    const state = this.state;
    if (state === ConnState.CLOSED) return;
    if (state === ConnState.CLOSING) {
      if (this.closeDeadline !== 0 && now > this.closeDeadline) this.channel.destroy();
      return;
    }
    if (state !== ConnState.CONNECTED) {
      if (now > this.connectDeadline) {
        this.log(
          LogLevel.WARNING,
          `connection ${this.id} from ${this.host}: no CONNECT completed within ${this.broker.options.connectTimeoutMs} ms`,
        );
        this.shutdown();
      }
      return;
    }
    // [MQTT-3.1.2-24]: one and a half keep alive periods without a packet, not counting a
    // pause of ours while storage catches up.
    if (
      this.keepAlive > 0 &&
      this.storageHeldSince === 0 &&
      now - Math.max(this.channel.lastReceivedAt, this.storageHeldUntil) > this.keepAlive * 1500
    ) {
      this.closeWith(0x8d, `keep alive of ${this.keepAlive} s expired`, LogLevel.WARNING);
      return;
    }
    const blocked = this.channel.blockedSince;
    if (blocked !== 0 && now - blocked > this.broker.options.writeTimeoutMs) {
      this.log(
        LogLevel.WARNING,
        `${this.clientId} stopped reading for ${this.broker.options.writeTimeoutMs} ms; disconnected`,
      );
      this.shutdown();
    }
  }
}
