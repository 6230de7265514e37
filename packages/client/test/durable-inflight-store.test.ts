// @myqtt/storage's StorageInflightStore as the client's in-flight store: unacknowledged
// publishes survive the end of the process (a new FileStorage on the same directory, a new
// client) and are sent again, then forgotten once acknowledged.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FileStorage, StorageInflightStore } from "@myqtt/storage";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../src/index.js";
import { onCleanup } from "./helpers.js";
import { rawServer, until } from "./resilience-helpers.js";

const PUBLISHER = join(
  dirname(fileURLToPath(import.meta.url)),
  "fixtures",
  "durable-publisher.mjs",
);
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

describe("StorageInflightStore across a crash (SIGKILL)", () => {
  it("a killed client process's unacknowledged QoS 1 and half-done QoS 2 are completed by the next", async () => {
    const path = await mkdtemp(join(tmpdir(), "myqtt-client-crash-"));
    dirs.push(path);
    // The first server never acknowledges the QoS 1 publish and answers the QoS 2 one with
    // PUBREC only: the client is left with one PUBLISH and one PUBREL in flight.
    const firstLog: string[] = [];
    const first = await rawServer({
      onPacket: (conn, p) => {
        if (p.type === 3) {
          firstLog.push(`PUBLISH ${p.packetId} ${p.topic}`);
          if (p.qos === 2) conn.send({ type: 5, packetId: p.packetId! });
        }
        if (p.type === 6) firstLog.push(`PUBREL ${p.packetId}`);
      },
    });
    const child = spawn(process.execPath, [PUBLISHER, String(first.port), path], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    onCleanup(() => {
      child.kill("SIGKILL");
    });
    await until(
      () => firstLog.length === 3 || child.exitCode !== null,
      5000,
      "PUBLISH, PUBLISH, PUBREL",
    );
    expect(stderr).toBe("");
    // PUBREL goes out only once its state is stored: the process dies with both flows open.
    child.kill("SIGKILL");
    await exited;
    const [qos1, qos2] = firstLog.map((l) => l.split(" ")[1]);
    expect(firstLog).toEqual([`PUBLISH ${qos1} d/1`, `PUBLISH ${qos2} d/2`, `PUBREL ${qos2}`]);

    const secondLog: string[] = [];
    const acking = await server(secondLog, true);
    const [storage, store] = await openStore(path);
    onCleanup(() => storage.close());
    const next = await connect(acking.url, {
      clientId: "killed-client",
      clean: false,
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => next.destroy());
    await until(() => secondLog.length === 2, 3000, "the two flows resumed");
    // The QoS 1 message again with DUP; the QoS 2 flow goes on from PUBREL (its message was
    // received once and must not be sent again).
    expect(secondLog).toEqual([`PUBLISH ${qos1} d/1 one dup`, `PUBREL ${qos2}`]);
    let left = -1;
    for (let i = 0; i < 100 && left !== 0; i++) {
      left = await storage.queuedMessages("killed-client");
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
