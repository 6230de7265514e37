// Storage backpressure: while more than maxStoragePendingBytes of writes wait to be committed,
// the clients whose packets write are held back (their reading pauses) until the storage is
// back under half of it; everyone else goes on. Against the real FileStorage (fsync) in a
// temporary directory, real sockets on 127.0.0.1.
import { type Socket, connect as tcpConnect } from "node:net";
import { Decoder, encode, type Packet, PacketType } from "@myqtt/codec";
import type { Ctx } from "@myqtt/core";
import {
  ctxStorageLog,
  FileStorage,
  type FileStorageOptions,
  MemoryStorage,
  type StorageOp,
} from "@myqtt/storage";
import { describe, expect, it } from "vitest";
import { DEFAULT_OPTIONS, getBroker } from "../src/index.js";
import { resolveOptions } from "../src/options.js";
import { pub, rawConnected, recorder } from "./flow-helpers.js";
import { onCleanup, sleep, until } from "./helpers.js";
import {
  FailingStorage,
  persistentOptions,
  type RunningBroker,
  startWith,
  tempDir,
  within,
} from "./persistence-helpers.js";

/** The real FileStorage, which notes the most it ever had waiting (pendingBytes only grows in write). */
class MeasuredFileStorage extends FileStorage {
  peak = 0;

  override write(ops: StorageOp | readonly StorageOp[]): Promise<void> {
    const done = super.write(ops);
    if (this.pendingBytes > this.peak) this.peak = this.pendingBytes;
    return done;
  }
}

/** A FileStorage on a disk that stops committing while its gate is closed (a stuck disk). */
class StuckFileStorage extends FileStorage {
  private gate: Promise<void> = Promise.resolve();
  private release: () => void = () => {};

  closeGate(): void {
    this.gate = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  openGate(): void {
    this.release();
  }

  protected override async commit(ops: readonly StorageOp[]): Promise<void> {
    await this.gate;
    await super.commit(ops);
  }
}

function fileOptions(ctx: Ctx, path: string): FileStorageOptions {
  return { path, hashSize: 64, durability: "fsync", log: ctxStorageLog(ctx) };
}

/**
 * A client on a plain socket that notes when each packet arrived and whether the broker was
 * holding writers back at that moment.
 */
class Observer {
  readonly seen: { type: number; at: number; held: boolean; payload?: string }[] = [];
  private readonly socket: Socket;
  private readonly decoder: Decoder;

  private constructor(socket: Socket, held: () => boolean) {
    this.socket = socket;
    this.decoder = new Decoder((p) =>
      this.seen.push({
        type: p.type,
        at: Date.now(),
        held: held(),
        ...(p.type === PacketType.PUBLISH
          ? { payload: Buffer.from(p.payload).toString("utf8") }
          : {}),
      }),
    );
    socket.on("data", (d) => this.decoder.push(d));
    socket.on("error", () => {});
  }

  static async connect(broker: RunningBroker, clientId: string): Promise<Observer> {
    const socket = tcpConnect(broker.port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    onCleanup(() => socket.destroy());
    const b = getBroker(broker.ctx);
    const o = new Observer(socket, () => b.storageBacklogged);
    o.send({ type: PacketType.CONNECT, protocolVersion: 4, clientId, clean: true, keepAlive: 60 });
    await until(() => o.seen.some((p) => p.type === PacketType.CONNACK), 3000, "CONNACK");
    return o;
  }

  send(p: Packet): void {
    this.socket.write(encode(p, { protocolVersion: 4 }));
  }

  count(type: number, held?: boolean): number {
    return this.seen.filter((p) => p.type === type && (held === undefined || p.held === held))
      .length;
  }
}

describe("storage backpressure (FileStorage, fsync)", () => {
  it("holds a publisher to offline sessions within maxStoragePendingBytes; loses nothing acknowledged; others go on", async () => {
    const BOUND = 64 * 1024;
    const SESSIONS = 50;
    const MESSAGES = 2000; // even: QoS 0, odd: QoS 1
    const options = { maxStoragePendingBytes: BOUND, maxQueuedMessages: 10_000 };
    const dir = await tempDir();
    let storage: MeasuredFileStorage | null = null;
    const broker = await startWith(
      options,
      (ctx) => (storage = new MeasuredFileStorage(fileOptions(ctx, dir))),
    );
    const b = getBroker(broker.ctx);

    // Fifty persistent sessions subscribe and go away: every publish is fifty stored deliveries.
    for (let i = 0; i < SESSIONS; i++) {
      const r = await recorder(broker, persistentOptions(4, `offline-${i}`));
      await within(r.c.subscribeAsync("bp/#", { qos: 1 }), 5000, "SUBACK");
      await within(r.c.endAsync(), 5000, "DISCONNECT");
    }

    // A bystander that pings, and receives a live message, every 10 ms (clean sessions: nothing
    // of theirs is stored).
    const bystander = await Observer.connect(broker, "bystander");
    bystander.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: "live/#", qos: 0 }],
    });
    await until(() => bystander.count(PacketType.SUBACK) === 1, 3000, "SUBACK");
    const live = await rawConnected(broker, 4, { clientId: "live", clean: true });
    let tick = 0;
    const ticker = setInterval(() => {
      bystander.send({ type: PacketType.PINGREQ });
      live.raw.send(pub("live/x", `live ${tick++}`, 0));
    }, 10);
    onCleanup(() => clearInterval(ticker));

    // The publisher sends everything at once, as fast as its socket takes it.
    const publisher = await rawConnected(broker, 4, { clientId: "publisher", clean: true });
    const payload = (i: number): string => `m${i} ${"x".repeat(150)}`;
    storage!.peak = 0;
    for (let i = 0; i < MESSAGES; i++) {
      const qos = i % 2 === 0 ? 0 : 1;
      publisher.raw.send(pub(`bp/${i}`, payload(i), qos, qos === 1 ? { packetId: i } : {}));
    }
    const acked = (): number[] =>
      publisher.raw.packets.filter((p) => p.type === PacketType.PUBACK).map((p) => p.packetId);
    await until(() => acked().length === MESSAGES / 2, 60_000, "every PUBACK");
    await until(() => b.stats.messagesReceived >= MESSAGES, 10_000, "every publish handled");
    clearInterval(ticker);
    const publishPeak = storage!.peak;

    // One publish to fifty sessions counts about 50 × 480 bytes: the bound is passed by at most
    // the publish that crossed it.
    expect(publishPeak).toBeGreaterThan(BOUND);
    expect(publishPeak).toBeLessThanOrEqual(BOUND + 32 * 1024);
    expect(b.stats.storageHolds).toBeGreaterThan(0);
    expect(b.stats.storageBacklogs).toBeGreaterThan(0);
    expect(b.stats.messagesDropped).toBe(0);
    expect(broker.logs.some((l) => /warning broker\/storage storage is .* behind/.test(l))).toBe(
      true,
    );
    // The bystander was answered, and got live messages, while the publisher was held back.
    expect(bystander.count(PacketType.PINGRESP, true)).toBeGreaterThan(0);
    expect(bystander.count(PacketType.PUBLISH, true)).toBeGreaterThan(0);
    const pings = bystander.seen.filter((p) => p.type === PacketType.PINGRESP);
    expect(pings.length).toBeGreaterThan(10);

    // A restart on the same directory: what the sessions get back comes from the disk.
    const ackedIds = acked();
    await broker.stop();
    let again: MeasuredFileStorage | null = null;
    const restarted = await startWith(
      options,
      (ctx) => (again = new MeasuredFileStorage(fileOptions(ctx, dir))),
    );
    // All fifty sessions come back at once and take their queues: sending a queued message in
    // flight stores it again, so that is held back too.
    again!.peak = 0;
    const back = await Promise.all(
      Array.from({ length: SESSIONS }, (_, i) =>
        recorder(restarted, persistentOptions(4, `offline-${i}`)),
      ),
    );
    await until(
      () => back.every((r) => r.got.length >= MESSAGES),
      60_000,
      "every queued message delivered",
    );
    const expected = ackedIds.map((id) => payload(id)).sort();
    for (const r of back) {
      const got = new Set(r.got.map((m) => m.payload));
      expect(expected.filter((p) => !got.has(p))).toEqual([]);
      expect(r.got).toHaveLength(MESSAGES);
    }

    expect(again!.peak).toBeLessThanOrEqual(BOUND + 32 * 1024);
  }, 120_000);

  it("does not hold a keep alive against a publisher it holds back, and serves others meanwhile", async () => {
    const dir = await tempDir();
    let storage: StuckFileStorage | null = null;
    const broker = await startWith(
      { maxStoragePendingBytes: 1024 },
      (ctx) => (storage = new StuckFileStorage(fileOptions(ctx, dir))),
    );
    onCleanup(() => storage!.openGate());
    const away = await recorder(broker, persistentOptions(4, "away"));
    await within(away.c.subscribeAsync("k/#", { qos: 1 }), 3000, "SUBACK");
    await within(away.c.endAsync(), 3000, "DISCONNECT");
    const b = getBroker(broker.ctx);

    // Keep alive 1 s: the broker closes a client silent for 1.5 s.
    const publisher = await rawConnected(broker, 4, {
      clientId: "held",
      clean: true,
      keepAlive: 1,
    });
    const bystander = await Observer.connect(broker, "other");
    storage!.closeGate();
    publisher.raw.send(pub("k/a", "x".repeat(2000), 0));
    await until(() => b.storageBacklogged, 3000, "the storage to fall behind");
    // The publisher keeps pinging: the broker, holding it back, does not read them.
    for (let i = 0; i < 10; i++) {
      publisher.raw.send({ type: PacketType.PINGREQ });
      bystander.send({ type: PacketType.PINGREQ });
      await sleep(250);
    }
    expect(publisher.raw.isOpen).toBe(true);
    expect(publisher.raw.packets.filter((p) => p.type === PacketType.PINGRESP)).toHaveLength(0);
    expect(bystander.count(PacketType.PINGRESP, true)).toBeGreaterThanOrEqual(8);

    storage!.openGate();
    await until(
      () => publisher.raw.packets.filter((p) => p.type === PacketType.PINGRESP).length === 10,
      5000,
      "the held PINGREQs answered",
    );
    expect(b.storageBacklogged).toBe(false);
    expect(publisher.raw.isOpen).toBe(true);
    // Keep alive is enforced again once reading resumed: silent, it is closed.
    await within(publisher.raw.closed, 4000, "the keep alive to expire");
  });

  it("a QoS 0 publish whose writes fail is logged, never an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on("unhandledRejection", onUnhandled);
    onCleanup(() => process.off("unhandledRejection", onUnhandled));
    const storage = new FailingStorage();
    const broker = await startWith({}, () => storage);
    for (const id of ["f1", "f2"]) {
      const r = await recorder(broker, persistentOptions(4, id));
      await within(r.c.subscribeAsync("f/#", { qos: 1 }), 3000, "SUBACK");
      await within(r.c.endAsync(), 3000, "DISCONNECT");
    }
    storage.failing = true;
    const publisher = await rawConnected(broker, 4, { clientId: "qos0", clean: true });
    // One publish, two stored deliveries, nobody waiting for their write.
    publisher.raw.send(pub("f/a", "lost with the disk", 0));
    await until(
      () => broker.logs.some((l) => l.startsWith("critical broker/storage storage write failed")),
      3000,
      "the failure to be logged",
    );
    await sleep(50);
    expect(unhandled).toEqual([]);
    // The broker goes on.
    publisher.raw.send({ type: PacketType.PINGREQ });
    expect((await publisher.raw.next())?.type).toBe(PacketType.PINGRESP);
  });
});

describe("maxStoragePendingBytes", () => {
  it("defaults to 64 MiB and is range-checked", () => {
    expect(DEFAULT_OPTIONS.maxStoragePendingBytes).toBe(64 * 1024 * 1024);
    expect(resolveOptions({ maxStoragePendingBytes: 1024 }).maxStoragePendingBytes).toBe(1024);
    for (const bad of [0, 1023, 1.5, -1, "1024"])
      expect(() => resolveOptions({ maxStoragePendingBytes: bad as number })).toThrow(RangeError);
  });

  it("memory storage never holds anyone back", async () => {
    const broker = await startWith({ maxStoragePendingBytes: 1024 }, () => new MemoryStorage());
    const b = getBroker(broker.ctx);
    const r = await recorder(broker, persistentOptions(4, "m"));
    await within(r.c.subscribeAsync("m/#", { qos: 1 }), 3000, "SUBACK");
    await within(r.c.endAsync(), 3000, "DISCONNECT");
    const publisher = await rawConnected(broker, 4, { clientId: "mp", clean: true });
    for (let i = 0; i < 100; i++) publisher.raw.send(pub("m/a", "y".repeat(5000), 0));
    await until(() => b.stats.messagesReceived >= 100, 5000, "every publish");
    expect(b.stats.storageHolds).toBe(0);
    expect(b.storage?.pendingBytes ?? 0).toBe(0);
  });
});
