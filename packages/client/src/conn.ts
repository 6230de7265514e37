import type { ConnectProperties, ProtocolVersion, QoS } from "@myqtt/codec";
import {
  AsyncQueue,
  ConnackCode,
  type Connector,
  type Ctx,
  describe,
  LogLevel,
  type Msg,
  type PeerRole,
} from "@myqtt/core";
import { MqttClient } from "./client.js";
import { ConnackError, ConnectionError } from "./errors.js";
import type { InflightStore } from "./inflight-store.js";

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
  username: string | undefined;
  password: string | undefined;
  will: { qos: QoS; topic: string; message: string | Uint8Array; retain: boolean } | undefined;
  reconnect = false;
  protocolVersion: ProtocolVersion = 4;
  /** MQTT 5.0 CONNECT properties (setting them selects MQTT 5.0). */
  properties: ConnectProperties | undefined;
  connectTimeoutMs = 60_000;
  connector: Connector<unknown> | undefined;
  connectorOptions: unknown;
  inflightStore: InflightStore | undefined;

  /** A user name enables authentication; the password is optional. */
  setAuth(username: string, password?: string): void {
    this.username = username;
    this.password = password;
  }

  setWill(qos: QoS, topic: string, message: string | Uint8Array, retain: boolean): void {
    this.will = { qos, topic, message, retain };
  }

  /** Reconnect automatically after a lost connection (same Conn object). */
  setReconnect(enable = true): void {
    this.reconnect = enable;
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

/** Seconds as MyQtt counts them: -1 waits (practically) forever, 0 does not wait. */
function waitMs(seconds: number): number {
  return seconds < 0 ? 10_000_000_000 : seconds * 1000;
}

async function within<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = AbortSignal.timeout(Math.max(1, Math.min(ms, 2_147_483_647)));
  return work(signal);
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
  /** A ConnackCode: 0, the server's refusal, or a local failure (-2, -3, -4). */
  lastErr: number;
  /** Why the connection is not ok, or null. */
  errorMsg: string | null;
  private statusValue: ConnStatus;
  private readonly data = new Map<string, unknown>();
  private onMsg: { handler: OnMsgHandler; data: unknown } | null = null;
  private readonly onClose = new Map<number, { handler: OnCloseHandler; data: unknown }>();
  private nextHandle = 1;
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
        reconnect: opts.reconnect ? { initialDelayMs: 1000, maxDelayMs: 1000 } : false,
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
      ctx.onExit(() => conn.shutdown());
      // After the caller's continuation ran (it may set a handler right after connecting).
      setImmediate(() => {
        for (const msg of early) conn.deliver(msg);
        early.length = 0;
        target = conn;
      });
      return conn;
    } catch (error) {
      let code: number = ConnackCode.UNKNOWN_ERR;
      if (error instanceof ConnackError) code = error.reasonCode ?? ConnackCode.REFUSED;
      else if (error instanceof ConnectionError) {
        code = /timed out|within/.test(error.message)
          ? ConnackCode.CONNECT_TIMEOUT
          : ConnackCode.UNABLE_TO_CONNECT;
      } else if ((error as { code?: string }).code === "CONNECTION_CLOSED")
        code = ConnackCode.REFUSED;
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
    client.on("reconnect", () => {
      this.statusValue = ConnStatus.OK;
      const hook = this.onReconnect;
      if (hook !== null) this.call(() => hook.handler(this, hook.data));
    });
    client.on("offline", () => {
      this.statusValue = ConnStatus.CONNECTION_ERROR;
    });
    client.on("close", () => {
      if (this.statusValue === ConnStatus.OK) this.statusValue = ConnStatus.CONNECTION_ERROR;
      for (const hook of [...this.onClose.values()]) this.call(() => hook.handler(this, hook.data));
      for (const q of this.nextWaiters) q.push(null as unknown as Msg);
    });
    client.on("error", (error) => this.ctx.log(LogLevel.WARNING, "client/conn", describe(error)));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.ctx.log(LogLevel.CRITICAL, "client/conn", `handler failed: ${describe(error)}`);
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
      done.catch(() => {});
      return [true, qos];
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
      // MyQtt: 0 sends and does not wait.
      client.unsubscribe(topic).catch(() => {});
      return true;
    }
    try {
      await within(waitMs(waitSeconds), (signal) => client.unsubscribe(topic, signal));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Publishes; with `waitSeconds` 0 it returns once the message is handed over, otherwise it
   * waits that long for the QoS flow to complete. True when done.
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
    if (waitSeconds === 0 || qos === 0) {
      try {
        if (qos === 0) await done;
        else done.catch(() => {});
        return true;
      } catch (error) {
        this.ctx.log(LogLevel.WARNING, "client/conn", `pub ${topic}: ${describe(error)}`);
        return false;
      }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no acknowledgement within ${waitSeconds} s`)),
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

  /** Called when the connection closes for good; returns a handle for removeOnClose. */
  setOnClose<D>(handler: OnCloseHandler<D>, data?: D): number {
    const handle = this.nextHandle++;
    this.onClose.set(handle, { handler: handler as OnCloseHandler, data });
    return handle;
  }

  removeOnClose(handle: number): boolean {
    return this.onClose.delete(handle);
  }

  /** Called after an automatic reconnect (ConnOpts.setReconnect). */
  setOnReconnect<D>(handler: OnReconnectHandler<D> | null, data?: D): void {
    this.onReconnect = handler === null ? null : { handler: handler as OnReconnectHandler, data };
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
