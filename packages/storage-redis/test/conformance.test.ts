// The storage conformance suite, run against a real redis-server. Each target gets a prefix of
// its own, so targets never see each other's data; cleanup deletes the keys under it.
import { randomBytes } from "node:crypto";
import { describeStorageConformance } from "@myqtt/storage/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, it } from "vitest";
import {
  type RunningRedis,
  redisUnavailable,
  startRedis,
} from "../../../tooling/services/redis.mjs";
import { RedisStorage } from "../src/index.js";

const unavailable = redisUnavailable();

if (unavailable !== null) {
  describe.skip(`RedisStorage conformance (skipped: ${unavailable})`, () => {
    it("needs redis-server", () => {});
  });
} else {
  let server: RunningRedis | undefined;

  beforeAll(async () => {
    server = await startRedis();
  });

  afterAll(async () => {
    await server?.stop();
  });

  describeStorageConformance(
    "RedisStorage",
    async () => {
      if (server === undefined) throw new Error("redis-server did not start");
      const url = server.url;
      const prefix = `test:${randomBytes(6).toString("hex")}:`;
      // Every instance made for this target, closed by cleanup if the suite left it open.
      const made: RedisStorage[] = [];
      const make = async (): Promise<RedisStorage> => {
        const storage = new RedisStorage({ redis: url, prefix });
        made.push(storage);
        await storage.open();
        return storage;
      };
      const storage = await make();
      return {
        storage,
        async reopen() {
          const last = made.at(-1);
          if (last !== undefined) await last.close();
          return make();
        },
        async cleanup() {
          for (const s of made) await s.close();
          await deleteUnder(url, prefix);
        },
      };
    },
    { durable: true },
  );
}

/** Deletes every key under `prefix` (SCAN, bounded). */
async function deleteUnder(url: string, prefix: string): Promise<void> {
  const admin = new Redis(url);
  try {
    let cursor = "0";
    for (let step = 0; step < 100_000; step++) {
      const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) await admin.del(...keys);
      cursor = next;
      if (cursor === "0") return;
    }
  } finally {
    await admin.quit();
  }
}
