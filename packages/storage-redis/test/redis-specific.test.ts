// What the conformance suite cannot see: the key layout other nodes rely on, binary values, a
// lost server, and who owns the connection.
import { randomBytes } from "node:crypto";
import type { StorageOp, StoredDelivery, StoredMessage } from "@myqtt/storage";
import { StorageError } from "@myqtt/storage";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type RunningRedis,
  redisUnavailable,
  startRedis,
} from "../../../tooling/services/redis.mjs";
import { RedisStorage } from "../src/index.js";

const unavailable = redisUnavailable();

function b64(id: string): string {
  return Buffer.from(id, "utf8").toString("base64url");
}

function message(
  topic: string,
  payload: Uint8Array,
  extra: Partial<StoredMessage> = {},
): StoredMessage {
  return { topic, payload, qos: 1, retain: false, expiresAt: 0, publisher: "pub", ...extra };
}

function delivery(seq: number, msg: StoredMessage): StoredDelivery {
  return {
    seq,
    message: msg,
    qos: 1,
    retain: false,
    subscriptionIds: [3],
    state: "queued",
    packetId: 0,
  };
}

/** A connection the backend ended stays down: no reconnection attempt within half a second. */
async function expectNoReconnection(redis: Redis): Promise<void> {
  let attempts = 0;
  const count = (): void => {
    attempts++;
  };
  redis.on("connecting", count);
  redis.on("reconnecting", count);
  await new Promise((r) => setTimeout(r, 500));
  redis.off("connecting", count);
  redis.off("reconnecting", count);
  expect(attempts).toBe(0);
  expect(redis.status).not.toBe("ready");
}

if (unavailable !== null) {
  describe.skip(`RedisStorage against redis-server (skipped: ${unavailable})`, () => {
    it("needs redis-server", () => {});
  });
} else {
  describe("RedisStorage against redis-server", () => {
    let server: RunningRedis;
    let admin: Redis;

    beforeAll(async () => {
      server = await startRedis();
      admin = new Redis(server.url);
    });

    afterAll(async () => {
      await admin?.quit();
      await server?.stop();
    });

    async function fresh(): Promise<{ storage: RedisStorage; prefix: string }> {
      const prefix = `test:${randomBytes(6).toString("hex")}:`;
      const storage = new RedisStorage({ redis: server.url, prefix });
      await storage.open();
      return { storage, prefix };
    }

    async function keysUnder(pattern: string): Promise<string[]> {
      return (await admin.keys(pattern)).sort();
    }

    it("keeps the documented key layout, and ids that look like paths or tags do not collide", async () => {
      const { storage, prefix } = await fresh();
      const tricky = "../x:{y}";
      const plain = "../x";
      const ops: StorageOp[] = [];
      for (const id of [tricky, plain]) {
        ops.push(
          { op: "session", clientId: id, info: { expiryInterval: 60, disconnectedAt: 0 } },
          {
            op: "sub",
            clientId: id,
            sub: {
              filter: `f/${id}`,
              qos: 1,
              noLocal: false,
              retainAsPublished: false,
              retainHandling: 0,
            },
          },
          { op: "delivery", clientId: id, delivery: delivery(7, message("t", Buffer.from(id))) },
          { op: "qos2", clientId: id, packetId: 9 },
          {
            op: "will",
            clientId: id,
            will: { message: message("w", Buffer.from(id)), at: 0, delay: 5 },
          },
        );
      }
      ops.push({ op: "retain", message: message("r/1", Buffer.from("kept"), { retain: true }) });
      await storage.write(ops);

      const expected = [`${prefix}clients`, `${prefix}retained`];
      for (const id of [tricky, plain]) {
        for (const part of ["session", "subs", "msgs", "qos2", "will"]) {
          expected.push(`${prefix}c:{${b64(id)}}:${part}`);
        }
      }
      expect(await keysUnder("*")).toEqual(expected.sort());
      expect((await admin.smembers(`${prefix}clients`)).sort()).toEqual([plain, tricky].sort());
      expect(await admin.type(`${prefix}c:{${b64(tricky)}}:subs`)).toBe("hash");
      expect(await admin.type(`${prefix}c:{${b64(tricky)}}:msgs`)).toBe("hash");
      expect(await admin.type(`${prefix}c:{${b64(tricky)}}:qos2`)).toBe("set");
      expect(await admin.hkeys(`${prefix}c:{${b64(tricky)}}:msgs`)).toEqual(["7"]);
      expect(JSON.parse((await admin.get(`${prefix}c:{${b64(tricky)}}:session`)) ?? "")).toEqual({
        expiryInterval: 60,
        disconnectedAt: 0,
      });

      const a = await storage.readClient(tricky);
      const b = await storage.readClient(plain);
      expect(a?.subscriptions.map((s) => s.filter)).toEqual([`f/${tricky}`]);
      expect(b?.subscriptions.map((s) => s.filter)).toEqual([`f/${plain}`]);
      expect(Buffer.from(a?.deliveries[0]?.message.payload ?? []).toString()).toBe(tricky);

      // Dropping one leaves the other whole.
      await storage.write({ op: "drop", clientId: tricky });
      expect(await storage.readClient(tricky)).toBeNull();
      expect(await storage.readClient(plain)).toEqual(b);
      expect(await admin.smembers(`${prefix}clients`)).toEqual([plain]);
      expect(await keysUnder(`${prefix}c:{${b64(tricky)}}:*`)).toEqual([]);
      await storage.close();
      await admin.del(...(await keysUnder(`${prefix}*`)));
    });

    it("lists a client only while it has data", async () => {
      const { storage, prefix } = await fresh();
      await storage.write([
        { op: "qos2", clientId: "c", packetId: 1 },
        {
          op: "will",
          clientId: "c",
          will: { message: message("w", new Uint8Array()), at: 0, delay: 0 },
        },
      ]);
      await storage.write({ op: "qos2done", clientId: "c", packetId: 1 });
      expect(await admin.smembers(`${prefix}clients`)).toEqual(["c"]);
      await storage.write({ op: "unwill", clientId: "c" });
      expect(await admin.exists(`${prefix}clients`)).toBe(0);
      expect((await storage.readAll()).clients).toEqual([]);
      // Removed and added again in one group: still listed.
      await storage.write([
        { op: "qos2", clientId: "c", packetId: 1 },
        { op: "qos2done", clientId: "c", packetId: 1 },
        { op: "qos2", clientId: "c", packetId: 2 },
      ]);
      expect(await admin.smembers(`${prefix}clients`)).toEqual(["c"]);
      // A listed id with no data left (removed by hand) is not reported.
      await admin.del(`${prefix}c:{${b64("c")}}:qos2`);
      expect((await storage.readAll()).clients).toEqual([]);
      await storage.close();
      await admin.del(`${prefix}clients`);
    });

    it("round-trips payloads and correlation data byte for byte", async () => {
      const { storage, prefix } = await fresh();
      const every = new Uint8Array(256).map((_, i) => i);
      const big = randomBytes(1 << 20);
      const props = {
        correlationData: new Uint8Array([0, 255, 0x80]),
        userProperties: [["k", "v"]] as [string, string][],
        contentType: "x/y",
      };
      await storage.write([
        {
          op: "delivery",
          clientId: "bin",
          delivery: delivery(1, message("a", every, { properties: props })),
        },
        {
          op: "delivery",
          clientId: "bin",
          delivery: delivery(2, message("b", new Uint8Array(big))),
        },
        { op: "retain", message: message("r/bin", every, { retain: true, properties: props }) },
      ]);
      const client = await storage.readClient("bin");
      expect(client?.deliveries.map((d) => d.seq)).toEqual([1, 2]);
      expect(client?.deliveries[0]?.message.payload).toEqual(every);
      expect(client?.deliveries[0]?.message.properties).toEqual(props);
      expect(Buffer.from(client?.deliveries[1]?.message.payload ?? []).equals(big)).toBe(true);
      const [retained] = await storage.readRetained("r/+");
      expect(retained?.payload).toEqual(every);
      expect(retained?.properties).toEqual(props);
      await storage.close();
      await admin.del(...(await keysUnder(`${prefix}*`)));
    });

    it("finds retained topics holding glob characters, and reads many clients", async () => {
      const { storage, prefix } = await fresh();
      const topics = ["a*b/[x]/c?", "a*b/y", "a*c/z", "a\\b/q", "$SYS/x", "sport"];
      await storage.write(
        topics.map((topic) => ({
          op: "retain" as const,
          message: message(topic, Buffer.from(topic), { retain: true }),
        })),
      );
      const topicsOf = async (f: string) =>
        (await storage.readRetained(f)).map((m) => m.topic).sort();
      expect(await topicsOf("a*b/#")).toEqual(["a*b/[x]/c?", "a*b/y"]);
      expect(await topicsOf("a\\b/+")).toEqual(["a\\b/q"]);
      expect(await topicsOf("+/+")).toEqual(["a*b/y", "a*c/z", "a\\b/q"]);
      expect(await topicsOf("#")).toEqual(topics.filter((t) => !t.startsWith("$")).sort());
      expect(await topicsOf("sport/#")).toEqual(["sport"]);
      expect(await topicsOf("a*b/[x]/c?")).toEqual(["a*b/[x]/c?"]);

      const ids = Array.from({ length: 450 }, (_, i) => `client-${i}`);
      await storage.write(ids.map((clientId) => ({ op: "qos2" as const, clientId, packetId: 1 })));
      const all = await storage.readAll();
      expect(all.clients.map((c) => c.clientId).sort()).toEqual([...ids].sort());
      expect(all.retained).toHaveLength(topics.length);
      await storage.close();
      await admin.del(...(await keysUnder(`${prefix}*`)));
    });

    it("refuses a client id that has no UTF-8 form, and applies nothing of its group", async () => {
      const { storage, prefix } = await fresh();
      const lone = "a\uD800b";
      await expect(
        storage.write([
          { op: "qos2", clientId: "ok", packetId: 1 },
          { op: "qos2", clientId: lone, packetId: 1 },
        ]),
      ).rejects.toMatchObject({ code: "INVALID_CLIENT_ID" });
      expect(await storage.readClient(lone)).toBeNull();
      expect(await keysUnder(`${prefix}*`)).toEqual([]);
      await storage.close();
    });

    it("reports a damaged value and reads the rest", async () => {
      const prefix = `test:${randomBytes(6).toString("hex")}:`;
      const logged: string[] = [];
      const storage = new RedisStorage({
        redis: server.url,
        prefix,
        log: (level, text) => logged.push(`${level} ${text}`),
      });
      await storage.open();
      await storage.write([
        { op: "delivery", clientId: "d", delivery: delivery(1, message("ok", Buffer.from("x"))) },
        { op: "retain", message: message("r/ok", Buffer.from("x"), { retain: true }) },
      ]);
      await admin.hset(`${prefix}c:{${b64("d")}}:msgs`, "2", "not an encoded delivery");
      await admin.hset(`${prefix}retained`, "r/bad", Buffer.from([1, 0, 0, 0, 9, 123]));
      expect((await storage.readClient("d"))?.deliveries.map((x) => x.seq)).toEqual([1]);
      expect((await storage.readRetained("r/+")).map((m) => m.topic)).toEqual(["r/ok"]);
      expect(logged.filter((l) => l.includes("damaged"))).toHaveLength(2);
      await storage.close();
      await admin.del(...(await keysUnder(`${prefix}*`)));
    });

    it("shares its data with another instance on the same prefix (another broker node)", async () => {
      const { storage: one, prefix } = await fresh();
      const two = new RedisStorage({ redis: server.url, prefix });
      await two.open();
      await one.write({
        op: "sub",
        clientId: "n",
        sub: { filter: "t", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      });
      expect((await two.readClient("n"))?.subscriptions.map((x) => x.filter)).toEqual(["t"]);
      await two.write({ op: "unsub", clientId: "n", filter: "t" });
      expect((await one.readAll()).clients).toEqual([]);
      await one.close();
      await two.close();
      expect(await keysUnder(`${prefix}*`)).toEqual([]);
    });

    it("leaves a given ioredis instance open, and ends its own", async () => {
      const given = new Redis(server.url);
      const storage = new RedisStorage({ redis: given, prefix: "test:given:" });
      await storage.open();
      await storage.write({ op: "qos2", clientId: "g", packetId: 1 });
      await storage.close();
      expect(given.status).toBe("ready");
      expect(await given.ping()).toBe("PONG");
      await given.del("test:given:clients", `test:given:c:{${b64("g")}}:qos2`);
      await given.quit();

      const own = new RedisStorage({
        redis: { host: "127.0.0.1", port: server.port },
        prefix: "test:own:",
      });
      await own.open();
      await own.close();
      expect(own.redis.status).toBe("end");
    });

    it("rejects writes with StorageError IO once the server is gone, and the process lives on", async () => {
      const lost = await startRedis();
      const logged: string[] = [];
      const storage = new RedisStorage({
        redis: lost.url,
        prefix: "test:lost:",
        log: (level, text) => logged.push(`${level} ${text}`),
      });
      await storage.open();
      await storage.write({ op: "qos2", clientId: "l", packetId: 1 });
      await lost.stop();
      const failure = await storage.write({ op: "qos2", clientId: "l", packetId: 2 }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(StorageError);
      expect((failure as StorageError).code).toBe("IO");
      await expect(storage.readClient("l")).rejects.toMatchObject({ code: "IO" });
      expect(logged.some((line) => line.startsWith("warning redis storage:"))).toBe(true);
      await storage.close();
      await expectNoReconnection(storage.redis);
    });

    it("counts a write in pendingBytes until Redis answered it, and one that failed", async () => {
      const { storage } = await fresh();
      const payload = randomBytes(5000);
      const ops: StorageOp[] = [1, 2, 3].map((seq) => ({
        op: "delivery",
        clientId: "pending",
        delivery: delivery(seq, message(`p/${seq}`, payload)),
      }));
      // The server holds every write command for 400 ms: a slow storage, for real.
      await admin.call("CLIENT", "PAUSE", "400", "WRITE");
      const started = Date.now();
      const written = storage.write(ops);
      expect(storage.pendingBytes).toBeGreaterThanOrEqual(3 * 5000);
      await storage.whenBelow(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      await written;
      expect(storage.pendingBytes).toBe(0);
      expect((await storage.readClient("pending"))?.deliveries).toHaveLength(3);
      await storage.close();

      // A write that fails (the server is gone) is released too.
      const lost = await startRedis();
      const gone = new RedisStorage({ redis: lost.url, prefix: "test:pending:" });
      await gone.open();
      await lost.stop();
      const failed = gone.write(ops);
      expect(gone.pendingBytes).toBeGreaterThanOrEqual(3 * 5000);
      await expect(failed).rejects.toMatchObject({ code: "IO" });
      expect(gone.pendingBytes).toBe(0);
      await gone.whenBelow(1);
      await gone.close();
    });

    it("refuses to open when no server answers", async () => {
      const dead = await startRedis();
      await dead.stop();
      const storage = new RedisStorage({ redis: dead.url, prefix: "test:dead:" });
      await expect(storage.open()).rejects.toMatchObject({ code: "IO" });
      await expectNoReconnection(storage.redis);
    });
  });
}
