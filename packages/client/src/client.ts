import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import {
  type AckPacket,
  type ConnackPacket,
  type ConnackProperties,
  encode,
  encodedLength,
  encodeUtf8,
  type Packet,
  PacketTooLargeError,
  PacketType,
  ProtocolError,
  type PublishPacket,
  type PublishProperties,
  packetTypeName,
  type QoS,
  ReasonCode,
  type SubackPacket,
  type SubscribePacket,
  type Subscription as SubscriptionRequest,
  type UnsubackPacket,
  type UnsubscribePacket,
  validateTopicFilter,
  validateTopicName,
} from "@myqtt/codec";
import { describe, Msg, type PacketChannel, type Transport } from "@myqtt/core";
import { backoffDelay } from "./backoff.js";
import {
  AbortedError,
  ConnackError,
  ConnectionClosedError,
  NotConnectedError,
  PublishError,
  QueueFullError,
  SubscribeError,
  TimeoutError,
} from "./errors.js";
import { type FilterRecord, FilterRegistry } from "./filter-registry.js";
import { type InflightEntry, type InflightStore, MemoryInflightStore } from "./inflight-store.js";
import { KeepAlive } from "./keepalive.js";
import { connectPacket, Link, type LinkHandlers } from "./link.js";
import {
  type ClientOptions,
  optionsFromUrl,
  type ResolvedClientOptions,
  resolveClientOptions,
} from "./options.js";
import { type RequestOptions, RequestResponse } from "./request-response.js";
import { type SubscribeOptions, Subscription, type SubscriptionOwner } from "./subscription.js";
import { realTimers, type Timers } from "./timers.js";
import { InboundAliases, OutboundAliases } from "./topic-aliases.js";

/** Where a client is. */
export type ClientState = "connecting" | "connected" | "reconnecting" | "closing" | "closed";

/** Options of one publish. */
export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** MQTT 5.0 properties (topicAlias and subscriptionIdentifiers are the client's business). */
  properties?: PublishProperties;
  /** Stop waiting; a message not yet sent is not sent. */
  signal?: AbortSignal;
}

/** How a publish ended. */
export interface PublishResult {
  /** The packet id it used (QoS 1/2). */
  packetId?: number;
  /** The server's reason code (5.0; 0 otherwise). 0x10 means no subscriber matched. */
  reasonCode: number;
}

/** Events of a client. */
export interface ClientEvents {
  /** Every message received (topic, payload, the whole Msg). */
  message: [topic: string, payload: Uint8Array, msg: Msg];
  /**
   * A QoS 0 message was not buffered for a Subscription whose buffer was full while the client
   * read on for an answer from the server (also counted in `subscription.dropped`).
   */
  drop: [msg: Msg, subscription: Subscription];
  /** Connected (first time or again); `sessionPresent` from the CONNACK. */
  connect: [connack: ConnackPacket];
  /** Connected again after a loss. */
  reconnect: [connack: ConnackPacket];
  /** The connection was lost; the client will try again (when reconnect is on). */
  offline: [error: Error | null];
  /** The server sent DISCONNECT (5.0), with its reason. */
  disconnect: [reasonCode: number, properties: Record<string, unknown> | undefined];
  /** Something went wrong that no operation reports (a failed reconnect attempt...). */
  error: [error: Error];
  /** The client is closed for good. */
  close: [];
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

const NO_BYTES = new Uint8Array(0);

/** Waits for the SUBACK or UNSUBACK of a request of `filters` topic filters. */
interface AckWaiter extends Waiter<SubackPacket | UnsubackPacket> {
  type: typeof PacketType.SUBACK | typeof PacketType.UNSUBACK;
  filters: number;
}

/** The PUBACK / PUBREC of a received QoS 1/2 message, not sent yet. */
interface PendingAck {
  qos: 1 | 2;
  packetId: number;
  /** The connection it belongs to: on a later one the id may mean another message. */
  link: Link | null;
  /** Whether it may go (its message was taken); it still waits for those before it. */
  ready: boolean;
}

/** A QoS 1/2 publish on its way: queued, or in flight with a packet id. */
interface Flow {
  packet: PublishPacket;
  size: number;
  waiter: Waiter<PublishResult> | null;
  /** In flight: the id, the state, whether sent on the current connection. */
  packetId: number;
  state: "queued" | "publish" | "pubrel";
  sent: boolean;
  /** The PUBREC reason code (5.0), reported when PUBCOMP completes the flow. */
  pubrecCode?: number;
  /** Bumped at each scheduled send: an older send still waiting for the store is dropped. */
  generation: number;
}

/**
 * An MQTT 3.1 / 3.1.1 / 5.0 client that loses nothing it accepted: QoS 1/2 publishes are kept
 * until acknowledged (in the in-flight store) and resent after a reconnect; publishes made
 * while offline wait in a bounded queue; the server's Receive Maximum, Maximum Packet Size,
 * Topic Alias Maximum and Server Keep Alive are honoured.
 */
export class MqttClient extends EventEmitter<ClientEvents> implements SubscriptionOwner {
  readonly options: ResolvedClientOptions;
  /** The client id in use (the server's when it assigned one). */
  clientId: string;
  private stateValue: ClientState = "connecting";
  private link: Link | null = null;
  private keepAlive: KeepAlive | null = null;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly store: InflightStore;
  /** Server limits from the last CONNACK. */
  private server: ConnackProperties = {};
  private outboundAliases: OutboundAliases | null = null;
  private inboundAliases: InboundAliases | null = null;
  /** QoS 1/2 publishes by packet id (in flight) and waiting, in order. */
  private readonly inflight = new Map<number, Flow>();
  private readonly queue: Flow[] = [];
  private queuedBytes = 0;
  private sentCount = 0;
  private unsentCount = 0;
  /**
   * QoS 0 publishes waiting for a connection (only with offlineQueue.qos0), or, connected, for
   * the server to read (the connection held more than maxOutgoingBytes). While connected this
   * is empty unless the channel is blocked (pump() stops only on a blocked channel, and the
   * drain that follows pumps again): a QoS 0 publish made on an unblocked channel cannot pass
   * one waiting here.
   */
  private readonly queue0: Flow[] = [];
  /**
   * Bytes of QoS 1/2 publishes started (or resent) but waiting for the in-flight store before
   * they are handed to the connection: they count against maxOutgoingBytes.
   */
  private storeHeldBytes = 0;
  /** SUBACK / UNSUBACK waiters by packet id. */
  private readonly acks = new Map<number, AckWaiter>();
  private readonly pings: Waiter<void>[] = [];
  private readonly filters = new FilterRegistry();
  private readonly subscriptions = new Set<Subscription>();
  /** Iterations over every message received (messages()): they have no filter of their own. */
  private readonly everything = new Set<Subscription>();
  private nextSubscriptionId = 1;
  private readonly incomingQoS2 = new Set<number>();
  /**
   * Acknowledgements of received QoS 1/2 messages not sent yet, in the order the messages
   * arrived (they go out in that order [MQTT-4.6.0-2], [MQTT-4.6.0-3]).
   */
  private readonly unacked: PendingAck[] = [];
  /** Resumes reading (paused for a full Subscription) when the client starts waiting for an answer. */
  private wakeReading: (() => void) | null = null;
  private lastPacketId = 0;
  private reconnectTimer: unknown = null;
  /** The close was completed (pending work failed, subscriptions ended, "close" emitted). */
  private finished = false;
  private attempt = 0;
  private host: string;
  private port: number;

  private constructor(
    options: ResolvedClientOptions,
    store: InflightStore,
    timers: Timers,
    random: () => number,
    onMessage?: (topic: string, payload: Uint8Array, msg: Msg) => void,
  ) {
    super();
    this.options = options;
    this.store = store;
    this.timers = timers;
    this.random = random;
    this.host = options.host;
    this.port = options.port;
    this.clientId = options.clientId;
    if (onMessage !== undefined) this.on("message", onMessage);
    // 3.1/3.1.1 servers need an id: make one up, with a clean session (as MyQtt does).
    if (this.clientId === "" && options.protocolVersion < 5) {
      this.clientId = `myqtt-${randomBytes(8).toString("hex")}`;
      options.clean = true;
    }
  }

  /**
   * Connects to a server: `connect("mqtt://host:1883", options)` or `connect(options)`.
   * Rejects with ConnackError (refused), ConnectionError (no connection, timeout).
   */
  static async connect(
    urlOrOptions: string | ClientOptions,
    extra: ClientOptions = {},
  ): Promise<MqttClient> {
    const options =
      typeof urlOrOptions === "string"
        ? { ...optionsFromUrl(urlOrOptions, extra?.connector !== undefined), ...extra }
        : urlOrOptions;
    const client = new MqttClient(
      resolveClientOptions(options),
      options.inflightStore ?? new MemoryInflightStore(),
      options.timers ?? realTimers,
      options.random ?? Math.random,
      options.onMessage,
    );
    await client.loadStore();
    try {
      await client.establish(false);
    } catch (error) {
      client.stateValue = "closed";
      throw error;
    }
    void client.publishOffline();
    return client;
  }

  get state(): ClientState {
    return this.stateValue;
  }

  get connected(): boolean {
    return this.stateValue === "connected";
  }

  /** The server's CONNACK properties (5.0): its limits and announcements. */
  get serverProperties(): Readonly<ConnackProperties> {
    return this.server;
  }

  /** QoS 1/2 publishes not yet acknowledged, and those waiting to be sent. */
  get pendingPublishes(): number {
    return this.inflight.size + this.queue.length + this.queue0.length;
  }

  /** The transport of the current connection (TCP, TLS, WebSocket), or null while offline. */
  get transport(): Transport | null {
    return this.link?.channel.transport ?? null;
  }

  /** The local address of the current connection. */
  get localAddress(): string {
    return this.link?.channel.transport.localAddress ?? "";
  }
  get localPort(): number {
    return this.link?.channel.transport.localPort ?? 0;
  }
  /** The server address this client is (or was last) connected to. */
  get remoteAddress(): string {
    return this.link?.channel.transport.remoteAddress ?? "";
  }
  get serverHost(): string {
    return this.host;
  }
  get serverPort(): number {
    return this.port;
  }

  // --- connecting -------------------------------------------------------------------------------

  /**
   * Publishes, in order, what the store kept for this client id while no client ran (MyQtt
   * flushes offline publishes on connect); each leaves the store's offline queue once the
   * publish took it over.
   */
  private async publishOffline(): Promise<void> {
    const store = this.store;
    if (store.offline === undefined) return;
    try {
      const queued = await store.offline(this.clientId);
      const sent: Promise<unknown>[] = [];
      const running = new Set<Promise<unknown>>();
      for (const m of queued) {
        // In order, and never past the publish queue's bound: wait for earlier ones first.
        while (running.size > 0 && !this.queueHasRoom(m.payload.length + m.topic.length))
          await Promise.race(running);
        const done = this.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain }).then(() =>
          store.offlineSent?.(this.clientId, m.key),
        );
        const settled: Promise<unknown> = done.then(
          (): boolean => running.delete(settled),
          (): boolean => running.delete(settled),
        );
        running.add(settled);
        sent.push(done);
      }
      await Promise.all(sent);
    } catch (error) {
      this.emitError(new Error(`offline messages not all published: ${describe(error)}`));
    }
  }

  private async loadStore(): Promise<void> {
    // Publishes a previous run of this client id left unacknowledged are sent again.
    if (this.clientId === "") return;
    const entries = await this.store.load(this.clientId);
    for (const entry of entries) {
      const flow: Flow = {
        packet: entry.packet,
        size: entry.packet.payload.length,
        waiter: null,
        packetId: entry.packetId,
        state: entry.state,
        sent: false,
        generation: 0,
      };
      this.inflight.set(entry.packetId, flow);
      this.unsentCount++;
    }
  }

  /** One connection attempt (following redirections when allowed), then the session resumes. */
  private async establish(reconnecting: boolean): Promise<void> {
    let hops = 0;
    for (;;) {
      const clean = this.options.clean;
      const connect = connectPacket(this.options, this.clientId, clean);
      let link: Link;
      try {
        link = await Link.open(this.options, this.host, this.port, connect, this.timers);
      } catch (error) {
        if (
          error instanceof ConnackError &&
          this.options.followRedirects &&
          error.serverReference !== undefined &&
          (error.reasonCode === ReasonCode.USE_ANOTHER_SERVER ||
            error.reasonCode === ReasonCode.SERVER_MOVED) &&
          hops < 3
        ) {
          const target = parseServerReference(error.serverReference, this.port);
          if (target !== null) {
            hops++;
            this.host = target.host;
            this.port = target.port;
            continue;
          }
        }
        throw error;
      }
      if (this.stateValue === "closing" || this.stateValue === "closed") {
        // The client was closed while this attempt ran: it must not come back.
        link.destroy();
        return;
      }
      this.adopt(link, reconnecting);
      return;
    }
  }

  /** A link is up: take the server's limits, resume the session, start keep alive. */
  private adopt(link: Link, reconnecting: boolean): void {
    const connack = link.connack!;
    if (this.link !== null && this.link !== link) this.link.destroy();
    this.link = link;
    this.server = connack.properties ?? {};
    const assigned = this.server.assignedClientIdentifier;
    if (assigned !== undefined) this.clientId = assigned;
    const v5 = this.options.protocolVersion === 5;
    if (v5) {
      link.channel.maximumOutgoingPacketSize = this.server.maximumPacketSize;
      const aliasMax = this.options.topicAliases ? (this.server.topicAliasMaximum ?? 0) : 0;
      this.outboundAliases = aliasMax > 0 ? new OutboundAliases(aliasMax) : null;
      const inboundMax = this.options.properties?.topicAliasMaximum ?? 0;
      this.inboundAliases = inboundMax > 0 ? new InboundAliases(inboundMax) : null;
    }
    this.stateValue = "connected";
    this.attempt = 0;
    const handlers: LinkHandlers = {
      onPacket: (p) => this.onPacket(p),
      onError: (e) => this.emitError(e instanceof Error ? e : new Error(String(e))),
      onClose: (e) => this.onLinkClosed(link, e),
      // The server read what the socket held: what waits for it goes, up to the mark again.
      onDrain: () => {
        if (this.link === link && this.queue.length + this.queue0.length + this.unsentCount > 0)
          this.pump();
      },
    };
    link.attach(handlers);
    const keepAliveSeconds = this.server.serverKeepAlive ?? this.options.keepAlive;
    this.keepAlive = new KeepAlive(
      this.timers,
      keepAliveSeconds * 1000,
      () => link.lastSentAt,
      () => this.sendOrClose({ type: PacketType.PINGREQ }),
      () => link.destroy(new TimeoutError("no answer from the server within the keep alive")),
    );
    this.keepAlive.start();
    if (!connack.sessionPresent) {
      // The server has no session for us: its QoS 2 state is gone, and so are our subscriptions.
      this.incomingQoS2.clear();
      if (reconnecting && this.options.resubscribe) this.resubscribe();
    }
    // Resend what was in flight (DUP), then what queued.
    this.pump();
    this.emit("connect", connack);
    if (reconnecting) this.emit("reconnect", connack);
  }

  private onLinkClosed(link: Link, error: Error | null): void {
    if (this.link !== link) return;
    this.link = null;
    this.keepAlive?.stop();
    this.keepAlive = null;
    this.outboundAliases = null;
    this.inboundAliases = null;
    // Acknowledgements of ours belong to the closed connection (the server sends those
    // messages again on a resumed session).
    this.unacked.length = 0;
    this.wakeReading = null;
    // Acknowledgements that can no longer come.
    const closed = new ConnectionClosedError(
      "the connection closed",
      error === null ? {} : { cause: error },
    );
    for (const waiter of this.acks.values()) waiter.reject(closed);
    this.acks.clear();
    for (const waiter of this.pings.splice(0)) waiter.reject(closed);
    for (const flow of this.inflight.values()) flow.sent = false;
    this.unsentCount = this.inflight.size;
    this.sentCount = 0;
    if (this.stateValue === "closing" || this.stateValue === "closed") {
      this.finishClose();
      return;
    }
    if (this.options.reconnect === false) {
      this.stateValue = "closed";
      this.failPending(closed);
      this.finishClose();
      return;
    }
    this.stateValue = "reconnecting";
    this.emit("offline", error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.options.reconnect === false || this.stateValue !== "reconnecting") return;
    const delay = this.immediate
      ? 0
      : backoffDelay(this.attempt++, this.options.reconnect, this.random);
    this.immediate = false;
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stateValue !== "reconnecting") return;
      this.attempting = true;
      this.establish(true).then(
        () => {
          this.attempting = false;
        },
        (error: unknown) => {
          this.attempting = false;
          this.emitError(error instanceof Error ? error : new Error(String(error)));
          this.scheduleReconnect();
        },
      );
    }, delay);
  }

  /** Reconnects now (MyQtt's myqtt_conn_reconnect), dropping the current connection if any. */
  reconnect(): void {
    if (this.stateValue === "closing" || this.stateValue === "closed") return;
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attempt = 0;
    this.immediate = true;
    if (this.link !== null) {
      this.link.destroy();
      return;
    }
    if (this.attempting) return; // one attempt at a time; it is under way
    this.stateValue = "reconnecting";
    this.scheduleReconnect();
  }

  /** The next attempt goes without waiting (reconnect() was called). */
  private immediate = false;
  /** A connection attempt is under way. */
  private attempting = false;

  private emitError(error: Error): void {
    // An 'error' event with no listener would throw: only emit when someone listens.
    if (this.listenerCount("error") > 0) this.emit("error", error);
  }

  // --- incoming packets --------------------------------------------------------------------------

  private onPacket(p: Packet): undefined | Promise<unknown> {
    this.keepAlive?.received();
    switch (p.type) {
      case PacketType.PUBLISH:
        return this.onPublish(p);
      case PacketType.PUBACK:
        this.onPuback(p);
        return undefined;
      case PacketType.PUBREC:
        this.onPubrec(p);
        return undefined;
      case PacketType.PUBREL:
        this.onPubrel(p);
        return undefined;
      case PacketType.PUBCOMP:
        this.onPubcomp(p);
        return undefined;
      case PacketType.SUBACK:
      case PacketType.UNSUBACK:
        this.onSubAck(p);
        return undefined;
      case PacketType.PINGRESP:
        this.pings.shift()?.resolve();
        return undefined;
      case PacketType.DISCONNECT:
        this.emit(
          "disconnect",
          p.reasonCode ?? 0,
          p.properties as Record<string, unknown> | undefined,
        );
        this.redirectAfter(p.reasonCode ?? 0, p.properties?.serverReference);
        this.link?.destroy();
        return undefined;
      case PacketType.AUTH:
        this.onAuth(p);
        return undefined;
      default:
        // CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ are client-to-server only.
        this.closeWith(ReasonCode.PROTOCOL_ERROR);
        return undefined;
    }
  }

  private onPublish(p: PublishPacket): undefined | Promise<unknown> {
    let topic = p.topic;
    if (this.inboundAliases !== null || p.properties?.topicAlias !== undefined) {
      const resolved = this.inboundAliases?.resolve(p) ?? null;
      if (resolved === null) {
        this.closeWith(ReasonCode.TOPIC_ALIAS_INVALID);
        return undefined;
      }
      topic = resolved;
    }
    const packetId = p.packetId ?? 0;
    if (p.qos === 2 && this.incomingQoS2.has(packetId)) {
      // Already delivered; the server did not get our PUBREC [MQTT-4.3.3-9].
      this.acknowledge(2, packetId, undefined);
      return undefined;
    }
    if (p.qos !== 0 && this.unacked.length >= this.unackedLimit()) {
      // More unacknowledged QoS 1/2 messages than the server may send: it ignores its
      // in-flight window. Not taken (nor acknowledged): a resumed session sends it again.
      this.closeWith(ReasonCode.RECEIVE_MAXIMUM_EXCEEDED);
      return undefined;
    }
    const msg = new Msg(topic === p.topic ? p : { ...p, topic });
    // Recorded at delivery: a resent copy on a resumed session is then recognised.
    if (p.qos === 2) this.incomingQoS2.add(packetId);
    // A Subscription may be full (its reader is behind). While the client waits for an answer
    // from the server (a publish, subscribe, ping... perhaps awaited by that very reader) it
    // reads on, or the answer could never arrive: a QoS 1/2 message for a full Subscription is
    // buffered with its acknowledgement withheld until the reader takes it (the server's
    // in-flight window bounds how many), a QoS 0 one is dropped. Otherwise reading pauses.
    const readOn = this.awaitingAnswer();
    this.deferred = null;
    const held = this.dispatch(msg, readOn);
    if (p.qos !== 0) this.acknowledge(p.qos, packetId, held);
    const deferred = this.deferred as Subscription[] | null;
    if (deferred === null && (held === undefined || readOn)) return undefined;
    this.deferred = null;
    return this.pauseReading(held, msg, deferred);
  }

  /**
   * Full Subscriptions a QoS 0 message waits for while reading is paused (set by dispatch):
   * it joins them once they drained, or is dropped for them if the client reads on meanwhile.
   */
  private deferred: Subscription[] | null = null;

  /**
   * Whether an answer from the server is awaited: a QoS 1/2 publish in flight, a SUBACK or
   * UNSUBACK, a PINGRESP of ping(), an AUTH, the response to a request().
   */
  private awaitingAnswer(): boolean {
    return (
      this.sentCount > 0 ||
      this.acks.size > 0 ||
      this.pings.length > 0 ||
      this.reauth !== null ||
      (this.responses?.waiting ?? 0) > 0
    );
  }

  /**
   * The most received QoS 1/2 messages a server may leave unacknowledged: the Receive Maximum
   * the client announced (5.0), else the packet identifiers it can use at once. One more
   * closes the connection (5.0: DISCONNECT 0x93 Receive Maximum exceeded).
   */
  private unackedLimit(): number {
    return this.options.protocolVersion === 5
      ? (this.options.properties?.receiveMaximum ?? 65_535)
      : 65_535;
  }

  /**
   * Reading pauses until the readers behind took their messages (`held`, and the `deferred`
   * Subscriptions `msg` waits to join), or the client waits for an answer: then `msg` is
   * dropped for the Subscriptions still full.
   */
  private pauseReading(
    held: Promise<unknown> | undefined,
    msg: Msg,
    deferred: Subscription[] | null,
  ): Promise<unknown> {
    const keepAlive = this.keepAlive;
    keepAlive?.readingPaused(true);
    return new Promise<unknown>((resolve) => {
      let resumed = false;
      const resume = (woken: boolean): void => {
        if (resumed) return;
        resumed = true;
        if (this.wakeReading === wake) this.wakeReading = null;
        keepAlive?.readingPaused(false);
        // Not within the call that woke it (a publish, say): the channel waits for this.
        if (deferred === null) resolve(undefined);
        else resolve(Promise.resolve().then(() => this.deliverDeferred(msg, deferred, woken)));
      };
      const wake = (): void => resume(true);
      this.wakeReading = wake;
      const waits: Promise<unknown>[] = held === undefined ? [] : [held];
      if (deferred !== null) for (const sub of deferred) waits.push(sub.whenDrained());
      Promise.all(waits).then(
        () => resume(false),
        () => resume(false),
      );
    });
  }

  /** A QoS 0 message joins the Subscriptions it waited for (dropped where still full, woken). */
  private deliverDeferred(
    msg: Msg,
    subs: Subscription[],
    woken: boolean,
  ): Promise<unknown> | undefined {
    let held: Promise<unknown>[] | null = null;
    let dropped: Subscription[] | null = null;
    for (const sub of subs) {
      if (woken && sub.full) {
        (dropped ??= []).push(sub);
        continue;
      }
      const wait = sub.push(msg);
      if (wait !== undefined) (held ??= []).push(wait);
    }
    if (dropped !== null) this.reportDropped(msg, dropped);
    if (held === null || this.awaitingAnswer()) return undefined;
    // A tiny buffer is full again: pause again.
    return this.pauseReading(Promise.all(held), msg, null);
  }

  /** The client now waits for an answer: reading, if paused for a reader, goes on. */
  private expectAnswer(): void {
    this.wakeReading?.();
  }

  /**
   * Acknowledges a received QoS 1/2 message once `held` settles (at once when undefined), in
   * the order the messages arrived.
   */
  private acknowledge(qos: 1 | 2, packetId: number, held: Promise<unknown> | undefined): void {
    if (held === undefined && this.unacked.length === 0) {
      this.sendAck(qos, packetId);
      return;
    }
    const entry: PendingAck = { qos, packetId, link: this.link, ready: held === undefined };
    this.unacked.push(entry);
    held?.then(() => {
      entry.ready = true;
      this.flushAcks();
    });
  }

  private flushAcks(): void {
    const unacked = this.unacked;
    let n = 0;
    while (n < unacked.length && unacked[n]!.ready) {
      const entry = unacked[n++]!;
      if (entry.link === this.link) this.sendAck(entry.qos, entry.packetId);
    }
    if (n > 0) unacked.splice(0, n);
  }

  private sendAck(qos: 1 | 2, packetId: number): void {
    this.sendOrClose({ type: qos === 1 ? PacketType.PUBACK : PacketType.PUBREC, packetId });
  }

  /**
   * Hands a message to listeners and subscriptions; a promise while one of them is full. A
   * QoS 0 message for a full Subscription is dropped for it when the client reads on
   * (`readOn`), else it waits for room there (`this.deferred`).
   */
  private dispatch(msg: Msg, readOn: boolean): Promise<unknown> | undefined {
    let held: Promise<unknown>[] | null = null;
    let dropped: Subscription[] | null = null;
    const qos0 = msg.qos === 0;
    const offer = (sub: Subscription): void => {
      if (qos0 && sub.full) {
        if (readOn) (dropped ??= []).push(sub);
        else (this.deferred ??= []).push(sub);
        return;
      }
      const wait = sub.push(msg);
      if (wait !== undefined) (held ??= []).push(wait);
    };
    const ids = msg.properties.subscriptionIdentifiers;
    if (ids !== undefined && ids.length > 0) {
      // Identifier → filters → every Subscription on them: two Subscriptions on one filter
      // share the identifier the server holds for it.
      this.filters.forEachByIdentifiers(ids, msg.topic, offer);
    } else if (this.subscriptions.size > 0) {
      for (const sub of this.subscriptions) {
        if (
          sub.identifier !== undefined &&
          this.options.protocolVersion === 5 &&
          this.server.subscriptionIdentifierAvailable !== false
        ) {
          continue; // it would have come with its identifier
        }
        if (sub.matches(msg.topic)) offer(sub);
      }
    }
    for (const sub of this.everything) offer(sub);
    if (dropped !== null) this.reportDropped(msg, dropped);
    if (this.listenerCount("message") > 0) {
      try {
        this.emit("message", msg.topic, msg.payload, msg);
      } catch (error) {
        // A listener's error must not break the connection (or lose the ack).
        this.emitError(error instanceof Error ? error : new Error(describe(error)));
      }
    }
    return held === null ? undefined : Promise.all(held);
  }

  private reportDropped(msg: Msg, subscriptions: Subscription[]): void {
    for (const sub of subscriptions) {
      sub.drop();
      if (this.listenerCount("drop") === 0) continue;
      try {
        this.emit("drop", msg, sub);
      } catch (error) {
        this.emitError(error instanceof Error ? error : new Error(describe(error)));
      }
    }
  }

  private onPubrel(p: AckPacket): void {
    const known = this.incomingQoS2.delete(p.packetId);
    const v5 = this.options.protocolVersion === 5;
    this.sendOrClose({
      type: PacketType.PUBCOMP,
      packetId: p.packetId,
      reasonCode: known || !v5 ? 0 : ReasonCode.PACKET_IDENTIFIER_NOT_FOUND,
    });
  }

  /**
   * DISCONNECT 0x9C (use another server) or 0x9D (server moved) with a Server Reference: with
   * `followRedirects`, the reconnect goes there (4.11), as it does after such a CONNACK.
   */
  private redirectAfter(reasonCode: number, serverReference: string | undefined): void {
    if (!this.options.followRedirects || serverReference === undefined) return;
    if (reasonCode !== ReasonCode.USE_ANOTHER_SERVER && reasonCode !== ReasonCode.SERVER_MOVED)
      return;
    const target = parseServerReference(serverReference, this.port);
    if (target === null) return;
    this.host = target.host;
    this.port = target.port;
  }

  private onPuback(p: AckPacket): void {
    const flow = this.inflight.get(p.packetId);
    if (flow === undefined || flow.packet.qos !== 1) return;
    this.complete(flow, p.reasonCode ?? 0, PacketType.PUBACK);
  }

  private onPubrec(p: AckPacket): void {
    const flow = this.inflight.get(p.packetId);
    if (flow === undefined || flow.packet.qos !== 2) {
      const v5 = this.options.protocolVersion === 5;
      this.sendOrClose({
        type: PacketType.PUBREL,
        packetId: p.packetId,
        reasonCode: v5 ? ReasonCode.PACKET_IDENTIFIER_NOT_FOUND : 0,
      });
      return;
    }
    const reasonCode = p.reasonCode ?? 0;
    if (reasonCode >= 0x80) {
      this.complete(flow, reasonCode, PacketType.PUBREC);
      return;
    }
    if (flow.state === "pubrel") {
      this.sendOrClose({ type: PacketType.PUBREL, packetId: flow.packetId });
      return;
    }
    flow.state = "pubrel";
    flow.pubrecCode = reasonCode;
    // The new state is stored before PUBREL goes out.
    this.afterStore(this.persist(flow), () =>
      this.sendOrClose({ type: PacketType.PUBREL, packetId: flow.packetId }),
    );
  }

  /**
   * PUBCOMP ends the flow with the PUBREC's outcome: the server took the message at PUBREC
   * (4.3.3). A PUBCOMP 0x92 (the server lost the flow's state, say with its session) does not
   * undo that; rejecting would invite the caller to publish an exactly-once message twice.
   */
  private onPubcomp(p: AckPacket): void {
    const flow = this.inflight.get(p.packetId);
    if (flow === undefined || flow.state !== "pubrel") return;
    this.complete(flow, flow.pubrecCode ?? 0, PacketType.PUBCOMP);
  }

  /**
   * A SUBACK or UNSUBACK: it must be of the kind asked for, with one reason code per filter
   * ([MQTT-3.8.4-6], [MQTT-3.11.3-1]); otherwise it is a protocol error that fails the request
   * and closes the connection (its subscriptions would be unknown).
   */
  private onSubAck(p: SubackPacket | UnsubackPacket): void {
    const waiter = this.acks.get(p.packetId);
    if (waiter === undefined) return;
    this.acks.delete(p.packetId);
    const codes = p.reasonCodes; // absent in a 3.1.1 UNSUBACK
    let problem: string | null = null;
    if (p.type !== waiter.type)
      problem = `a ${packetTypeName(p.type)} answered a ${waiter.type === PacketType.SUBACK ? "SUBSCRIBE" : "UNSUBSCRIBE"}`;
    else if (codes !== undefined && codes.length !== waiter.filters)
      problem = `a ${packetTypeName(p.type)} carried ${codes.length} reason codes for ${waiter.filters} topic filters`;
    if (problem === null) {
      waiter.resolve(p);
      return;
    }
    const error = new ProtocolError(
      "INVALID_PACKET",
      `protocol error from the server: ${problem}`,
      {
        packetType: p.type,
      },
    );
    waiter.reject(error);
    this.emitError(error);
    this.closeWith(ReasonCode.PROTOCOL_ERROR);
  }

  private onAuth(p: Extract<Packet, { type: 15 }>): void {
    const auth = this.options.auth;
    if (auth === undefined || p.properties?.authenticationMethod !== auth.method) {
      this.closeWith(ReasonCode.PROTOCOL_ERROR);
      return;
    }
    if (p.reasonCode === ReasonCode.SUCCESS) {
      this.reauth?.resolve();
      this.reauth = null;
      return;
    }
    if (p.reasonCode !== ReasonCode.CONTINUE_AUTHENTICATION || auth.handler === undefined) {
      this.closeWith(ReasonCode.PROTOCOL_ERROR);
      return;
    }
    this.reauthStep++;
    Promise.resolve(auth.handler(p.properties?.authenticationData, this.reauthStep)).then(
      (data) => {
        const properties =
          data === undefined
            ? { authenticationMethod: auth.method }
            : { authenticationMethod: auth.method, authenticationData: data };
        this.sendOrClose({
          type: PacketType.AUTH,
          reasonCode: ReasonCode.CONTINUE_AUTHENTICATION,
          properties,
        });
      },
      (error: unknown) => {
        this.reauth?.reject(error instanceof Error ? error : new Error(String(error)));
        this.reauth = null;
        this.closeWith(ReasonCode.NOT_AUTHORIZED);
      },
    );
  }

  private reauth: Waiter<void> | null = null;
  private reauthStep = 0;

  /** MQTT 5.0 re-authentication with the method of the CONNECT; resolves on AUTH success. */
  reauthenticate(data?: Uint8Array): Promise<void> {
    const auth = this.options.auth;
    if (auth === undefined || this.options.protocolVersion !== 5) {
      return Promise.reject(
        new NotConnectedError("re-authentication needs MQTT 5.0 and an auth method"),
      );
    }
    return new Promise((resolve, reject) => {
      this.reauth = { resolve, reject };
      this.reauthStep = 0;
      this.expectAnswer();
      const properties =
        data === undefined
          ? { authenticationMethod: auth.method }
          : { authenticationMethod: auth.method, authenticationData: data };
      if (
        !this.sendOrClose({
          type: PacketType.AUTH,
          reasonCode: ReasonCode.RE_AUTHENTICATE,
          properties,
        })
      ) {
        this.reauth = null;
        reject(new NotConnectedError());
      }
    });
  }

  // --- publishing ----------------------------------------------------------------------------------

  /**
   * Publishes a message. QoS 0 resolves once it is handed to the connection; QoS 1 and 2 when
   * the server completed the flow (with a 5.0 failure code it rejects with PublishError).
   * Publishes that cannot go yet (QoS 1/2 offline or behind a full Receive Maximum; any QoS
   * while the connection holds more than `maxOutgoingBytes` unsent because the server does not
   * read) wait in the publish queue, bounded by `offlineQueue` connected or not: beyond,
   * publish rejects with QueueFullError at once. Offline, QoS 0 is refused (NotConnectedError)
   * unless `offlineQueue.qos0` is set (it queues then, within the same bound). A message larger
   * than the server's Maximum Packet Size is refused locally (PacketTooLargeError), never sent.
   */
  publish(
    topic: string,
    payload: string | Uint8Array,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    const qos = options.qos ?? 0;
    let packet: PublishPacket;
    try {
      if (this.stateValue === "closed" || this.stateValue === "closing")
        throw new NotConnectedError("the client is closed");
      if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError(`qos must be 0, 1 or 2`);
      validateTopicName(topic);
      packet = {
        type: PacketType.PUBLISH,
        topic,
        payload: typeof payload === "string" ? encodeUtf8(payload) : payload,
        qos,
        retain: options.retain ?? false,
        dup: false,
      };
      if (qos > 0) packet.packetId = 1;
      if (options.properties !== undefined && this.options.protocolVersion === 5) {
        const {
          topicAlias: _alias,
          subscriptionIdentifiers: _ids,
          ...properties
        } = options.properties;
        if (Object.keys(properties).length > 0) packet.properties = properties;
      }
      const limit = this.server.maximumPacketSize;
      if (limit !== undefined) {
        const size = encodedLength(packet, { protocolVersion: this.options.protocolVersion });
        if (size > limit)
          throw new PacketTooLargeError(size, limit, { packetType: PacketType.PUBLISH });
      }
      // Property values are checked only when encoded: encoded once here without the payload
      // (never on the path without properties), a bad one (InvalidPacketError) refuses this
      // publish now, instead of the connection later.
      if (packet.properties !== undefined)
        encode({ ...packet, payload: NO_BYTES }, { protocolVersion: 5 });
      this.checkServerAllows(packet);
      if (options.signal?.aborted) throw new AbortedError(options.signal.reason);
    } catch (error) {
      return Promise.reject(error);
    }
    if (qos === 0) return this.publish0(packet, options.signal);
    return new Promise<PublishResult>((resolve, reject) => {
      const flow: Flow = {
        packet,
        size: packet.payload.length + topic.length,
        waiter: { resolve, reject },
        packetId: 0,
        state: "queued",
        sent: false,
        generation: 0,
      };
      if (!this.enqueueOrSend(flow)) return;
      const signal = options.signal;
      if (signal !== undefined) {
        const abort = (): void => this.abortFlow(flow, signal.reason);
        signal.addEventListener("abort", abort, { once: true });
      }
    });
  }

  /**
   * What the server announced it does not support (5.0 CONNACK) is refused here, with the
   * reason code it would close the connection with: a QoS above its Maximum QoS (0x9B,
   * [MQTT-3.2.2-11]), a retained message when Retain Available is 0 (0x9A, [MQTT-3.2.2-14]).
   */
  private checkServerAllows(packet: PublishPacket): void {
    const maximumQoS = this.server.maximumQoS;
    if (maximumQoS !== undefined && packet.qos > maximumQoS)
      throw new PublishError(ReasonCode.QOS_NOT_SUPPORTED, PacketType.PUBLISH);
    if (packet.retain && this.server.retainAvailable === false)
      throw new PublishError(ReasonCode.RETAIN_NOT_SUPPORTED, PacketType.PUBLISH);
  }

  private publish0(packet: PublishPacket, signal: AbortSignal | undefined): Promise<PublishResult> {
    const link = this.link;
    if (this.stateValue === "connected" && link !== null) {
      // The normal path costs one comparison: a socket that took everything written to it.
      // Blocked, the message goes only while the connection holds no more than the mark and
      // no QoS 0 publish waits before it; else it waits for the server to read, queued.
      const channel = link.channel;
      if (channel.blockedSince === 0 || (this.queue0.length === 0 && !this.overMark(channel))) {
        try {
          if (this.sendPublish(packet)) return Promise.resolve({ reasonCode: 0 });
        } catch (error) {
          return Promise.reject(error);
        }
      } else if (!link.isClosed) {
        return this.enqueue0(packet, signal);
      }
    }
    if (!this.options.offlineQueue.qos0)
      return Promise.reject(
        new NotConnectedError("QoS 0 messages are not queued while offline (offlineQueue.qos0)"),
      );
    return this.enqueue0(packet, signal);
  }

  /** A QoS 0 publish joins the publish queue (within its bound) until it can be sent. */
  private enqueue0(packet: PublishPacket, signal: AbortSignal | undefined): Promise<PublishResult> {
    return new Promise((resolve, reject) => {
      const flow: Flow = {
        packet,
        size: packet.payload.length + packet.topic.length,
        waiter: { resolve, reject },
        packetId: 0,
        state: "queued",
        sent: false,
        generation: 0,
      };
      if (!this.checkQueueRoom(flow)) return;
      this.queue0.push(flow);
      this.queuedBytes += flow.size;
      signal?.addEventListener("abort", () => this.abortFlow(flow, signal.reason), { once: true });
    });
  }

  /**
   * Whether the connection holds more than maxOutgoingBytes unsent (QoS 1/2 packets waiting
   * for the in-flight store counted): a publish must wait for the server to read. Asked only
   * of a blocked channel (or while the store holds packets back): one whose socket takes
   * everything holds at most what one task sends up to the 64 KiB flush threshold.
   */
  private overMark(channel: PacketChannel): boolean {
    return channel.bufferedOutgoing + this.storeHeldBytes > this.options.maxOutgoingBytes;
  }

  /** Whether a QoS 1/2 flow may be handed to the connection now (see overMark). */
  private roomToSend(): boolean {
    const channel = this.link?.channel;
    if (channel === undefined || (channel.blockedSince === 0 && this.storeHeldBytes === 0))
      return true;
    return !this.overMark(channel);
  }

  /** Whether the publish queue has room for a message of `size` bytes. */
  private queueHasRoom(size: number): boolean {
    const limits = this.options.offlineQueue;
    return (
      this.queue.length + this.queue0.length < limits.maxMessages &&
      this.queuedBytes + size <= limits.maxBytes
    );
  }

  /**
   * Room in the publish queue, or the flow is refused (QueueFullError). One bound, connected
   * or not: what waits for a connection or for room in the server's Receive Maximum.
   */
  private checkQueueRoom(flow: Flow): boolean {
    if (this.queueHasRoom(flow.size)) return true;
    const limits = this.options.offlineQueue;
    const count = this.queue.length + this.queue0.length;
    const waitingFor =
      this.stateValue === "connected"
        ? "room in the server's Receive Maximum or for the server to read"
        : "a connection";
    flow.waiter?.reject(
      new QueueFullError(
        `the publish queue is full (${count} messages, ${this.queuedBytes} bytes waiting for ${waitingFor}; limits ${limits.maxMessages} / ${limits.maxBytes})`,
      ),
    );
    return false;
  }

  /** Sends a QoS 1/2 flow now if the connection and the window allow, else queues it. */
  private enqueueOrSend(flow: Flow): boolean {
    const window = this.server.receiveMaximum ?? 65_535;
    if (
      this.stateValue === "connected" &&
      this.queue.length === 0 &&
      this.unsentCount === 0 &&
      this.sentCount < window &&
      this.roomToSend()
    ) {
      this.start(flow);
      return true;
    }
    // Waiting for the connection, for room in the window or for the server to read
    // (maxOutgoingBytes): the same bound either way.
    if (!this.checkQueueRoom(flow)) return false;
    this.queue.push(flow);
    this.queuedBytes += flow.size;
    return true;
  }

  /**
   * Gives a flow a packet id, stores it, sends it. False when every packet id is in use: the
   * flow goes back to the head of the queue, until a flow completes and pumps again.
   */
  private start(flow: Flow): boolean {
    const id = this.allocatePacketId();
    if (id === 0) {
      this.queue.unshift(flow);
      this.queuedBytes += flow.size;
      return false;
    }
    flow.packetId = id;
    flow.packet = { ...flow.packet, packetId: id };
    flow.state = "publish";
    this.inflight.set(id, flow);
    // It counts against the window from now on, sent or waiting for the store.
    flow.sent = true;
    this.sentCount++;
    this.expectAnswer();
    const generation = ++flow.generation;
    this.sendAfterStore(flow.packet, this.persist(flow), () => {
      if (flow.generation !== generation || !flow.sent || this.inflight.get(id) !== flow) return;
      this.sendFlow(flow, flow.packet);
    });
    return true;
  }

  /**
   * Sends an in-flight flow's packet. Not sent (no connection): it waits for the next one. A
   * packet the connection refuses (larger than this server's Maximum Packet Size, a property
   * the encoder rejects) fails its own flow, which leaves the window and the store.
   */
  private sendFlow(flow: Flow, packet: PublishPacket | null): void {
    let sent: boolean;
    try {
      sent =
        packet === null
          ? this.sendOrClose({ type: PacketType.PUBREL, packetId: flow.packetId })
          : this.sendPublish(packet);
    } catch (error) {
      this.settle(flow, (waiter) =>
        waiter.reject(error instanceof Error ? error : new Error(String(error))),
      );
      return;
    }
    if (!sent) {
      flow.sent = false;
      this.sentCount--;
      this.unsentCount++;
    }
  }

  /** Stores a flow's state; a promise when the store answers with one. */
  private persist(flow: Flow): Promise<void> | undefined {
    const entry: InflightEntry = {
      packetId: flow.packetId,
      state: flow.state === "pubrel" ? "pubrel" : "publish",
      packet: flow.packet,
    };
    const result = this.store.put(this.clientId, entry);
    return result === undefined ? undefined : result;
  }

  /**
   * Runs `send` once `stored` settled, in the order of the calls: a packet never goes out
   * before its state is stored, nor before an earlier packet.
   */
  private afterStore(stored: Promise<void> | undefined, send: () => void): void {
    if (stored === undefined && this.storing === null) {
      send();
      return;
    }
    const previous = this.storing ?? Promise.resolve();
    const next = previous
      .then(() => stored)
      .then(send, (error: unknown) => {
        this.emitError(new Error(`in-flight store failed: ${describe(error)}`));
        send();
      });
    this.storing = next;
    void next.then(() => {
      if (this.storing === next) this.storing = null;
    });
  }

  /**
   * afterStore for a PUBLISH (null: a PUBREL): while it waits for the store its encoded size
   * counts against maxOutgoingBytes; once none waits any more, the publish queue may move on.
   */
  private sendAfterStore(
    packet: PublishPacket | null,
    stored: Promise<void> | undefined,
    send: () => void,
  ): void {
    if (stored === undefined && this.storing === null) {
      send();
      return;
    }
    const size =
      packet === null
        ? 4
        : encodedLength(packet, { protocolVersion: this.options.protocolVersion });
    this.storeHeldBytes += size;
    this.afterStore(stored, () => {
      this.storeHeldBytes -= size;
      send();
      if (this.storeHeldBytes === 0 && this.queue.length > 0) this.pump();
    });
  }

  /** The chain of store operations not finished yet (null: none). */
  private storing: Promise<void> | null = null;

  /**
   * Sends a PUBLISH (topic alias applied); false when there is no connection. Throws what the
   * connection refuses the packet for (PacketTooLargeError, InvalidPacketError): nothing of it
   * was sent then.
   */
  private sendPublish(packet: PublishPacket): boolean {
    const link = this.link;
    if (link === null || link.isClosed) return false;
    const aliases = this.outboundAliases;
    const wire = aliases === null ? packet : aliases.apply(packet);
    try {
      link.send(wire);
    } catch (error) {
      if (wire === packet) throw error;
      if (wire.topic !== "") aliases!.forget(packet.topic);
      // The alias property can make a packet that fits the server's Maximum Packet Size
      // without it too large (3 bytes more, or more than a short topic saves): it goes
      // without. Any other error is the packet's own, and comes again.
      link.send(packet);
    }
    return true;
  }

  /** A flow ended: the store forgets it, its caller hears, the next one may go. */
  private complete(flow: Flow, reasonCode: number, packetType: number): void {
    this.settle(flow, (waiter) => {
      if (reasonCode >= 0x80) waiter.reject(new PublishError(reasonCode, packetType));
      else waiter.resolve({ packetId: flow.packetId, reasonCode });
    });
  }

  /** An in-flight flow ends: out of the window and the store; `tell` tells its caller. */
  private settle(flow: Flow, tell: (waiter: Waiter<PublishResult>) => void): void {
    this.inflight.delete(flow.packetId);
    if (flow.sent) this.sentCount--;
    else this.unsentCount--;
    const packetId = flow.packetId;
    this.afterStore(undefined, () => {
      const result = this.store.delete(this.clientId, packetId);
      if (result !== undefined)
        result.catch((error: unknown) =>
          this.emitError(new Error(`in-flight store failed: ${describe(error)}`)),
        );
    });
    const waiter = flow.waiter;
    flow.waiter = null;
    if (waiter !== null) tell(waiter);
    this.pump();
  }

  private abortFlow(flow: Flow, reason: unknown): void {
    const waiter = flow.waiter;
    if (waiter === null) return;
    flow.waiter = null;
    if (flow.state === "queued") {
      // Not sent yet: it never will be.
      for (const list of [this.queue, this.queue0]) {
        const at = list.indexOf(flow);
        if (at >= 0) {
          list.splice(at, 1);
          this.queuedBytes -= flow.size;
        }
      }
    }
    // Already sent: the QoS flow completes on its own; only the caller stops waiting.
    waiter.reject(new AbortedError(reason));
  }

  /**
   * Sends what the window and maxOutgoingBytes allow: unsent in-flight flows first, then the
   * queue (QoS 0, then QoS 1/2). Runs again when the window opens or the connection drains.
   */
  private pump(): void {
    const link = this.link;
    if (this.stateValue !== "connected" || link === null) return;
    const channel = link.channel;
    const window = this.server.receiveMaximum ?? 65_535;
    if (this.unsentCount > 0) {
      for (const flow of this.inflight.values()) {
        if (flow.sent) continue;
        if (this.sentCount >= window || !this.roomToSend()) break;
        flow.sent = true;
        this.sentCount++;
        this.unsentCount--;
        this.expectAnswer();
        // Behind any store write still running: nothing goes out before its state is stored.
        const generation = ++flow.generation;
        this.sendAfterStore(flow.state === "pubrel" ? null : flow.packet, undefined, () => {
          if (
            flow.generation !== generation ||
            !flow.sent ||
            this.inflight.get(flow.packetId) !== flow
          )
            return;
          this.sendFlow(flow, flow.state === "pubrel" ? null : { ...flow.packet, dup: true });
        });
      }
    }
    while (this.queue0.length > 0) {
      if (link.isClosed || (channel.blockedSince !== 0 && this.overMark(channel))) break;
      const flow = this.queue0.shift()!;
      this.queuedBytes -= flow.size;
      let sent: boolean;
      try {
        sent = this.sendPublish(flow.packet);
      } catch (error) {
        // Larger than this server's Maximum Packet Size (it was queued for another).
        flow.waiter?.reject(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      if (sent) flow.waiter?.resolve({ reasonCode: 0 });
      else flow.waiter?.reject(new NotConnectedError());
    }
    while (
      this.queue.length > 0 &&
      this.unsentCount === 0 &&
      this.sentCount < window &&
      this.roomToSend()
    ) {
      const flow = this.queue.shift()!;
      this.queuedBytes -= flow.size;
      if (flow.waiter === null) continue; // aborted meanwhile
      if (!this.start(flow)) break; // no packet id free: a completing flow pumps again
    }
  }

  private allocatePacketId(): number {
    for (let tries = 0; tries < 65_535; tries++) {
      this.lastPacketId = this.lastPacketId === 65_535 ? 1 : this.lastPacketId + 1;
      if (!this.inflight.has(this.lastPacketId) && !this.acks.has(this.lastPacketId))
        return this.lastPacketId;
    }
    return 0;
  }

  /** Sends a control packet; false (the connection is closed meanwhile) when it cannot. */
  private sendOrClose(packet: Packet): boolean {
    const link = this.link;
    if (link === null || link.isClosed) return false;
    try {
      link.send(packet);
      return true;
    } catch (error) {
      this.emitError(error instanceof Error ? error : new Error(String(error)));
      link.destroy();
      return false;
    }
  }

  private closeWith(reasonCode: number): void {
    if (this.options.protocolVersion === 5)
      this.sendOrClose({ type: PacketType.DISCONNECT, reasonCode });
    this.link?.end();
  }

  // --- subscribing ---------------------------------------------------------------------------------

  /**
   * Every message the client receives, whichever subscription brought it (a resumed session's
   * included): an async iterable, `for await (const msg of client.messages())`, with a
   * Subscription's bounded buffer and slow-reader rules. It subscribes to nothing itself:
   * `unsubscribe()`, or leaving the loop, only ends this iteration.
   */
  messages(): Subscription {
    const all = new Subscription(this, [], [], undefined, this.options.subscriptionBuffer);
    if (this.finished) all.end();
    else this.everything.add(all);
    return all;
  }

  /**
   * Subscribes to one filter or several. Resolves with a Subscription (an async iterable of
   * the messages matching it) once SUBACK granted every filter; rejects with SubscribeError
   * (after removing those that were granted) when the server refused one.
   */
  async subscribe(
    filter: string | readonly string[],
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    const filters = typeof filter === "string" ? [filter] : [...filter];
    if (filters.length === 0) throw new RangeError("subscribe needs at least one topic filter");
    for (const f of filters) validateTopicFilter(f);
    const qos = options.qos ?? 0;
    // Refused here: encoding would fail it later, and that closes the connection.
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError("qos must be 0, 1 or 2");
    const handling = options.retainHandling ?? 0;
    if (handling !== 0 && handling !== 1 && handling !== 2)
      throw new RangeError("retainHandling must be 0, 1 or 2");
    const v5 = this.options.protocolVersion === 5;
    let identifier = options.subscriptionIdentifier;
    if (identifier === undefined && v5 && this.server.subscriptionIdentifierAvailable !== false) {
      identifier = this.nextSubscriptionId++;
    }
    const requests: SubscriptionRequest[] = filters.map((topicFilter) => {
      const r: SubscriptionRequest = { topicFilter, qos };
      if (v5) {
        r.noLocal = options.noLocal ?? false;
        r.retainAsPublished = options.retainAsPublished ?? false;
        r.retainHandling = options.retainHandling ?? 0;
      }
      return r;
    });
    // Registered before SUBSCRIBE goes out: retained messages follow right behind SUBACK.
    const subscription = new Subscription(
      this,
      filters,
      [],
      identifier,
      this.options.subscriptionBuffer,
      options.iterate ?? true,
    );
    this.subscriptions.add(subscription);
    const before = new Map<string, FilterRecord | undefined>();
    for (const request of requests) {
      const f = request.topicFilter;
      before.set(f, this.filters.snapshot(f));
      this.filters.add(f, request, identifier, subscription);
    }
    let suback: SubackPacket;
    try {
      suback = (await this.sendRequest(
        (packetId) => ({
          type: PacketType.SUBSCRIBE,
          packetId,
          subscriptions: requests,
          ...(identifier !== undefined && v5
            ? { properties: { subscriptionIdentifier: identifier } }
            : {}),
        }),
        options.signal,
      )) as SubackPacket;
    } catch (error) {
      this.subscriptions.delete(subscription);
      for (const [f, record] of before) this.filters.restore(f, record);
      throw error;
    }
    subscription.granted.push(...suback.reasonCodes);
    const refused = suback.reasonCodes.findIndex((code) => code >= 0x80);
    if (refused >= 0) {
      this.subscriptions.delete(subscription);
      const drop: string[] = [];
      filters.forEach((f, i) => {
        const previous = before.get(f);
        if ((suback.reasonCodes[i] ?? 0x80) >= 0x80 || previous !== undefined) {
          // Refused, or granted on a filter others use (the server now holds it as asked).
          if ((suback.reasonCodes[i] ?? 0x80) >= 0x80) this.filters.restore(f, previous);
          else this.filters.get(f)?.subscriptions.delete(subscription);
        } else {
          this.filters.restore(f, undefined);
          drop.push(f);
        }
      });
      // The SUBACK decided: the caller hears now, not after the server answers the cleanup.
      if (drop.length > 0) this.sendUnsubscribe(drop).catch(() => {});
      throw new SubscribeError(filters[refused]!, suback.reasonCodes[refused]!);
    }
    return subscription;
  }

  /** Unsubscribes from filters; resolves with the 5.0 reason codes (0 each on 3.1.1). */
  async unsubscribe(filter: string | readonly string[], signal?: AbortSignal): Promise<number[]> {
    const filters = typeof filter === "string" ? [filter] : [...filter];
    if (filters.length === 0) throw new RangeError("unsubscribe needs at least one topic filter");
    for (const f of filters) validateTopicFilter(f);
    for (const f of filters) {
      const record = this.filters.get(f);
      if (record !== undefined) {
        for (const sub of record.subscriptions) {
          sub.end();
          this.forget(sub);
        }
        this.filters.restore(f, undefined);
      }
    }
    return this.sendUnsubscribe(filters, signal);
  }

  private async sendUnsubscribe(filters: string[], signal?: AbortSignal): Promise<number[]> {
    const unsuback = (await this.sendRequest(
      (packetId) => ({ type: PacketType.UNSUBSCRIBE, packetId, topicFilters: filters }),
      signal,
    )) as UnsubackPacket;
    return unsuback.reasonCodes ?? filters.map(() => 0);
  }

  /** @internal SubscriptionOwner: a Subscription unsubscribes itself. */
  async unsubscribeFor(subscription: Subscription): Promise<void> {
    this.forget(subscription);
    const orphaned: string[] = [];
    for (const f of subscription.filters) {
      const record = this.filters.get(f);
      if (record === undefined) continue;
      record.subscriptions.delete(subscription);
      if (record.subscriptions.size === 0) {
        this.filters.restore(f, undefined);
        orphaned.push(f);
      }
    }
    // Another Subscription on the same filter keeps it subscribed on the server.
    if (orphaned.length > 0 && this.stateValue === "connected")
      await this.sendUnsubscribe(orphaned);
  }

  private forget(subscription: Subscription): void {
    this.subscriptions.delete(subscription);
    this.everything.delete(subscription);
  }

  /**
   * After a reconnect without a session: subscribe again to every filter in use. A filter the
   * server now refuses ends the Subscriptions on it (their iteration is done) and is reported
   * with an 'error' event (SubscribeError).
   */
  private resubscribe(): void {
    const byIdentifier = new Map<number | undefined, SubscriptionRequest[]>();
    for (const record of this.filters.records()) {
      const id = record.identifier;
      const list = byIdentifier.get(id) ?? [];
      list.push(record.request);
      byIdentifier.set(id, list);
    }
    for (const [identifier, requests] of byIdentifier) {
      this.sendRequest(
        (packetId) => ({
          type: PacketType.SUBSCRIBE,
          packetId,
          subscriptions: requests,
          ...(identifier !== undefined && this.options.protocolVersion === 5
            ? { properties: { subscriptionIdentifier: identifier } }
            : {}),
        }),
        undefined,
      ).then(
        (suback) => this.resubscribed(requests, suback.reasonCodes ?? []),
        (error: unknown) => this.emitError(new Error(`resubscribe failed: ${describe(error)}`)),
      );
    }
  }

  private resubscribed(requests: readonly SubscriptionRequest[], codes: readonly number[]): void {
    requests.forEach(({ topicFilter }, i) => {
      const code = codes[i] ?? 0x80;
      const record = this.filters.get(topicFilter);
      if (code < 0x80 || record === undefined) return;
      for (const subscription of [...record.subscriptions]) {
        subscription.end();
        this.unsubscribeFor(subscription).catch(() => {});
      }
      this.filters.restore(topicFilter, undefined);
      this.emitError(new SubscribeError(topicFilter, code));
    });
  }

  /**
   * Sends a SUBSCRIBE or UNSUBSCRIBE and waits for its acknowledgement. One larger than the
   * server's Maximum Packet Size is refused here (PacketTooLargeError); the connection stays.
   */
  private sendRequest(
    build: (packetId: number) => SubscribePacket | UnsubscribePacket,
    signal: AbortSignal | undefined,
  ): Promise<SubackPacket | UnsubackPacket> {
    if (this.stateValue !== "connected" || this.link === null)
      return Promise.reject(new NotConnectedError());
    if (signal?.aborted) return Promise.reject(new AbortedError(signal.reason));
    const packetId = this.allocatePacketId();
    if (packetId === 0) return Promise.reject(new NotConnectedError("no packet id is free"));
    const packet = build(packetId);
    const limit = this.server.maximumPacketSize;
    if (limit !== undefined) {
      const size = encodedLength(packet, { protocolVersion: this.options.protocolVersion });
      if (size > limit)
        return Promise.reject(new PacketTooLargeError(size, limit, { packetType: packet.type }));
    }
    const subscribe = packet.type === PacketType.SUBSCRIBE;
    return new Promise((resolve, reject) => {
      this.acks.set(packetId, {
        resolve,
        reject,
        type: subscribe ? PacketType.SUBACK : PacketType.UNSUBACK,
        filters: subscribe ? packet.subscriptions.length : packet.topicFilters.length,
      });
      this.expectAnswer();
      signal?.addEventListener(
        "abort",
        () => {
          if (this.acks.delete(packetId)) reject(new AbortedError(signal.reason));
        },
        { once: true },
      );
      if (!this.sendOrClose(packet)) {
        this.acks.delete(packetId);
        reject(new NotConnectedError());
      }
    });
  }

  // --- other operations ----------------------------------------------------------------------------

  /** Sends PINGREQ and waits for PINGRESP. */
  ping(): Promise<void> {
    if (this.stateValue !== "connected") return Promise.reject(new NotConnectedError());
    return new Promise((resolve, reject) => {
      this.pings.push({ resolve, reject });
      this.expectAnswer();
      if (!this.sendOrClose({ type: PacketType.PINGREQ })) {
        this.pings.pop();
        reject(new NotConnectedError());
      }
    });
  }

  /**
   * MQTT 5.0 request/response: publishes `payload` to `topic` with a Response Topic and
   * Correlation Data, and resolves with the first message answering it.
   */
  async request(
    topic: string,
    payload: string | Uint8Array,
    options: RequestOptions = {},
  ): Promise<Msg> {
    this.responses ??= new RequestResponse(this, this.timers);
    return this.responses.request(topic, payload, options);
  }

  private responses: RequestResponse | null = null;

  // --- closing ---------------------------------------------------------------------------------------

  /**
   * Ends the session cleanly: waits (up to `timeoutMs`, default 10 s) for the QoS 1/2 publishes
   * in flight and the publishes queued, sends DISCONNECT (5.0: `reasonCode`), closes. Publishes
   * still unacknowledged stay in the in-flight store for a later session of this client id;
   * those still queued are rejected (ConnectionClosedError).
   */
  end(options: { timeoutMs?: number; reasonCode?: number } = {}): Promise<void> {
    // A second call while the first runs waits for the same end (it used to take the first
    // one's place, which then never settled).
    this.ending ??= this.endOnce(options);
    return this.ending;
  }

  private ending: Promise<void> | null = null;

  private async endOnce(options: { timeoutMs?: number; reasonCode?: number }): Promise<void> {
    if (this.stateValue === "closed") return;
    if (this.stateValue === "connected" && this.pendingPublishes > 0) {
      const deadline = this.timers.now() + (options.timeoutMs ?? 10_000);
      while (
        this.stateValue === "connected" &&
        this.pendingPublishes > 0 &&
        this.timers.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    this.stateValue = "closing";
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const link = this.link;
    if (link !== null && !link.isClosed) {
      const reasonCode = options.reasonCode ?? 0;
      this.sendOrClose(
        this.options.protocolVersion === 5 && reasonCode !== 0
          ? { type: PacketType.DISCONNECT, reasonCode }
          : { type: PacketType.DISCONNECT },
      );
      await new Promise<void>((resolve) => {
        link.attach({ onPacket: () => undefined, onError: () => {}, onClose: () => resolve() });
        link.end();
      });
    }
    this.finishClose();
  }

  /** Closes at once, without DISCONNECT: the server publishes the will. */
  destroy(): void {
    if (this.stateValue === "closed") return;
    this.stateValue = "closing";
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.link !== null) this.link.destroy();
    else this.finishClose();
  }

  private finishClose(): void {
    if (this.finished) return;
    this.finished = true;
    this.stateValue = "closed";
    this.keepAlive?.stop();
    this.failPending(new ConnectionClosedError("the client closed"));
    for (const sub of this.subscriptions) sub.end();
    this.subscriptions.clear();
    for (const sub of this.everything) sub.end();
    this.everything.clear();
    this.filters.clear();
    this.emit("close");
    this.removeAllListeners("close");
  }

  /** Rejects every operation still waiting (the in-flight store keeps the publishes). */
  private failPending(error: Error): void {
    for (const flow of this.inflight.values()) {
      flow.waiter?.reject(error);
      flow.waiter = null;
    }
    for (const flow of [...this.queue, ...this.queue0]) flow.waiter?.reject(error);
    this.queue.length = 0;
    this.queue0.length = 0;
    this.queuedBytes = 0;
    for (const waiter of this.acks.values()) waiter.reject(error);
    this.acks.clear();
    for (const waiter of this.pings.splice(0)) waiter.reject(error);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.end();
  }
}

/** "host:port" (the first of a space-separated list) from a Server Reference. */
function parseServerReference(
  reference: string,
  defaultPort: number,
): { host: string; port: number } | null {
  const first = reference.trim().split(/\s+/)[0];
  if (!first) return null;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(first);
  if (bracket) return { host: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : defaultPort };
  const colon = first.lastIndexOf(":");
  if (colon > 0 && /^\d+$/.test(first.slice(colon + 1)))
    return { host: first.slice(0, colon), port: Number(first.slice(colon + 1)) };
  return { host: first, port: defaultPort };
}
