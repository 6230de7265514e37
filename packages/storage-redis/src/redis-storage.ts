import {
  Storage,
  StorageError,
  type StorageLog,
  type StorageOp,
  type StoredClient,
  type StoredMessage,
  type StoredState,
} from "@myqtt/storage";
import type { Redis, RedisOptions } from "ioredis";
import { type Connection, connect, end, ready } from "./connection.js";
import { isWellFormed, KeyLayout } from "./keys.js";
import { queueOps } from "./ops.js";
import {
  clientFrom,
  listClients,
  queueClientRead,
  retainedMatching,
  scanRetained,
} from "./read.js";

/** Options of the Redis backend. */
export interface RedisStorageOptions {
  /**
   * The server: an ioredis instance (used as is, and left open by close()), ioredis options, or
   * a `redis://` URL (a connection made and ended by this backend). Default: 127.0.0.1:6379.
   */
  redis?: Redis | RedisOptions | string;
  /** Put before every key, so several data sets can share one database. Default "myqtt:". */
  prefix?: string;
  /** Where problems are reported (a lost connection, a damaged value); default: nowhere. */
  log?: StorageLog;
}

/** How many clients one readAll round trip reads. */
const READ_BATCH = 200;

/**
 * The Redis backend. Each group of writes is one MULTI/EXEC, applied in order; its promise
 * resolves once Redis answered EXEC, so a write is as durable as the server's own persistence
 * settings make it (`appendonly yes` with `appendfsync always` for every write on disk).
 * Reads go to the server each time: several broker nodes can share the data (README.md).
 */
export class RedisStorage extends Storage {
  readonly kind = "redis";
  private readonly keys: KeyLayout;
  private readonly connection: Connection;

  constructor(options: RedisStorageOptions = {}) {
    super(options.log === undefined ? {} : { log: options.log });
    this.keys = new KeyLayout(options.prefix ?? "myqtt:");
    this.connection = connect(options.redis, this.log);
  }

  /** The ioredis connection in use. */
  get redis(): Redis {
    return this.connection.redis;
  }

  protected async doOpen(): Promise<void> {
    try {
      await ready(this.redis);
    } catch (error) {
      // Open can't be retried on this instance: stop a connection of ours from reconnecting.
      if (this.connection.owned) this.redis.disconnect(false);
      this.connection.detach();
      throw ioError("could not reach the redis server", error);
    }
  }

  protected async doClose(): Promise<void> {
    if (this.connection.owned) await end(this.redis);
    this.connection.detach();
  }

  protected async commit(ops: readonly StorageOp[]): Promise<void> {
    const tx = this.redis.multi();
    queueOps(tx, this.keys, ops);
    const results = await tx.exec();
    if (results === null) throw ioError("the redis transaction was aborted");
    for (const [error] of results)
      if (error !== null) throw ioError("a redis command failed", error);
  }

  async readAll(): Promise<StoredState> {
    this.checkOpen();
    try {
      const ids = await listClients(this.redis, this.keys);
      const clients: StoredClient[] = [];
      for (let i = 0; i < ids.length; i += READ_BATCH) {
        const chunk = ids.slice(i, i + READ_BATCH);
        const batch = this.redis.pipeline();
        for (const id of chunk) queueClientRead(batch, this.keys, id);
        const replies = (await batch.exec()) ?? [];
        chunk.forEach((id, n) => {
          // A listed id whose keys are all gone (removed outside this backend) is skipped.
          const client = clientFrom(id, replies.slice(n * 5, n * 5 + 5), this.log);
          if (client !== null) clients.push(client);
        });
      }
      const retained = await scanRetained(this.redis, this.keys, "", this.log);
      return { clients, retained };
    } catch (error) {
      throw ioError("redis storage read failed", error);
    }
  }

  async readClient(clientId: string): Promise<StoredClient | null> {
    this.checkOpen();
    // No key can hold an id with a lone surrogate, so nothing is stored for it.
    if (!isWellFormed(clientId)) return null;
    try {
      // One transaction: a consistent view of the client even while other nodes write.
      const tx = this.redis.multi();
      queueClientRead(tx, this.keys, clientId);
      const replies = await tx.exec();
      if (replies === null) throw new Error("the read transaction was aborted");
      return clientFrom(clientId, replies, this.log);
    } catch (error) {
      throw ioError("redis storage read failed", error);
    }
  }

  async readRetained(filter: string): Promise<StoredMessage[]> {
    this.checkOpen();
    try {
      return await retainedMatching(this.redis, this.keys, filter, this.log);
    } catch (error) {
      throw ioError("redis storage read failed", error);
    }
  }

  private checkOpen(): void {
    if (!this.isOpen) throw new StorageError("CLOSED", "the storage is not open");
  }
}

function ioError(message: string, cause?: unknown): StorageError {
  if (cause instanceof StorageError) return cause;
  return new StorageError("IO", message, cause === undefined ? {} : { cause });
}
