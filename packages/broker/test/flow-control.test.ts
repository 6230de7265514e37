import { describe, expect, it } from "vitest";
import { getBroker } from "../src/index.js";
import { FrozenSubscriber, recorder, serverConn, untilGone } from "./flow-helpers.js";
import { client, sleep, startBroker, until } from "./helpers.js";

const CHUNK = "x".repeat(64 * 1024);

describe("flow control and isolation", () => {
  it("keeps delivering promptly to other subscribers while one subscriber stops reading", async () => {
    const broker = await startBroker();
    await FrozenSubscriber.connect(broker, "frozen", "iso/#");
    const live = await recorder(broker);
    await live.c.subscribeAsync("iso/#", { qos: 0 });
    const live5 = await recorder(broker, { protocolVersion: 5 });
    await live5.c.subscribeAsync("iso/#", { qos: 1 });
    const publisher = await client(broker);
    let sent = 0;
    let slowest = 0;
    // 15 MiB in batches: far more than the kernel and the broker buffer for the frozen one.
    for (let batch = 0; batch < 12; batch++) {
      const started = Date.now();
      for (let i = 0; i < 20; i++) await publisher.publishAsync("iso/a", CHUNK, { qos: 0 });
      sent += 20;
      await until(
        () => live.got.length === sent && live5.got.length === sent,
        2000,
        `batch ${batch} at the live subscribers`,
      );
      slowest = Math.max(slowest, Date.now() - started);
    }
    expect(slowest).toBeLessThan(2000);
    const frozen = serverConn(broker, "frozen");
    // Still connected (writeTimeoutMs defaults to 30 s), with a bounded output buffer.
    expect(frozen).toBeDefined();
    expect(frozen!.channel.blockedSince).toBeGreaterThan(0);
    expect(frozen!.channel.bufferedOutgoing).toBeLessThanOrEqual(
      getBroker(broker.ctx).options.maxOutgoingBytes + CHUNK.length + 64,
    );
    expect(live.c.connected && live5.c.connected).toBe(true);
  });

  it("disconnects a subscriber that leaves written bytes unread for writeTimeoutMs", async () => {
    const broker = await startBroker({ writeTimeoutMs: 300 });
    const frozen = await FrozenSubscriber.connect(broker, "stuck", "wt/#");
    const live = await recorder(broker);
    await live.c.subscribeAsync("wt/#", { qos: 0 });
    const publisher = await client(broker);
    const conn = serverConn(broker, "stuck")!;
    let sent = 0;
    while (conn.channel.blockedSince === 0 && sent < 400) {
      await publisher.publishAsync("wt/a", CHUNK, { qos: 0 });
      sent++;
    }
    const blockedAt = conn.channel.blockedSince;
    expect(blockedAt).toBeGreaterThan(0);
    await untilGone(broker, "stuck", 2000);
    const goneAt = Date.now();
    expect(goneAt - blockedAt).toBeGreaterThanOrEqual(300);
    // Once it reads again, the client finds its connection closed.
    frozen.thaw();
    await frozen.closed;
    expect(broker.logs.some((l) => l.includes("stuck stopped reading"))).toBe(true);
    // The others never noticed.
    await until(() => live.got.length === sent, 3000);
    await publisher.publishAsync("wt/a", "after", { qos: 0 });
    await until(() => live.got.length === sent + 1);
    expect(live.c.connected).toBe(true);
  });

  it("drops QoS 0 messages to a backed-up client beyond maxOutgoingBytes instead of buffering them", async () => {
    const maxOutgoingBytes = 64 * 1024;
    const broker = await startBroker({ maxOutgoingBytes });
    const frozen = await FrozenSubscriber.connect(broker, "backlog", "mo/#");
    const publisher = await client(broker);
    const dropsBefore = getBroker(broker.ctx).stats.messagesDropped;
    const conn = serverConn(broker, "backlog")!;
    let peak = 0;
    const count = 160;
    for (let i = 0; i < count; i++) {
      await publisher.publishAsync("mo/a", CHUNK, { qos: 0 });
      peak = Math.max(peak, conn.channel.bufferedOutgoing);
    }
    await sleep(50);
    peak = Math.max(peak, conn.channel.bufferedOutgoing);
    // 10 MiB published; the frozen client's kernel buffers hold a few MiB, the broker at most
    // maxOutgoingBytes and one more message.
    expect(peak).toBeLessThanOrEqual(maxOutgoingBytes + CHUNK.length + 64);
    const dropped = getBroker(broker.ctx).stats.messagesDropped - dropsBefore;
    expect(dropped).toBeGreaterThan(0);
    expect(serverConn(broker, "backlog")).toBe(conn);
    // Reading again, the client gets whole messages, the ones that were not dropped.
    frozen.thaw();
    await until(() => conn.channel.bufferedOutgoing === 0, 3000, "the backlog to drain");
    await publisher.publishAsync("mo/a", "last", { qos: 0 });
    await until(() => frozen.thawed.at(-1)?.payload.length === 4, 3000, "the last message");
    expect(frozen.thawed.length).toBe(count - dropped + 1);
    expect(frozen.thawed.slice(0, -1).every((p) => p.payload.length === CHUNK.length)).toBe(true);
  });

  it("bounds QoS 1 deliveries to a frozen client by the in-flight window and the queue", async () => {
    const broker = await startBroker({ maxInflight: 4, maxQueuedMessages: 10 });
    await FrozenSubscriber.connect(broker, "q1-frozen", "fq/#", 1);
    const live = await recorder(broker);
    await live.c.subscribeAsync("fq/#", { qos: 1 });
    const publisher = await client(broker);
    for (let i = 0; i < 30; i++) await publisher.publishAsync("fq/a", `m${i}`, { qos: 1 });
    await until(() => live.got.length === 30);
    const session = getBroker(broker.ctx).sessions.get("q1-frozen")!;
    expect(session.inflightCount).toBe(4);
    expect(session.queueLength).toBe(10);
  });
});
