import {
  type Ctx,
  describe,
  type ListenerFactory,
  LogLevel,
  listenTcp,
  type PeerRole,
  type TransportListener,
} from "@myqtt/core";
import { ctxStorageLog, FileStorage, type Storage } from "@myqtt/storage";
import { Broker } from "./broker.js";
import type { BrokerOptions } from "./options.js";

const BROKER = Symbol("myqtt.broker");
const WAITERS = Symbol("myqtt.listener-waiters");

/** The broker of a context, created on first use. */
export function getBroker(ctx: Ctx): Broker {
  return ctx.slot(BROKER, () => {
    const broker = new Broker(ctx);
    ctx.onExit(() => broker.close());
    return broker;
  });
}

/** Sets broker-wide options (limits, duplicate client ids...) of a context. */
export function configureBroker(ctx: Ctx, options: BrokerOptions): Broker {
  const broker = getBroker(ctx);
  broker.configure(options);
  return broker;
}

/** Options of createListener: broker-wide options plus how to listen. */
export interface ListenerOptions extends BrokerOptions {
  /** Makes the listening endpoint (default plain TCP). TLS and WebSocket plug in here. */
  transport?: ListenerFactory<unknown>;
  /** Options handed to the transport factory. */
  transportOptions?: unknown;
  /**
   * Where persistent sessions and retained messages are kept (read back when the broker
   * starts): a Storage, "file" (a FileStorage at ctx.storagePath, fsync durability) or
   * "memory" (nothing outlives the process). Default: "file" when ctx.storageSetPath was
   * called, else "memory". Only the first listener of a context chooses.
   */
  storage?: Storage | "file" | "memory";
}

/** The storage a listener option asks for, on `ctx`. */
function storageFor(ctx: Ctx, choice: ListenerOptions["storage"]): Storage | null {
  const kind = choice ?? (ctx.storagePathSet ? "file" : "memory");
  if (kind === "memory") return null;
  if (kind !== "file") return kind;
  return new FileStorage({
    path: ctx.storagePath,
    hashSize: ctx.storageHashSize,
    log: ctxStorageLog(ctx),
  });
}

/**
 * A listening endpoint of a broker (MyQtt's master listener). Check `isOk()`: creating one
 * never throws, a failure is reported in `errorMsg`.
 */
export class Listener {
  readonly role: PeerRole = "master-listener";
  private endpoint: TransportListener | null = null;
  private problem: string | null = null;

  constructor(
    readonly ctx: Ctx,
    private readonly requestedHost: string,
    private readonly requestedPort: number,
  ) {}

  isOk(): boolean {
    return this.endpoint !== null;
  }

  /** Why the listener is not ok, or null. */
  get errorMsg(): string | null {
    return this.problem;
  }

  /** The bound address (the requested one until bound). */
  get host(): string {
    return this.endpoint?.host ?? this.requestedHost;
  }

  /** The bound port: with port 0 requested, the one the system picked. */
  get port(): number {
    return this.endpoint?.port ?? this.requestedPort;
  }

  /** Open connections accepted through this listener. */
  get connections(): number {
    return this.endpoint?.connections ?? 0;
  }

  /** Stops accepting; open connections stay (ctx.exit() closes them). */
  async close(): Promise<void> {
    const endpoint = this.endpoint;
    this.endpoint = null;
    this.problem = "closed";
    await endpoint?.close();
  }

  /** @internal */
  bind(endpoint: TransportListener): void {
    this.endpoint = endpoint;
  }

  /** @internal */
  fail(problem: string): void {
    this.problem = problem;
  }
}

function parsePort(port: string | number): number | null {
  const n = typeof port === "number" ? port : /^\d+$/.test(port) ? Number(port) : Number.NaN;
  return Number.isInteger(n) && n >= 0 && n <= 65_535 ? n : null;
}

/**
 * Starts listening for MQTT clients on `host:port` (port "0" picks a free one) and makes the
 * context a broker. Never throws: check `listener.isOk()` and `listener.errorMsg`.
 */
export async function createListener(
  ctx: Ctx,
  host: string,
  port: string | number,
  options: ListenerOptions = {},
): Promise<Listener> {
  const number = parsePort(port);
  const listener = new Listener(ctx, host, number ?? 0);
  if (number === null) {
    listener.fail(`invalid port ${JSON.stringify(port)}`);
    return listener;
  }
  if (ctx.isExiting) {
    listener.fail("the context is exiting");
    return listener;
  }
  const { transport, transportOptions, storage, ...brokerOptions } = options;
  let broker: Broker;
  try {
    broker = getBroker(ctx);
    broker.configure(brokerOptions);
  } catch (error) {
    listener.fail(describe(error));
    return listener;
  }
  try {
    if (!broker.started) broker.setStorage(storageFor(ctx, storage));
    // The stored sessions are back before the first client is accepted.
    const subscriptions = await broker.start();
    if (subscriptions > 0)
      ctx.log(LogLevel.DEBUG, "broker/listener", `${subscriptions} stored subscriptions loaded`);
  } catch (error) {
    listener.fail(`cannot start the broker: ${describe(error)}`);
    ctx.log(LogLevel.CRITICAL, "broker/listener", listener.errorMsg!);
    return listener;
  }
  const max = broker.options.maxConnections;
  const factory = transport ?? (listenTcp as ListenerFactory<unknown>);
  try {
    const endpoint = await factory(
      host,
      number,
      (t) => {
        if (listener.connections > max) {
          ctx.log(
            LogLevel.WARNING,
            "broker/listener",
            `${listener.host}:${listener.port} is at its ${max} connections; refused ${t.remoteAddress}`,
          );
          t.destroy();
          return;
        }
        broker.attach(t);
      },
      transportOptions,
    );
    listener.bind(endpoint);
    if (ctx.isExiting) {
      // exit() ran while this was starting: its hooks are done, this one would never run.
      await listener.close();
      listener.fail("the context is exiting");
      return listener;
    }
    ctx.onExit(() => listener.close());
    ctx.log(
      LogLevel.DEBUG,
      "broker/listener",
      `listening on ${endpoint.scheme}://${endpoint.host}:${endpoint.port}`,
    );
  } catch (error) {
    listener.fail(`cannot listen on ${host}:${number}: ${describe(error)}`);
    ctx.log(LogLevel.CRITICAL, "broker/listener", listener.errorMsg!);
  }
  return listener;
}

interface Waiters {
  release: (() => void)[];
}

/**
 * Waits until unlockListeners(ctx) is called (MyQtt's myqtt_listener_wait), the context exits,
 * or, with `unlockOnSignal`, until SIGINT or SIGTERM; the context is not exited by it.
 */
export function waitListeners(ctx: Ctx, options: { unlockOnSignal?: boolean } = {}): Promise<void> {
  const waiters = ctx.slot<Waiters>(WAITERS, () => ({ release: [] }));
  return new Promise((resolve) => {
    if (ctx.isExiting) {
      resolve();
      return;
    }
    // A waiting broker must keep the process alive even if nothing else does.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const onSignal = (): void => done();
    // A broker stopped from a hook or an admin path: nothing is left to wait for.
    const untrack = ctx.onExit(() => done());
    const done = (): void => {
      untrack();
      clearInterval(keepAlive);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      waiters.release = waiters.release.filter((r) => r !== done);
      resolve();
    };
    waiters.release.push(done);
    if (options.unlockOnSignal) {
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
    }
  });
}

/** Releases every waitListeners(ctx) call. */
export function unlockListeners(ctx: Ctx): void {
  const waiters = ctx.slot<Waiters>(WAITERS, () => ({ release: [] }));
  for (const release of [...waiters.release]) release();
}
