import type {
  CtxHooks,
  OnAuthHandler,
  OnConnectHandler,
  OnPublishHandler,
  OnServerCloseHandler,
  OnSubscribeHandler,
  OnUnsubscribeHandler,
} from "./hooks.js";
import { type LogHandler, LogLevel } from "./log.js";
import type { Msg } from "./msg.js";
import { type EventHandler, TimedEvents } from "./timed-events.js";

/** Where the default storage lives when storageSetPath was not called. */
export const DEFAULT_STORAGE_PATH = ".myqtt-storage";
export const DEFAULT_STORAGE_HASH_SIZE = 4096;

let lastCtxId = 0;

/**
 * A MyQtt context: everything a client or a broker needs lives here, nothing is global, so
 * several independent contexts can run in one process. Create it, `await init()`, use it, and
 * `await exit()` to stop its listeners, connections and events.
 */
export class Ctx {
  readonly id = ++lastCtxId;
  /** Server hooks; see setOnConnect and friends. */
  readonly hooks: CtxHooks = {
    connect: null,
    publish: null,
    subscribe: null,
    unsubscribe: null,
    close: null,
    auth: null,
  };
  private state: "new" | "ready" | "exiting" | "exited" = "new";
  private logHandler: LogHandler | null = null;
  private logData: unknown;
  /** LogLevel flags whose lines are neither built nor handed to the handler. */
  private hiddenLevels = 0;
  private readonly data = new Map<string, unknown>();
  private readonly slots = new Map<symbol, unknown>();
  private readonly exitHooks = new Set<() => unknown>();
  private readonly events = new TimedEvents(this, (error) =>
    this.log(LogLevel.CRITICAL, "core/events", `event handler failed: ${describe(error)}`),
  );
  private storage = { path: DEFAULT_STORAGE_PATH, hashSize: DEFAULT_STORAGE_HASH_SIZE, set: false };
  private onMsgHook: { handler: OnCtxMsgHandler; data: unknown } | null = null;

  /** Prepares the context; true when it is ready (MyQtt's myqtt_init_ctx). */
  async init(): Promise<boolean> {
    if (this.state === "exiting" || this.state === "exited") return false;
    this.state = "ready";
    return true;
  }

  /** Whether init() succeeded and exit() was not called. */
  get isReady(): boolean {
    return this.state === "ready";
  }

  get isExiting(): boolean {
    return this.state === "exiting" || this.state === "exited";
  }

  /**
   * Stops the context: its exit hooks run (listeners stop, connections close), its events stop.
   * A second call waits for nothing.
   */
  async exit(): Promise<void> {
    if (this.state === "exiting" || this.state === "exited") return;
    this.state = "exiting";
    this.events.clear();
    const hooks = [...this.exitHooks];
    this.exitHooks.clear();
    const results = await Promise.allSettled(hooks.map(async (hook) => hook()));
    for (const r of results) {
      if (r.status === "rejected")
        this.log(LogLevel.WARNING, "core/ctx", `exit hook failed: ${describe(r.reason)}`);
    }
    this.state = "exited";
  }

  /** Runs `hook` when the context exits; returns a function that cancels it. */
  onExit(hook: () => unknown): () => void {
    this.exitHooks.add(hook);
    return () => this.exitHooks.delete(hook);
  }

  // --- logging ---------------------------------------------------------------------------

  /** Receives every log line (null to stop). Nothing is logged by default. */
  setLogHandler<D>(handler: LogHandler<D> | null, data?: D): void {
    this.logHandler = handler as LogHandler | null;
    this.logData = data;
  }

  /** Whether a log handler is set: check it before building an expensive message. */
  get logging(): boolean {
    return this.logHandler !== null;
  }

  /**
   * Hides the lines of the given levels (LogLevel flags, combined with `|`; 0 shows every
   * level) from the log handler, as MyQtt's myqtt_log_filter_level. Code that checks
   * `logs(level)` does not even build them: a broker that hides debug lines spends nothing on
   * the ones written for every connection.
   */
  setLogFilter(hidden: number): void {
    this.hiddenLevels = hidden;
  }

  /** Whether a line of `level` would reach a log handler: check it before building one. */
  logs(level: LogLevel): boolean {
    return this.logHandler !== null && (this.hiddenLevels & level) === 0;
  }

  /** Sends a line to the log handler, unless none is set or its level is hidden. A throwing handler is ignored. */
  log(level: LogLevel, file: string, message: string): void {
    const handler = this.logHandler;
    if (handler === null || (this.hiddenLevels & level) !== 0) return;
    try {
      handler(this, file, 0, level, message, this.logData);
    } catch {
      // A log handler must not break the code that logs.
    }
  }

  // --- timed events ----------------------------------------------------------------------

  /**
   * Runs `handler(ctx, data1, data2)` every `microseconds` until it returns true or
   * removeEvent is called. Returns the event id.
   */
  newEvent<D1 = undefined, D2 = undefined>(
    microseconds: number,
    handler: EventHandler<D1, D2>,
    data1?: D1,
    data2?: D2,
  ): number {
    return this.events.add(microseconds, handler, data1 as D1, data2 as D2);
  }

  /** Stops an event; false when it was not running. */
  removeEvent(id: number): boolean {
    return this.events.remove(id);
  }

  // --- user data -------------------------------------------------------------------------

  setData(key: string, value: unknown): void {
    if (value === undefined || value === null) this.data.delete(key);
    else this.data.set(key, value);
  }

  getData<T = unknown>(key: string): T | undefined {
    return this.data.get(key) as T | undefined;
  }

  deleteData(key: string): boolean {
    return this.data.delete(key);
  }

  /**
   * Per-context state of a higher layer (the broker's sessions, the client's stores), created
   * on first use. Keyed by a symbol the layer owns.
   */
  slot<T>(key: symbol, create: () => T): T {
    let value = this.slots.get(key) as T | undefined;
    if (value === undefined) {
      value = create();
      this.slots.set(key, value);
    }
    return value;
  }

  // --- storage configuration -----------------------------------------------------------------

  /** Chooses the storage root and hash buckets (MyQtt's myqtt_storage_set_path). */
  storageSetPath(path: string, hashSize = DEFAULT_STORAGE_HASH_SIZE): void {
    if (typeof path !== "string" || path.length === 0)
      throw new TypeError("storage path must be a non-empty string");
    if (!Number.isInteger(hashSize) || hashSize < 1)
      throw new RangeError("hash size must be a positive integer");
    this.storage = { path, hashSize, set: true };
  }

  /** Whether storageSetPath was called: a broker then keeps its sessions in files there. */
  get storagePathSet(): boolean {
    return this.storage.set;
  }

  get storagePath(): string {
    return this.storage.path;
  }

  get storageHashSize(): number {
    return this.storage.hashSize;
  }

  // --- server hooks --------------------------------------------------------------------------

  /** Called for every CONNECT once it is parsed; its answer becomes the CONNACK. */
  setOnConnect<D>(handler: OnConnectHandler<D> | null, data?: D): void {
    this.hooks.connect = handler ? { handler: handler as OnConnectHandler, data } : null;
  }

  /** Called for every PUBLISH a client sends, before it is acknowledged or routed. */
  setOnPublish<D>(handler: OnPublishHandler<D> | null, data?: D): void {
    this.hooks.publish = handler ? { handler: handler as OnPublishHandler, data } : null;
  }

  /** Called for every filter of a SUBSCRIBE; returns the granted QoS or QOS_DENIED. */
  setOnSubscribe<D>(handler: OnSubscribeHandler<D> | null, data?: D): void {
    this.hooks.subscribe = handler ? { handler: handler as OnSubscribeHandler, data } : null;
  }

  /** Called for every filter of an UNSUBSCRIBE. */
  setOnUnsubscribe<D>(handler: OnUnsubscribeHandler<D> | null, data?: D): void {
    this.hooks.unsubscribe = handler ? { handler: handler as OnUnsubscribeHandler, data } : null;
  }

  /**
   * Runs MQTT 5.0 enhanced authentication: called for a CONNECT that names an Authentication
   * Method, for each AUTH step that follows, and for re-authentication. Without it such a
   * CONNECT is refused with 0x8C (bad authentication method).
   */
  setOnAuth<D>(handler: OnAuthHandler<D> | null, data?: D): void {
    this.hooks.auth = handler ? { handler: handler as OnAuthHandler, data } : null;
  }

  /** Called once when an accepted connection closes, whatever the reason (not on refusal). */
  setOnClose<D>(handler: OnServerCloseHandler<D> | null, data?: D): void {
    this.hooks.close = handler ? { handler: handler as OnServerCloseHandler, data } : null;
  }

  /**
   * The context-wide message handler of client connections (myqtt_ctx_set_on_msg): it gets the
   * messages of every connection of this context that has no handler of its own, including
   * those a resumed session sends right behind the CONNACK. `conn` is the client's Conn.
   */
  setOnMsg<D>(handler: OnCtxMsgHandler<D> | null, data?: D): void {
    this.onMsgHook = handler ? { handler: handler as OnCtxMsgHandler, data } : null;
  }

  /** The handler set by setOnMsg, or null. */
  get onMsg(): { handler: OnCtxMsgHandler; data: unknown } | null {
    return this.onMsgHook;
  }
}

/** A context-wide message handler: `conn` is the client connection the message came on. */
export type OnCtxMsgHandler<D = unknown> = (ctx: Ctx, conn: unknown, msg: Msg, data: D) => void;

/** A short description of a thrown value for a log line. */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
