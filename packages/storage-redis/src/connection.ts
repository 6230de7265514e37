import type { StorageLog } from "@myqtt/storage";
import { Redis, type RedisOptions } from "ioredis";

/**
 * Defaults for a connection this backend makes: a write waiting for a lost server fails after
 * two reconnection attempts (well under a second) instead of ioredis's twenty, so the broker
 * stops acknowledging what it cannot store; reconnection itself goes on in the background.
 */
const DEFAULTS: RedisOptions = {
  maxRetriesPerRequest: 2,
  retryStrategy: (times) => Math.min(times * 100, 2000),
  connectTimeout: 5000,
};

/** An ioredis connection and whether this backend made it (and so must end it). */
export interface Connection {
  readonly redis: Redis;
  readonly owned: boolean;
  /** Stops reporting through the backend's log (the instance may outlive the backend). */
  detach(): void;
}

/** Uses the given instance, or makes one from options or a URL (connected later, by open). */
export function connect(
  given: Redis | RedisOptions | string | undefined,
  log: StorageLog,
): Connection {
  let redis: Redis;
  let owned = true;
  if (given instanceof Redis || isRedisLike(given)) {
    redis = given as Redis;
    owned = false;
  } else if (typeof given === "string") {
    redis = new Redis(given, { ...DEFAULTS, lazyConnect: true });
  } else {
    redis = new Redis({ ...DEFAULTS, ...given, lazyConnect: true });
  }
  // Without a listener ioredis reports each error itself; with this one, a lost server never
  // takes the process down and is logged once per outage, not once per reconnection attempt.
  let last: string | null = null;
  const onError = (error: Error): void => {
    if (error.message === last) return;
    last = error.message;
    log("warning", `redis storage: ${error.message}`);
  };
  const onReady = (): void => {
    if (last !== null) log("warning", "redis storage: connected again");
    last = null;
  };
  redis.on("error", onError);
  redis.on("ready", onReady);
  return {
    redis,
    owned,
    detach() {
      redis.off("error", onError);
      redis.off("ready", onReady);
    },
  };
}

/** An ioredis instance from another copy of the package (where instanceof fails). */
function isRedisLike(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { multi?: unknown }).multi === "function" &&
    typeof (value as { hgetBuffer?: unknown }).hgetBuffer === "function"
  );
}

/** Connects a lazy instance and checks the server answers. */
export async function ready(redis: Redis): Promise<void> {
  if (redis.status === "wait") await redis.connect();
  await redis.ping();
}

/**
 * Ends a connection this backend made: QUIT when connected (and wait for the socket to close),
 * else stop reconnecting. A connection stopped while reconnecting stays "reconnecting" in
 * ioredis's eyes, but has no socket and no timer left.
 */
export async function end(redis: Redis): Promise<void> {
  if (redis.status === "ready") {
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      redis.once("end", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    try {
      await redis.quit();
      await ended;
      return;
    } catch {
      // Lost while quitting: fall through and drop it.
    }
  }
  redis.disconnect(false);
}
