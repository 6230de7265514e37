import type { ConnectProperties, ProtocolVersion, QoS } from "@myqtt/codec";
import {
  AsyncQueue,
  ConnackCode,
  type Connector,
  type Ctx,
  describe,
  isPromise,
  LogLevel,
  type Msg,
  type PeerRole,
} from "@myqtt/core";
import type { BackoffOptions } from "./backoff.js";
import { MqttClient } from "./client.js";
import { ConnackError, ConnectionClosedError, ConnectionError, TimeoutError } from "./errors.js";
import type { InflightStore } from "./inflight-store.js";
import type { Timers } from "./timers.js";

/** Connection status, as MyQtt numbers it (MyQttStatus). */
export const ConnStatus = {
  ERROR: 1,
  OK: 2,
  CONNECTION_ERROR: 8,
  CONNECTION_TIMEOUT_ERROR: 9,
  CONNECTION_CLOSE_CALLED: 12,
  CONNECTION_FORCED_CLOSE: 13,
  PROTOCOL_ERROR: 14,
} as const;
export type ConnStatus = (typeof ConnStatus)[keyof typeof ConnStatus];

/** Connection options (MyQtt's MyQttConnOpts). */
export class ConnOpts {
  /**
   * MyQtt's reconnect cadence: one attempt every second (no growth, no jitter) until one
   * succeeds, however long the server stays away.
   */
  static readonly MYQTT_RECONNECT: Readonly<BackoffOptions> = Object.freeze({
    initialDelayMs: 1000,
    maxDelayMs: 1000,
    multiplier: 1,
    jitter: 0,
  });

  username: string | undefined;
  password: string | undefined;
  will: { qos: QoS; topic: string; message: string | Uint8Array; retain: boolean } | undefined;
  reconnect = false;
  /** The delays between reconnect attempts (setReconnect's second argument). */
  reconnectDelays: BackoffOptions = ConnOpts.MYQTT_RECONNECT;
  protocolVersion: ProtocolVersion = 4;
  /** MQTT 5.0 CONNECT properties (setting them selects MQTT 5.0). */
  properties: ConnectProperties | undefined;
  connectTimeoutMs = 60_000;
  connector: Connector<unknown> | undefined;
  connectorOptions: unknown;
  inflightStore: InflightStore | undefined;
  /** The clock the client runs on (connect timeout, reconnect delays); tests inject a fake one. */
  timers: Timers | undefined;

  /** A user name enables authentication; the password is optional. */
  setAuth(username: string, password?: string): void {
    this.username = username;
    this.password = password;
  }

  setWill(qos: QoS, topic: string, message: string | Uint8Array, retain: boolean): void {
    this.will = { qos, topic, message, retain };
  }

  /**
   * Reconnect automatically after a lost connection (same Conn object, same id and data):
   * on_close handlers run at the loss, on_reconnect ones once connected again. As in MyQtt,
   * an attempt is made every second until one succeeds (`ConnOpts.MYQTT_RECONNECT`); `delays`
   * chooses the client's exponential backoff instead, e.g. `{ initialDelayMs: 1000,
   * maxDelayMs: 30_000 }` (doubling, 20 % jitter), kinder to a server many clients lost at once.
   */
  setReconnect(enable = true, delays: BackoffOptions = ConnOpts.MYQTT_RECONNECT): void {
    this.reconnect = enable;
    this.reconnectDelays = delays;
  }

  setProtocolVersion(version: ProtocolVersion): void {
    this.protocolVersion = version;
  }

  /** MQTT 5.0 CONNECT properties; selects MQTT 5.0. */
  setProperties(properties: ConnectProperties): void {
    this.properties = properties;
    this.protocolVersion = 5;
  }
}

export type OnMsgHandler<D = unknown> = (ctx: Ctx, conn: Conn, msg: Msg, data: D) => void;
export type OnCloseHandler<D = unknown> = (conn: Conn, data: D) => void;
export type OnReconnectHandler<D = unknown> = (conn: Conn, data: D) => void;

let lastConnId = 0;
/** How long close() lets publishes nobody waits for complete. */
const CLOSE_GRACE_MS = 1000;

/** The longest delay a Node timer takes (about 24.8 days); a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Seconds as MyQtt counts them, as a timer delay: -1 waits (practically) forever, 0 does not
 * wait; at most MAX_TIMER_MS (MyQtt's -1 is 10,000,000 s: Node would make it 1 ms).
 */
function waitMs(seconds: number): number {
  return seconds < 0 ? MAX_TIMER_MS : Math.min(seconds * 1000, MAX_TIMER_MS);
}

async function within<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(Math.max(1, Math.min(ms, MAX_TIMER_MS)));
  return work(signal);
}

/**
 * MyQtt's last_err for a failed connect, from the error's type and cause (never its message,
 * which names the host): the server's CONNACK code; 1 (REFUSED) when the server closed the
 * connection before any CONNACK, as MyQtt's client reports it; -3 when the connect timeout
 * (or the system's TCP connect timeout) ran out; -2 for any other transport or handshake
 * failure; -4 for anything else (a bad option, a failing in-flight store).
 */
function lastErrOf(error: unknown): number {
  if (error instanceof ConnackError) return error.reasonCode ?? ConnackCode.REFUSED;
  if (error instanceof ConnectionClosedError) return ConnackCode.REFUSED;
  if (error instanceof ConnectionError) {
    const cause = error.cause;
    const timedOut =
      cause instanceof TimeoutError ||
      (cause as { code?: unknown } | undefined)?.code === "ETIMEDOUT";
    return timedOut ? ConnackCode.CONNECT_TIMEOUT : ConnackCode.UNABLE_TO_CONNECT;
  }
  return ConnackCode.UNKNOWN_ERR;
}

/**
 * A MyQtt client connection (role "initiator"): the PyMyQtt API over MqttClient. Blocking
 * calls are promises with MyQtt's time units (seconds; getNext in milliseconds) and boolean
 * results; nothing throws.
 */
export class Conn {
  readonly id = ++lastConnId;
  readonly role: PeerRole = "initiator";
  readonly ctx: Ctx;
  /** The client underneath, for the idiomatic API (null when the connection failed). */
  readonly client: MqttClient | null;
  readonly host: string;
  readonly port: number;
  /** A ConnackCode: 0, the server's refusal, 1 (closed before CONNACK), or -2, -3, -4 (see lastErrOf). */
  lastErr: number;
  /** Why the connection is not ok, or null. */
  errorMsg: string | null;
  private statusValue: ConnStatus;
  private readonly data = new Map<string, unknown>();
  private onMsg: { handler: OnMsgHandler; data: unknown } | null = null;
  /** on_close handlers in the order they run (setOnClose's insertLast chooses the end). */
  private onClose: { handle: number; handler: OnCloseHandler; data: unknown }[] = [];
  private nextHandle = 1;
  /** The on_close handlers ran for the current connection (once per connection lost). */
  private closeNotified = false;
  private blocked = false;
  private serverNameValue: string | null = null;
  private onReconnect: { handler: OnReconnectHandler; data: unknown } | null = null;
  private readonly nextWaiters: AsyncQueue<Msg>[] = [];
  /** pub() calls still waiting for their acknowledgement: close() waits for these only. */
  private readonly waitingPubs = new Set<Promise<unknown>>();

  private constructor(
    ctx: Ctx,
    host: string,
    port: number,
    client: MqttClient | null,
    lastErr: number,
    errorMsg: string | null,
  ) {
    this.ctx = ctx;
    this.host = host;
    this.port = port;
    this.client = client;
    this.lastErr = lastErr;
    this.errorMsg = errorMsg;
    this.statusValue = client === null ? ConnStatus.CONNECTION_ERROR : ConnStatus.OK;
    if (client !== null) this.wire(client);
  }

  /**
   * Connects (MyQtt's myqtt_conn_new). Never throws: check `isOk()`, `lastErr`, `errorMsg`.
   * A null or empty client id makes one up and forces a clean session.
   */
  static async connect(
    ctx: Ctx,
    host: string,
    port: string | number,
    clientId: string | null = null,
    cleanSession = false,
    keepAlive = 0,
    opts: ConnOpts = new ConnOpts(),
  ): Promise<Conn> {
    const portNumber = typeof port === "number" ? port : Number(port);
    const clean = clientId === null || clientId === "" ? true : cleanSession;
    // Messages that arrive with the CONNACK (a resumed session's queue) come before this Conn
    // exists: they wait here and are handed over once the caller could set its handler.
    const early: Msg[] = [];
    let target: Conn | null = null;
    const onMessage = (_topic: string, _payload: Uint8Array, msg: Msg): void => {
      if (target === null) early.push(msg);
      else target.deliver(msg);
    };
    try {
      if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65_535) {
        throw new ConnectionError(`invalid port ${JSON.stringify(port)}`);
      }
      const client = await MqttClient.connect({
        host,
        port: portNumber,
        clientId: clientId ?? "",
        clean,
        keepAlive,
        protocolVersion: opts.protocolVersion,
        onMessage,
        connectTimeoutMs: opts.connectTimeoutMs,
        reconnect: opts.reconnect ? opts.reconnectDelays : false,
        ...(opts.timers !== undefined ? { timers: opts.timers } : {}),
        ...(opts.username !== undefined ? { username: opts.username } : {}),
        ...(opts.password !== undefined ? { password: opts.password } : {}),
        ...(opts.will !== undefined
          ? {
              will: {
                topic: opts.will.topic,
                payload: opts.will.message,
                qos: opts.will.qos,
                retain: opts.will.retain,
              },
            }
          : {}),
        ...(opts.properties !== undefined ? { properties: opts.properties } : {}),
        ...(opts.connector !== undefined
          ? { connector: opts.connector, connectorOptions: opts.connectorOptions }
          : {}),
        ...(opts.inflightStore !== undefined ? { inflightStore: opts.inflightStore } : {}),
      });
      ctx.log(
        LogLevel.DEBUG,
        "client/conn",
        `connected to ${host}:${portNumber} as ${client.clientId}`,
      );
      const conn = new Conn(ctx, host, portNumber, client, ConnackCode.ACCEPTED, null);
      // Released when the client is closed for good: the ctx must not keep closed Conns.
      const untrack = ctx.onExit(() => conn.shutdown());
      client.once("close", untrack);
      // After the caller's continuation ran (it may set a handler right after connecting).
      setImmediate(() => {
        for (const msg of early) conn.deliver(msg);
        early.length = 0;
        target = conn;
      });
      return conn;
    } catch (error) {
      const code = lastErrOf(error);
      const message = describe(error);
      ctx.log(
        LogLevel.WARNING,
        "client/conn",
        `cannot connect to ${host}:${String(port)}: ${message}`,
      );
      return new Conn(
        ctx,
        host,
        Number.isInteger(portNumber) ? portNumber : 0,
        null,
        code,
        message,
      );
    }
  }

  private wire(client: MqttClient): void {
    // Messages come through the onMessage option given at connect (see Conn.connect).
    this.serverNameValue = client.transport?.serverName ?? null;
    client.on("connect", () => {
      this.serverNameValue = client.transport?.serverName ?? null;
      // A block() outlives the connection it was made on: the new one starts blocked too.
      if (this.blocked) client.transport?.pause();
    });
    client.on("reconnect", () => {
      this.statusValue = ConnStatus.OK;
      this.closeNotified = false;
      const hook = this.onReconnect;
      if (hook !== null) this.call(() => hook.handler(this, hook.data));
    });
    // A loss with setReconnect: MyQtt runs on_close for it (the connection closed), then its
    // reconnect event brings the same Conn back and runs on_reconnect.
    client.on("offline", () => {
      this.statusValue = ConnStatus.CONNECTION_ERROR;
      this.notifyClose();
    });
    client.on("close", () => {
      if (this.statusValue === ConnStatus.OK) this.statusValue = ConnStatus.CONNECTION_ERROR;
      this.notifyClose();
      for (const q of this.nextWaiters) q.push(null as unknown as Msg);
    });
    client.on("error", (error) => this.ctx.log(LogLevel.WARNING, "client/conn", describe(error)));
  }

  /** Runs the on_close handlers, once for each connection that closed. */
  private notifyClose(): void {
    if (this.closeNotified) return;
    this.closeNotified = true;
    for (const hook of [...this.onClose]) this.call(() => hook.handler(this, hook.data));
  }

  /** Runs a handler; what it throws, or an async handler rejects with, is logged. */
  private call(fn: () => unknown): void {
    const failed = (error: unknown): void =>
      this.ctx.log(LogLevel.CRITICAL, "client/conn", `handler failed: ${describe(error)}`);
    try {
      const result = fn();
      if (isPromise(result)) result.then(undefined, failed);
    } catch (error) {
      failed(error);
    }
  }

  /**
   * getNext waiters first, then the connection's on_msg handler, then the context's (ctx.setOnMsg);
   * with none of them the message is dropped (MyQtt).
   */
  private deliver(msg: Msg): void {
    const waiter = this.nextWaiters.shift();
    if (waiter !== undefined) {
      waiter.push(msg);
      return;
    }
    const hook = this.onMsg ?? this.ctx.onMsg;
    if (hook !== null) this.call(() => hook.handler(this.ctx, this, msg, hook.data));
  }

  isOk(): boolean {
    return this.client?.connected ?? false;
  }

  get status(): ConnStatus {
    return this.statusValue;
  }

  get clientId(): string {
    return this.client?.clientId ?? "";
  }
  get username(): string | undefined {
    return this.client?.options.username;
  }
  /** The password sent in CONNECT (kept for reconnects), or undefined. */
  get password(): string | undefined {
    const bytes = this.client?.options.password;
    return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
  }
  /**
   * The name the server was asked for: the TLS SNI name of the connection (`tls.setServerName`,
   * or the host when it is a name), kept after it closes; null on plain TCP and WebSocket.
   */
  get serverName(): string | null {
    return this.serverNameValue;
  }
  /** The address connected to. */
  get hostIp(): string {
    return this.client?.remoteAddress ?? "";
  }
  get localAddr(): string {
    return this.client?.localAddress ?? "";
  }
  get localPort(): number {
    return this.client?.localPort ?? 0;
  }

  setData(key: string, value: unknown): void {
    if (value === undefined || value === null) this.data.delete(key);
    else this.data.set(key, value);
  }

  getData<T = unknown>(key: string): T | undefined {
    return this.data.get(key) as T | undefined;
  }

  /** Subscribes to one filter; waits `waitSeconds` for SUBACK: [ok, granted QoS]. */
  async sub(topic: string, qos: QoS = 0, waitSeconds = 10): Promise<[boolean, number]> {
    const client = this.client;
    if (client === null || !client.connected) return [false, -1];
    const done = client.subscribe(topic, {
      qos,
      iterate: false,
      signal: AbortSignal.timeout(Math.max(1, Math.min(waitMs(waitSeconds || 10), 2_147_483_647))),
    });
    if (waitSeconds === 0) {
      // MyQtt: 0 does not wait. False only when the subscribe was refused at once (a bad
      // filter or QoS, not connected), which has settled `done` already.
      done.catch(() => {});
      try {
        await Promise.race([done, undefined]);
        return [true, qos];
      } catch (error) {
        this.ctx.log(LogLevel.WARNING, "client/conn", `sub ${topic}: ${describe(error)}`);
        return [false, -1];
      }
    }
    try {
      const sub = await done;
      return [true, sub.granted[0] ?? qos];
    } catch (error) {
      this.ctx.log(LogLevel.WARNING, "client/conn", `sub ${topic}: ${describe(error)}`);
      return [false, (error as { reasonCode?: number }).reasonCode ?? -1];
    }
  }

  /** Unsubscribes; waits `waitSeconds` for UNSUBACK. */
  async unsub(topic: string, waitSeconds = 10): Promise<boolean> {
    const client = this.client;
    if (client === null || !client.connected) return false;
    if (waitSeconds === 0) {
      // MyQtt: 0 sends and does not wait; false only when refused at once (a bad filter).
      const done = client.unsubscribe(topic);
      done.catch(() => {});
      try {
        await Promise.race([done, undefined]);
        return true;
      } catch {
        return false;
      }
    }
    try {
      await within(waitMs(waitSeconds), (signal) => client.unsubscribe(topic, signal));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Publishes; with `waitSeconds` 0 it does not wait (false only when the publish was refused at
   * once), otherwise it waits that long for the QoS flow to complete (QoS 0: for the message to
   * be handed to the connection). True when done.
   */
  async pub(
    topic: string,
    payload: string | Uint8Array,
    qos: QoS = 0,
    retain = false,
    waitSeconds = 10,
  ): Promise<boolean> {
    const client = this.client;
    if (client === null || client.state === "closed") return false;
    const done = client.publish(topic, payload, { qos, retain });
    if (waitSeconds === 0) {
      // MyQtt: 0 does not wait. False only when the publish was refused at once (not
      // connected, a bad topic, the publish queue full), which has settled `done` already.
      done.catch(() => {});
      try {
        await Promise.race([done, undefined]);
        return true;
      } catch (error) {
        this.ctx.log(LogLevel.WARNING, "client/conn", `pub ${topic}: ${describe(error)}`);
        return false;
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // QoS 1/2: the flow completes within the wait. QoS 0: the message is handed to the
      // connection within it (it waits there while a server that stopped reading holds the
      // connection over maxOutgoingBytes; it stays queued and goes later).
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `${qos === 0 ? "not handed to the connection" : "no acknowledgement"} within ${waitSeconds} s`,
              ),
            ),
          waitMs(waitSeconds),
        );
      });
      const waited = Promise.race([done, timeout]);
      this.waitingPubs.add(waited);
      try {
        await waited;
      } finally {
        this.waitingPubs.delete(waited);
      }
      return true;
    } catch (error) {
      done.catch(() => {});
      this.ctx.log(LogLevel.WARNING, "client/conn", `pub ${topic}: ${describe(error)}`);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** PINGREQ, and waits `waitSeconds` for PINGRESP. */
  async ping(waitSeconds = 10): Promise<boolean> {
    const client = this.client;
    if (client === null || !client.connected) return false;
    const pong = client.ping();
    if (waitSeconds === 0) {
      // MyQtt: 0 sends the PINGREQ and does not wait.
      pong.catch(() => {});
      return true;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        pong,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("no PINGRESP")), waitMs(waitSeconds));
        }),
      ]);
      return true;
    } catch {
      pong.catch(() => {});
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next message, waiting at most `timeoutMs` milliseconds (0: forever); null otherwise. */
  async getNext(timeoutMs = 0): Promise<Msg | null> {
    if (this.client === null || this.client.state === "closed") return null;
    const queue = new AsyncQueue<Msg>();
    this.nextWaiters.push(queue);
    const msg = timeoutMs > 0 ? await queue.timedpop(timeoutMs * 1000) : await queue.pop();
    const at = this.nextWaiters.indexOf(queue);
    if (at >= 0) this.nextWaiters.splice(at, 1);
    return msg ?? null;
  }

  /** Receives every message (`handler(ctx, conn, msg, data)`); null stops it. */
  setOnMsg<D>(handler: OnMsgHandler<D> | null, data?: D): void {
    this.onMsg = handler === null ? null : { handler: handler as OnMsgHandler, data };
  }

  /**
   * Called when the connection closes for any reason: close(), shutdown(), or lost (with
   * setReconnect, at each loss, before the reconnect). Handlers run in order; `insertLast`
   * false puts this one first. Returns a handle for removeOnClose.
   */
  setOnClose<D>(handler: OnCloseHandler<D>, data?: D, insertLast = true): number {
    const handle = this.nextHandle++;
    const entry = { handle, handler: handler as OnCloseHandler, data };
    if (insertLast) this.onClose.push(entry);
    else this.onClose.unshift(entry);
    return handle;
  }

  removeOnClose(handle: number): boolean {
    const before = this.onClose.length;
    this.onClose = this.onClose.filter((entry) => entry.handle !== handle);
    return this.onClose.length < before;
  }

  /** Called after an automatic reconnect (ConnOpts.setReconnect) or reconnect(). */
  setOnReconnect<D>(handler: OnReconnectHandler<D> | null, data?: D): void {
    this.onReconnect = handler === null ? null : { handler: handler as OnReconnectHandler, data };
  }

  /**
   * Drops the connection and connects again now, with the same settings (MyQtt's
   * myqtt_conn_reconnect); on_close and on_reconnect run as for a loss. True once connected
   * again, false when the attempt failed (further attempts follow at the reconnect delays).
   * Needs ConnOpts.setReconnect: without it a lost connection is closed for good, so this
   * returns false and leaves the connection alone.
   */
  async reconnect(): Promise<boolean> {
    const client = this.client;
    if (client === null || client.options.reconnect === false) return false;
    if (client.state === "closing" || client.state === "closed") return false;
    const outcome = new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        client.off("reconnect", onReconnect);
        client.off("error", onError);
        client.off("close", onClosed);
        resolve(ok);
      };
      const onReconnect = (): void => done(true);
      // A failed attempt is reported as an error; errors of the old link come before it drops.
      const onError = (): void => {
        if (client.state === "reconnecting") done(false);
      };
      const onClosed = (): void => done(false);
      client.on("reconnect", onReconnect);
      client.on("error", onError);
      client.on("close", onClosed);
    });
    client.reconnect();
    return outcome;
  }

  /**
   * Stops (true) or resumes (false) reading from the server (MyQtt's myqtt_conn_block): while
   * blocked no message is delivered, no acknowledgement is read, and once the socket's buffers
   * fill the server's writes wait (TCP backpressure). Kept across reconnects. A blocked
   * connection does not see PINGRESP either: with a keep alive it is declared dead after it.
   */
  block(enable = true): void {
    if (this.blocked === enable) return;
    this.blocked = enable;
    const transport = this.client?.transport;
    if (transport === null || transport === undefined) return;
    if (enable) transport.pause();
    else transport.resume();
  }

  isBlocked(): boolean {
    return this.blocked;
  }

  /**
   * Waits for the pub() calls still waiting (each bounded by its own wait), flushes, then
   * DISCONNECT: no will. A publish nobody waits for (wait 0, or timed out) does not hold it up;
   * if unacknowledged it stays in the in-flight store.
   */
  async close(): Promise<void> {
    this.statusValue = ConnStatus.CONNECTION_CLOSE_CALLED;
    await Promise.allSettled([...this.waitingPubs]);
    // A short grace for what is in flight with nobody waiting (wait 0): it is usually acked
    // at once; what is not stays in the in-flight store.
    await this.client?.end({ timeoutMs: CLOSE_GRACE_MS });
  }

  /** Drops the connection at once, without DISCONNECT: the server publishes the will. */
  shutdown(): void {
    this.statusValue = ConnStatus.CONNECTION_FORCED_CLOSE;
    this.client?.destroy();
  }
}
