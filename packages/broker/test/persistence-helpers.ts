// Shared by the persistence tests: brokers on a FileStorage in a temporary directory that can be
// stopped and started again on the same directory (a restart), storages whose commits can be
// held back or made to fail, and connect options of persistent sessions.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConnectPacket, ProtocolVersion, Will } from "@myqtt/codec";
import { Ctx, LogLevel } from "@myqtt/core";
import {
  ctxStorageLog,
  FileStorage,
  MemoryStorage,
  type Storage,
  type StorageOp,
} from "@myqtt/storage";
import type { IClientOptions } from "mqtt";
import { createListener, type ListenerOptions } from "../src/index.js";
import { onCleanup, type TestBroker } from "./helpers.js";

/** A fresh directory, removed after the test (after the brokers using it stopped). */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "myqtt-persist-"));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A running broker with the means to stop it (a restart is stop, then a new broker). */
export interface RunningBroker extends TestBroker {
  /** The storage the broker uses, or null for memory only. */
  storage: Storage | null;
  /** ctx.exit(): closes the connections, then the storage. */
  stop(): Promise<void>;
}

/**
 * A broker in a fresh context on 127.0.0.1 and a free port. `storage` builds its storage once the
 * context exists (so the storage logs go to `logs`); without it the listener options decide.
 */
export async function startWith(
  options: ListenerOptions = {},
  storage?: (ctx: Ctx) => Storage,
  setup?: (ctx: Ctx) => void,
): Promise<RunningBroker> {
  const ctx = new Ctx();
  await ctx.init();
  const logs: string[] = [];
  ctx.setLogHandler((_c, file, _line, level, message) => {
    const tag =
      level === LogLevel.CRITICAL ? "critical" : level === LogLevel.WARNING ? "warning" : "debug";
    logs.push(`${tag} ${file} ${message}`);
  });
  setup?.(ctx);
  const chosen = storage?.(ctx);
  onCleanup(() => ctx.exit());
  const listener = await createListener(
    ctx,
    "127.0.0.1",
    0,
    chosen === undefined ? options : { ...options, storage: chosen },
  );
  if (!listener.isOk()) throw new Error(`broker did not start: ${listener.errorMsg}`);
  return {
    ctx,
    listener,
    port: listener.port,
    url: `mqtt://127.0.0.1:${listener.port}`,
    logs,
    storage: chosen ?? null,
    stop: () => ctx.exit(),
  };
}

/** A FileStorage on `dir` whose problems are logged to `ctx`. */
export function fileStorageOn(ctx: Ctx, dir: string, hashSize = 64): FileStorage {
  return new FileStorage({
    path: dir,
    hashSize,
    durability: "fsync",
    log: ctxStorageLog(ctx),
  });
}

/** A broker on a new FileStorage in `dir`: what a restart on the same directory starts. */
export function fileBroker(dir: string, options: ListenerOptions = {}): Promise<RunningBroker> {
  return startWith(options, (ctx) => fileStorageOn(ctx, dir));
}

/** Opens a FileStorage on `dir` (no broker using it), runs `fn`, closes it. */
export async function withStorage<T>(
  dir: string,
  fn: (storage: FileStorage) => Promise<T>,
): Promise<T> {
  const storage = new FileStorage({ path: dir, hashSize: 64 });
  await storage.open();
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

/** MQTT.js options of a persistent session: clean false (3.1.1) or a Session Expiry (5.0). */
export function persistentOptions(
  protocolVersion: 4 | 5,
  clientId: string,
  expiry = 60,
  extra: IClientOptions = {},
): IClientOptions {
  return protocolVersion === 5
    ? {
        protocolVersion,
        clientId,
        clean: false,
        ...extra,
        properties: { sessionExpiryInterval: expiry, ...extra.properties },
      }
    : { protocolVersion, clientId, clean: false, ...extra };
}

/** Raw CONNECT fields of a persistent session. */
export function persistentFields(
  protocolVersion: ProtocolVersion,
  clientId: string,
  expiry = 60,
  will?: Will,
): Partial<ConnectPacket> {
  const fields: Partial<ConnectPacket> = { protocolVersion, clientId, clean: false };
  if (protocolVersion === 5) fields.properties = { sessionExpiryInterval: expiry };
  if (will !== undefined) fields.will = will;
  return fields;
}

/** Rejects with "timed out waiting for `what`" unless `p` settles within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * An honest memory backend whose commits wait while its gate is closed: what "storage has not
 * confirmed yet" looks like to the broker, for as long as a test wants.
 */
export class GatedStorage extends MemoryStorage {
  private gate: Promise<void> = Promise.resolve();
  private release: () => void = () => {};
  /** Commits started (or waiting) since the storage was made. */
  commits = 0;
  /** Commits waiting at the closed gate. */
  waiting = 0;

  /** From now on, commits wait until open(). */
  closeGate(): void {
    this.gate = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  /** Lets the waiting commits (and the next ones) through. */
  openGate(): void {
    this.release();
    this.gate = Promise.resolve();
  }

  protected override async commit(ops: readonly StorageOp[]): Promise<void> {
    this.commits++;
    this.waiting++;
    try {
      await this.gate;
    } finally {
      this.waiting--;
    }
    await super.commit(ops);
  }
}

/** A memory backend whose commits fail (as a full disk would) once `failing` is set. */
export class FailingStorage extends MemoryStorage {
  failing = false;

  protected override async commit(ops: readonly StorageOp[]): Promise<void> {
    if (this.failing) throw new Error("no space left on device (simulated)");
    await super.commit(ops);
  }
}
