// @myqtt/storage's StorageInflightStore as the client's in-flight store: unacknowledged
// publishes survive the end of the process (a new FileStorage on the same directory, a new
// client) and are sent again, then forgotten once acknowledged.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStorage, StorageInflightStore } from "@myqtt/storage";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../src/index.js";
import { onCleanup } from "./helpers.js";
import { rawServer, until } from "./resilience-helpers.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A raw server that logs PUBLISH/PUBREL and acknowledges them only when `ack` is set. */
function server(log: string[], ack: boolean) {
  return rawServer({
    onPacket: (conn, p) => {
      if (p.type === 3) {
        log.push(
          `PUBLISH ${p.packetId} ${p.topic} ${Buffer.from(p.payload)}${p.dup ? " dup" : ""}`,
        );
        if (!ack) return;
        if (p.qos === 1) conn.send({ type: 4, packetId: p.packetId! });
        if (p.qos === 2) conn.send({ type: 5, packetId: p.packetId! });
      }
      if (p.type === 6) {
        log.push(`PUBREL ${p.packetId}`);
        if (ack) conn.send({ type: 7, packetId: p.packetId });
      }
    },
  });
}

async function openStore(path: string): Promise<[FileStorage, StorageInflightStore]> {
  const storage = new FileStorage({ path, hashSize: 16 });
  await storage.open();
  return [storage, new StorageInflightStore(storage)];
}

describe("StorageInflightStore with a FileStorage", () => {
  it("publishes left unacknowledged by one process are resent by the next, then forgotten", async () => {
    const path = await mkdtemp(join(tmpdir(), "myqtt-client-store-"));
    dirs.push(path);
    const firstLog: string[] = [];
    const silent = await server(firstLog, false);
    let [storage, store] = await openStore(path);
    const first = await connect(silent.url, {
      clientId: "durable-client",
      clean: false,
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => first.destroy());
    first.publish("d/1", "one", { qos: 1 }).catch(() => {});
    first.publish("d/2", "two", { qos: 2 }).catch(() => {});
    await until(() => firstLog.length === 2, 2000, "both PUBLISHes sent");
    // The process ends without an acknowledgement: the client is dropped, its storage closed.
    first.destroy();
    await storage.close();

    const secondLog: string[] = [];
    const acking = await server(secondLog, true);
    [storage, store] = await openStore(path);
    onCleanup(() => storage.close());
    expect(await storage.queuedMessages("durable-client")).toBe(2);
    const second = await connect(acking.url, {
      clientId: "durable-client",
      clean: false,
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => second.destroy());
    await until(() => secondLog.some((l) => l.startsWith("PUBREL")), 2000, "the QoS 2 flow");
    const [id1, id2] = firstLog.map((l) => l.split(" ")[1]);
    expect(secondLog.slice(0, 2)).toEqual([
      `PUBLISH ${id1} d/1 one dup`,
      `PUBLISH ${id2} d/2 two dup`,
    ]);
    // Acknowledged: the store forgets both (bounded wait for the last delete to be written).
    let left = -1;
    for (let i = 0; i < 100 && left !== 0; i++) {
      left = await storage.queuedMessages("durable-client");
      if (left !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(left).toBe(0);
  });
});

describe("messages queued with offlinePub (MyQtt's myqtt_conn_offline_pub)", () => {
  it("are published in order on the client's first connect, then leave the store", async () => {
    const path = await mkdtemp(join(tmpdir(), "myqtt-client-offline-"));
    dirs.push(path);
    const [storage, store] = await openStore(path);
    onCleanup(() => storage.close());
    await storage.offlinePub("offline-client", "off/1", "first", 0);
    await storage.offlinePub("offline-client", "off/2", "second", 1);
    await storage.offlinePub("offline-client", "off/3", "third", 2);
    expect(await storage.queuedMessages("offline-client")).toBe(3);
    const log: string[] = [];
    const acking = await server(log, true);
    const c = await connect(acking.url, {
      clientId: "offline-client",
      clean: false,
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    await until(() => log.some((l) => l.startsWith("PUBREL")), 2000, "the three publishes");
    expect(
      log.filter((l) => l.startsWith("PUBLISH")).map((l) => l.split(" ").slice(2).join(" ")),
    ).toEqual(["off/1 first", "off/2 second", "off/3 third"]);
    let left = -1;
    for (let i = 0; i < 100 && left !== 0; i++) {
      left = await storage.queuedMessages("offline-client");
      if (left !== 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(left).toBe(0);
  });
});
