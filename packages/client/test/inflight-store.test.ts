// The in-flight store: what the client writes to it and when, stores that answer with promises,
// and a new process (a new client, same client id, same store) sending what the last one left.
import { type Packet, PacketType, type PublishPacket, type QoS } from "@myqtt/codec";
import { PublishCode } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import {
  connect,
  type InflightEntry,
  type InflightStore,
  MemoryInflightStore,
} from "../src/index.js";
import { client, onCleanup, sleep } from "./helpers.js";
import {
  FAST,
  nextContent,
  observedBroker,
  rawServer,
  settle,
  until,
} from "./resilience-helpers.js";

/** A store that logs every call (and, when `delayMs` is set, answers with late promises). */
class RecordingStore implements InflightStore {
  readonly inner = new MemoryInflightStore();
  constructor(
    readonly log: string[],
    private readonly delayMs = 0,
  ) {}

  private later(what: string, fn: () => void): void | Promise<void> {
    if (this.delayMs === 0) {
      fn();
      return;
    }
    return sleep(this.delayMs).then(() => {
      fn();
      this.log.push(`${what} done`);
    });
  }

  load(clientId: string): InflightEntry[] | Promise<InflightEntry[]> {
    this.log.push(`load ${clientId}`);
    if (this.delayMs === 0) return this.inner.load(clientId);
    return sleep(this.delayMs).then(() => {
      this.log.push(`load ${clientId} done`);
      return this.inner.load(clientId);
    });
  }

  put(clientId: string, entry: InflightEntry): void | Promise<void> {
    const what = `put ${entry.packetId} ${entry.state}`;
    this.log.push(what);
    return this.later(what, () => this.inner.put(clientId, entry));
  }

  delete(clientId: string, packetId: number): void | Promise<void> {
    const what = `delete ${packetId}`;
    this.log.push(what);
    return this.later(what, () => this.inner.delete(clientId, packetId));
  }

  clear(clientId: string): void | Promise<void> {
    this.log.push("clear");
    return this.later("clear", () => this.inner.clear(clientId));
  }
}

/** A raw server that completes every QoS flow and logs what it receives into `log`. */
function loggingServer(log: string[], options: { ack?: boolean } = {}) {
  const name = (p: Packet): string =>
    p.type === PacketType.PUBLISH
      ? `server PUBLISH ${p.packetId ?? "-"}${p.dup ? " dup" : ""}`
      : p.type === PacketType.PUBREL
        ? `server PUBREL ${p.packetId}`
        : "";
  return rawServer({
    onPacket: (conn, p) => {
      const line = name(p);
      if (line !== "") log.push(line);
      if (options.ack === false) return;
      if (p.type === PacketType.PUBLISH && p.qos === 1)
        conn.send({ type: PacketType.PUBACK, packetId: p.packetId! });
      if (p.type === PacketType.PUBLISH && p.qos === 2)
        conn.send({ type: PacketType.PUBREC, packetId: p.packetId! });
      if (p.type === PacketType.PUBREL)
        conn.send({ type: PacketType.PUBCOMP, packetId: p.packetId });
    },
  });
}

function publishEntry(packetId: number, topic: string, payload: string, qos: QoS): InflightEntry {
  return {
    packetId,
    state: "publish",
    packet: {
      type: PacketType.PUBLISH,
      topic,
      payload: Buffer.from(payload),
      qos,
      retain: false,
      dup: false,
      packetId,
    },
  };
}

describe("the in-flight store", () => {
  it("QoS 1: put before the PUBLISH goes out, delete once PUBACK came", async () => {
    const log: string[] = [];
    const store = new RecordingStore(log);
    const server = await loggingServer(log);
    const c = await connect(server.url, {
      clientId: "st-1",
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    const r = await c.publish("st/1", "one", { qos: 1 });
    log.push(`resolved ${r.packetId}`);
    expect(log).toEqual([
      "load st-1",
      `put ${r.packetId} publish`,
      `server PUBLISH ${r.packetId}`,
      `delete ${r.packetId}`,
      `resolved ${r.packetId}`,
    ]);
    expect(store.inner.load("st-1")).toEqual([]);
  });

  it("QoS 2: put, PUBLISH, put as pubrel (same place), PUBREL, delete after PUBCOMP", async () => {
    const log: string[] = [];
    const store = new RecordingStore(log);
    const entries: InflightEntry[] = [];
    const put = store.put.bind(store);
    store.put = (id, entry) => {
      entries.push(structuredClone(entry));
      return put(id, entry);
    };
    const server = await loggingServer(log);
    const c = await connect(server.url, {
      clientId: "st-2",
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    const r = await c.publish("st/2", "two", { qos: 2 });
    const id = r.packetId!;
    expect(log).toEqual([
      "load st-2",
      `put ${id} publish`,
      `server PUBLISH ${id}`,
      `put ${id} pubrel`,
      `server PUBREL ${id}`,
      `delete ${id}`,
    ]);
    // Both puts carry the whole message, with its packet id.
    for (const e of entries) {
      expect(e.packetId).toBe(id);
      expect(e.packet).toMatchObject({ topic: "st/2", qos: 2, packetId: id });
      expect(Buffer.from(e.packet.payload).toString()).toBe("two");
    }
    expect(store.inner.load("st-2")).toEqual([]);
  });

  it("keeps entries until acknowledged, across a lost connection, in publish order", async () => {
    const log: string[] = [];
    const store = new RecordingStore(log);
    const server = await loggingServer(log, { ack: false });
    const c = await connect(server.url, {
      clientId: "st-3",
      clean: false,
      reconnect: FAST,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    const results = [1, 2, 3].map((i) => settle(c.publish(`st/${i}`, `m${i}`, { qos: 1 })));
    await until(() => server.received(PacketType.PUBLISH).length === 3, 2000, "3 PUBLISH");
    expect(store.inner.load("st-3").map((e) => e.packet.topic)).toEqual(["st/1", "st/2", "st/3"]);
    server.conns[0]!.destroy();
    await until(() => server.received(PacketType.PUBLISH).length === 6, 3000, "3 resent");
    // Nothing deleted meanwhile.
    expect(log.filter((l) => l.startsWith("delete"))).toEqual([]);
    expect(store.inner.load("st-3").length).toBe(3);
    for (const p of server.received(PacketType.PUBLISH).slice(3))
      server.conns[1]!.send({ type: PacketType.PUBACK, packetId: p.packetId! });
    expect((await Promise.all(results)).every((r) => r.ok)).toBe(true);
    expect(store.inner.load("st-3")).toEqual([]);
  });
});

describe("a store answering with promises", () => {
  it("an async load is awaited before connecting, and its entries are resent", async () => {
    const log: string[] = [];
    const store = new RecordingStore(log, 60);
    store.inner.put("st-async-load", publishEntry(5, "st/loaded", "from disk", 1));
    const server = await loggingServer(log);
    const c = await connect(server.url, {
      clientId: "st-async-load",
      clean: false,
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    await until(() => log.includes("delete 5 done"), 2000, "the entry completed");
    expect(log.slice(0, 3)).toEqual([
      "load st-async-load",
      "load st-async-load done",
      "server PUBLISH 5 dup",
    ]);
    expect(server.conns[0]!.connect).not.toBeNull();
  });

  it("an async put is finished before the PUBLISH goes out", async () => {
    const log: string[] = [];
    const store = new RecordingStore(log, 80);
    const server = await loggingServer(log);
    const c = await connect(server.url, {
      clientId: "st-async-1",
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    const r = await c.publish("st/a", "durable first", { qos: 1 });
    const id = r.packetId!;
    await until(() => log.includes(`put ${id} publish done`), 2000, "the put to finish");
    const stored = log.indexOf(`put ${id} publish done`);
    const sent = log.indexOf(`server PUBLISH ${id}`);
    expect(sent).toBeGreaterThanOrEqual(0);
    expect(stored).toBeLessThan(sent);
  });

  it("an async put of the PUBREL state is finished before PUBREL goes out", async () => {
    const log: string[] = [];
    const store = new RecordingStore(log, 80);
    const server = await loggingServer(log);
    const c = await connect(server.url, {
      clientId: "st-async-2",
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    const r = await c.publish("st/b", "durable first", { qos: 2 });
    const id = r.packetId!;
    await until(() => log.includes(`put ${id} pubrel done`), 2000, "the put to finish");
    const stored = log.indexOf(`put ${id} pubrel done`);
    const sent = log.indexOf(`server PUBREL ${id}`);
    expect(sent).toBeGreaterThanOrEqual(0);
    expect(stored).toBeLessThan(sent);
  });
  it("a connection lost while the store is still writing: the message goes out once, after it is stored", async () => {
    const log: string[] = [];
    const store = new RecordingStore(log, 150);
    const server = await loggingServer(log);
    const c = await connect(server.url, {
      clientId: "st-async-3",
      reconnect: FAST,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    c.on("error", () => {});
    const result = c.publish("st/c", "slow store", { qos: 1 });
    await sleep(10);
    server.conns[0]!.destroy(); // before the put finished
    await until(() => c.connected && server.conns.length === 2, 3000, "reconnect");
    const r = await result;
    await sleep(200);
    const id = r.packetId!;
    const sends = log.filter((l) => l.startsWith(`server PUBLISH ${id}`));
    expect(sends.length).toBe(1);
    expect(log.indexOf(`put ${id} publish done`)).toBeLessThan(log.indexOf(sends[0]!));
  });
});

describe("a restarted process (new client, same client id, same store)", () => {
  it("sends what the previous run left unacknowledged, and the subscriber receives it", async () => {
    // Phase one: the broker swallows this client's publishes (no acknowledgement), then the
    // process "dies". Phase two: a new client with the same store takes over.
    let swallow = true;
    const b = await observedBroker();
    b.server.ctx.setOnPublish((_ctx, conn) =>
      swallow && conn.clientId === "proc-1" ? PublishCode.DISCARD : PublishCode.OK,
    );
    const sub = await client(b.server, { clientId: "proc-sub" });
    const subscription = await sub.subscribe("proc/#", { qos: 2 });
    const store = new MemoryInflightStore();

    const first = await client(b.server, {
      clientId: "proc-1",
      clean: false,
      inflightStore: store,
    });
    const lost = [
      settle(first.publish("proc/a", "alpha", { qos: 1 })),
      settle(first.publish("proc/b", "bravo", { qos: 2 })),
      settle(first.publish("proc/c", "charlie", { qos: 1 })),
    ];
    await until(() => store.load("proc-1").length === 3, 2000, "3 stored");
    await sleep(50);
    first.destroy(); // the crash
    for (const r of await Promise.all(lost)) expect(r.ok).toBe(false);
    expect(store.load("proc-1").map((e) => e.packet.topic)).toEqual(["proc/a", "proc/b", "proc/c"]);

    swallow = false;
    const second = await client(b.server, {
      clientId: "proc-1",
      clean: false,
      inflightStore: store,
    });
    expect([
      await nextContent(subscription),
      await nextContent(subscription),
      await nextContent(subscription),
    ]).toEqual(["alpha", "bravo", "charlie"]);
    await until(() => second.pendingPublishes === 0, 2000, "the resent flows to complete");
    expect(store.load("proc-1")).toEqual([]);
    // New publishes of the new client go through as usual.
    await second.publish("proc/d", "delta", { qos: 1 });
    expect(await nextContent(subscription)).toBe("delta");
  });

  it("resends stored PUBLISH (DUP) and PUBREL in store order; new packet ids avoid the stored ones", async () => {
    const log: string[] = [];
    const store = new MemoryInflightStore();
    store.put("proc-2", publishEntry(1, "p/one", "1", 1));
    store.put("proc-2", { ...publishEntry(2, "p/two", "2", 2), state: "pubrel" });
    store.put("proc-2", publishEntry(3, "p/three", "3", 2));
    store.put("other", publishEntry(4, "p/other", "x", 1));
    let release = false;
    const server = await rawServer({
      onPacket: (conn, p) => {
        if (p.type === PacketType.PUBLISH) log.push(`PUBLISH ${p.packetId} ${p.topic} ${p.dup}`);
        if (p.type === PacketType.PUBREL) log.push(`PUBREL ${p.packetId}`);
        if (!release) return;
        if (p.type === PacketType.PUBLISH && p.qos === 1)
          conn.send({ type: PacketType.PUBACK, packetId: p.packetId! });
        if (p.type === PacketType.PUBLISH && p.qos === 2)
          conn.send({ type: PacketType.PUBREC, packetId: p.packetId! });
        if (p.type === PacketType.PUBREL)
          conn.send({ type: PacketType.PUBCOMP, packetId: p.packetId });
      },
    });
    const c = await connect(server.url, {
      clientId: "proc-2",
      clean: false,
      reconnect: false,
      inflightStore: store,
    });
    onCleanup(() => c.destroy());
    await until(() => log.length === 3, 2000, "the stored flows");
    expect(log).toEqual(["PUBLISH 1 p/one true", "PUBREL 2", "PUBLISH 3 p/three true"]);
    expect(c.pendingPublishes).toBe(3);
    // A new publish while those are pending gets a fresh packet id.
    release = true;
    const fresh = c.publish("p/new", "n", { qos: 1 });
    await until(() => log.length === 4, 2000, "the new PUBLISH");
    const freshId = Number(log[3]!.split(" ")[1]);
    expect([1, 2, 3]).not.toContain(freshId);
    expect(log[3]).toBe(`PUBLISH ${freshId} p/new false`);
    expect((await fresh).packetId).toBe(freshId);
    // Answer the stored ones now: each completes and leaves the store.
    for (const p of server.conns[0]!.packets.slice(0, 4) as Packet[]) {
      if (p.type === PacketType.PUBLISH && p.qos === 1)
        server.conns[0]!.send({ type: PacketType.PUBACK, packetId: p.packetId! });
      if (p.type === PacketType.PUBLISH && p.qos === 2)
        server.conns[0]!.send({ type: PacketType.PUBREC, packetId: p.packetId! });
      if (p.type === PacketType.PUBREL)
        server.conns[0]!.send({ type: PacketType.PUBCOMP, packetId: p.packetId });
    }
    await until(() => c.pendingPublishes === 0, 2000, "every stored flow completed");
    expect(store.load("proc-2")).toEqual([]);
    // Another client id's entries are not touched.
    expect(store.load("other").map((e) => e.packetId)).toEqual([4]);
    const sent = server.received(PacketType.PUBLISH) as PublishPacket[];
    expect(sent.some((p) => p.topic === "p/other")).toBe(false);
  });
});
