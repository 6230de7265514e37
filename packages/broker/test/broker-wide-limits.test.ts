// The broker-wide bounds on what sessions keep: how many sessions, how long a 3.1.1 session
// outlives its client, how much all subscriptions and all held messages take together.
// Without them, clients that open persistent sessions one after another can run the broker
// out of memory, each within its own per-session limits.
import { type ConnectPacket, encode, PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { configureBroker } from "../src/index.js";
import { makeMessage, messageSize } from "../src/message.js";
import { HOLD_BYTES, MESSAGE_BYTES, MessageMemory } from "../src/message-memory.js";
import {
  Session,
  SUBSCRIPTION_BYTES,
  subscriptionCost,
  WILDCARD_LEVEL_BYTES,
} from "../src/session.js";
import { pub, receivePublishes } from "./flow-helpers.js";
import { client, RawClient, sleep, startBroker, type TestBroker, until } from "./helpers.js";
import {
  brokerOf,
  Control,
  expectClosed,
  expectLog,
  expectServed,
  rawConnected,
} from "./negative-helpers.js";
import { fileBroker, tempDir } from "./persistence-helpers.js";

const BOTH = [4, 5] as const;

/** CONNECT fields of a persistent session (5.0: expiry 60 s). */
function persistent(v: 4 | 5, clientId: string): Partial<ConnectPacket> {
  return v === 5
    ? { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }
    : { clientId, clean: false };
}

/** Connects and returns the CONNACK with the client. */
async function connect(broker: TestBroker, v: 4 | 5, fields: Partial<ConnectPacket>) {
  const raw = await RawClient.connect(broker, v);
  const connack = await raw.connect(fields);
  return { raw, connack };
}

/** Ends the connection with DISCONNECT and waits until the broker saw it go. */
async function leave(broker: TestBroker, raw: RawClient, clientId: string): Promise<void> {
  raw.send({ type: PacketType.DISCONNECT });
  await raw.closed;
  await until(() => !brokerOf(broker).connections.has(clientId), 2000, `${clientId} gone`);
}

async function subscribe(raw: RawClient, packetId: number, filters: string[]): Promise<number[]> {
  raw.send({
    type: PacketType.SUBSCRIBE,
    packetId,
    subscriptions: filters.map((topicFilter) => ({ topicFilter, qos: 1 as const })),
  });
  const ack = await raw.next();
  expect(ack).toMatchObject({ type: PacketType.SUBACK, packetId });
  return (ack as { reasonCodes: number[] }).reasonCodes;
}

describe("maxSessions", () => {
  it.each(BOTH)(
    "refuses a new persistent session beyond it, never a returning client or a clean one (level %i)",
    async (v) => {
      const broker = await startBroker({ maxSessions: 2 });
      const control = await Control.start(broker); // a clean session: the first of the two
      const a = await connect(broker, v, persistent(v, "ms-a"));
      expect(a.connack).toMatchObject({ reasonCode: 0 });

      const c = await connect(broker, v, persistent(v, "ms-c"));
      expect(c.connack).toMatchObject({ type: PacketType.CONNACK, reasonCode: v === 5 ? 0x97 : 3 });
      await expectClosed(c.raw);
      expect(brokerOf(broker).sessions.has("ms-c")).toBe(false);

      // A clean session is bounded by maxConnections, not by this.
      const clean = await rawConnected(broker, v, { clientId: "ms-clean", clean: true });
      await expectServed(clean);

      // A client that has a session comes back to it.
      await leave(broker, a.raw, "ms-a");
      const back = await connect(broker, v, persistent(v, "ms-a"));
      expect(back.connack).toMatchObject({ reasonCode: 0, sessionPresent: true });

      // Once a session ends, there is room again.
      await leave(broker, clean, "ms-clean");
      await leave(broker, back.raw, "ms-a");
      const ended = await connect(broker, v, { clientId: "ms-a", clean: true });
      expect(ended.connack).toMatchObject({ reasonCode: 0, sessionPresent: false });
      await leave(broker, ended.raw, "ms-a");
      expect(brokerOf(broker).sessions.size).toBe(1);
      const now = await connect(broker, v, persistent(v, "ms-c"));
      expect(now.connack).toMatchObject({ reasonCode: 0 });
      await control.check();
    },
  );
});

describe("maxSessionExpiryInterval", () => {
  it("ends a 3.1.1 session with clean session 0 once its client stayed away that long", async () => {
    const broker = await startBroker({ maxSessionExpiryInterval: 1 });
    const first = await rawConnected(broker, 4, { clientId: "v3-away", clean: false });
    expect(await subscribe(first, 1, ["v3/x"])).toEqual([1]);
    await leave(broker, first, "v3-away");

    // Within the interval the session is kept...
    const soon = await connect(broker, 4, { clientId: "v3-away", clean: false });
    expect(soon.connack).toMatchObject({ reasonCode: 0, sessionPresent: true });
    await leave(broker, soon.raw, "v3-away");
    // ...and after it, it is gone with its subscription.
    await sleep(1400);
    expect(brokerOf(broker).sessions.has("v3-away")).toBe(false);
    expect(brokerOf(broker).subscriptionBytes).toBe(0);
    const late = await connect(broker, 4, { clientId: "v3-away", clean: false });
    expect(late.connack).toMatchObject({ reasonCode: 0, sessionPresent: false });
  });

  it("keeps a 3.1.1 session with clean session 0 by default", async () => {
    const broker = await startBroker();
    const first = await rawConnected(broker, 4, { clientId: "v3-kept", clean: false });
    await leave(broker, first, "v3-kept");
    await sleep(600);
    const back = await connect(broker, 4, { clientId: "v3-kept", clean: false });
    expect(back.connack).toMatchObject({ reasonCode: 0, sessionPresent: true });
  });
});

describe("maxTotalSubscriptionBytes", () => {
  it.each(BOTH)(
    "refuses new filters of any session beyond it, and frees their room when they go (level %i)",
    async (v) => {
      const broker = await startBroker();
      const control = await Control.start(broker, v);
      const one = await rawConnected(broker, v, { clientId: "tsb-one" });
      const two = await rawConnected(broker, v, { clientId: "tsb-two" });
      const refused = v === 5 ? 0x97 : 0x80;
      // What one 5-byte filter is counted for, read back from the broker, sizes the budget
      // for exactly three such filters.
      expect(await subscribe(one, 1, ["q/one"])).toEqual([1]);
      const cost = brokerOf(broker).subscriptionBytes;
      expect(cost).toBeGreaterThan(5);
      configureBroker(broker.ctx, { maxTotalSubscriptionBytes: 3 * cost });

      expect(await subscribe(two, 1, ["q/two", "q/thr", "q/fou"])).toEqual([1, 1, refused]);
      // A replacement takes no room; a new filter does not fit in what is left.
      expect(await subscribe(one, 2, ["q/one", "q/fiv"])).toEqual([1, refused]);
      expect(brokerOf(broker).subscriptionBytes).toBe(3 * cost);

      // An unsubscribe frees its room, for another session.
      one.send({ type: PacketType.UNSUBSCRIBE, packetId: 3, topicFilters: ["q/one"] });
      expect(await one.next()).toMatchObject({ type: PacketType.UNSUBACK, packetId: 3 });
      expect(await subscribe(two, 4, ["q/fou", "q/six"])).toEqual([1, refused]);

      // So does a session that ends.
      await leave(broker, two, "tsb-two");
      expect(brokerOf(broker).subscriptionBytes).toBe(0);
      expect(await subscribe(one, 5, ["q/a", "q/b", "q/c"])).toEqual([1, 1, 1]);
      await expectServed(one);
      configureBroker(broker.ctx, { maxTotalSubscriptionBytes: 512 * 1024 * 1024 });
      await control.check();
    },
  );
});

describe("maxTotalMessageBytes", () => {
  // 1000-byte payloads on 4-byte topics: each message counts 1020 bytes and MESSAGE_BYTES,
  // and HOLD_BYTES per hold.
  const payload = (n: number): Buffer => Buffer.alloc(1000, 0x30 + n);
  const HELD_ONCE = 1020 + MESSAGE_BYTES + HOLD_BYTES;
  // Room for two messages held twice each (the first test) or once (the retained ones), not
  // for a third held once.
  const BUDGET = 2 * (HELD_ONCE + HOLD_BYTES) + HELD_ONCE / 2;

  it.each(BOTH)(
    "drops deliveries beyond it for every session, counts a shared message once, frees on ack (level %i)",
    async (v) => {
      const broker = await startBroker({ maxTotalMessageBytes: BUDGET });
      const memory = brokerOf(broker).memory;
      for (const id of ["mb-a", "mb-b"]) {
        const raw = await rawConnected(broker, v, persistent(v, id));
        expect(await subscribe(raw, 1, ["mb/#"])).toEqual([1]);
        await leave(broker, raw, id);
      }
      const publisher = await rawConnected(broker, v);
      for (let n = 1; n <= 4; n++) {
        publisher.send(pub("mb/x", payload(n), 1, { packetId: n }));
        expect(await publisher.next()).toMatchObject({ type: PacketType.PUBACK, packetId: n });
      }
      // Two messages, each queued for both sessions: 2 × (HELD_ONCE + HOLD_BYTES). The third
      // would take HELD_ONCE more: it and the fourth are dropped for both.
      expect(memory.bytes).toBe(2 * (HELD_ONCE + HOLD_BYTES));
      const sessions = brokerOf(broker).sessions;
      expect(sessions.get("mb-a")?.dropped).toBe(2);
      expect(sessions.get("mb-b")?.dropped).toBe(2);
      expectLog(broker, /^warning broker\/queue maxTotalMessageBytes reached; message on mb\/x/);
      // Four drops, one warning: the next one in a second says how many were not logged.
      expect(broker.logs.filter((l) => l.includes("dropped"))).toHaveLength(1);
      await sleep(1050);
      publisher.send(pub("mb/x", payload(9), 1, { packetId: 9 }));
      expect(await publisher.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 9 });
      const warnings = broker.logs.filter((l) => l.includes("dropped"));
      expect(warnings).toHaveLength(2);
      expect(warnings[1]).toMatch(/mb\/x to mb-a dropped \(3 more dropped since\)$/);

      const a = await rawConnected(broker, v, persistent(v, "mb-a"));
      const got = await receivePublishes(a, 2);
      expect(got.map((p) => Buffer.from(p.payload)[0])).toEqual([0x31, 0x32]);
      await until(() => memory.bytes === 2 * HELD_ONCE, 2000, "a's acks to free its holds");
      const b = await rawConnected(broker, v, persistent(v, "mb-b"));
      expect((await receivePublishes(b, 2)).length).toBe(2);
      await until(() => memory.bytes === 0, 2000, "every hold freed");

      // Room again: a connected subscriber gets the next one.
      publisher.send(pub("mb/x", payload(5), 1, { packetId: 5 }));
      expect(await publisher.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 5 });
      expect(Buffer.from((await receivePublishes(a, 1))[0]!.payload)[0]).toBe(0x35);
      await until(() => memory.bytes <= HELD_ONCE, 2000, "a's ack");
    },
  );

  it("keeps a retained message beyond it from being retained, still delivering it", async () => {
    const broker = await startBroker({ maxTotalMessageBytes: BUDGET });
    const memory = brokerOf(broker).memory;
    const live = await client(broker);
    const seen: string[] = [];
    live.on("message", (topic) => seen.push(topic));
    await live.subscribeAsync("rt/#", { qos: 0 });
    const publisher = await client(broker);
    for (const n of [1, 2, 3])
      await publisher.publishAsync(`rt/${n}`, payload(n), { qos: 1, retain: true });
    await until(() => seen.length === 3, 2000, "the three live deliveries");
    expect(memory.bytes).toBe(2 * HELD_ONCE);
    expectLog(broker, /^warning broker\/retained maxTotalMessageBytes reached; message on rt\/3/);
    expect([...brokerOf(broker).retained.topics()].sort()).toEqual(["rt/1", "rt/2"]);

    // A replacement counts the room of the message it replaces...
    const retained = brokerOf(broker).retained;
    await publisher.publishAsync("rt/2", payload(7), { qos: 1, retain: true });
    expect(Buffer.from(retained.get("rt/2")!.payload)[0]).toBe(0x37);
    // ...and one too large even so clears the topic rather than leave a stale message there.
    await publisher.publishAsync("rt/2", Buffer.alloc(BUDGET - HELD_ONCE), {
      qos: 1,
      retain: true,
    });
    expect([...retained.topics()]).toEqual(["rt/1"]);
    expect(memory.bytes).toBe(HELD_ONCE);

    // The room rt/2 left now takes the one that did not fit before.
    await publisher.publishAsync("rt/3", payload(3), { qos: 1, retain: true });
    expect([...retained.topics()].sort()).toEqual(["rt/1", "rt/3"]);
    for (const n of [1, 3]) await publisher.publishAsync(`rt/${n}`, "", { qos: 1, retain: true });
    expect(memory.bytes).toBe(0);
  });

  it("a retained message that replaced one beyond it leaves none in storage either", async () => {
    const dir = await tempDir();
    const first = await fileBroker(dir, { maxTotalMessageBytes: BUDGET });
    const publisher = await client(first);
    await publisher.publishAsync("rs/x", payload(1), { qos: 1, retain: true });
    await publisher.publishAsync("rs/x", Buffer.alloc(BUDGET), { qos: 1, retain: true });
    expect(brokerOf(first).retained.size).toBe(0);
    await publisher.endAsync();
    await first.stop();
    const second = await fileBroker(dir, { maxTotalMessageBytes: BUDGET });
    expect(brokerOf(second).retained.size).toBe(0);
  });
});

// The budgets bound memory only if what is counted is what is kept: found by measuring the
// heap, 128-level wildcard filters took 40 times what they were counted for, user properties
// were not counted at all, and a held message kept the network chunk it arrived in.
describe("what the broker-wide budgets count", () => {
  it("counts a wildcard filter for each level of its trie path, a two-byte filter twice", () => {
    expect(subscriptionCost("a/b/c")).toBe(SUBSCRIPTION_BYTES + 5);
    expect(subscriptionCost("a/\u20ac")).toBe(SUBSCRIPTION_BYTES + 2 * 3);
    expect(subscriptionCost("a/+/c")).toBe(SUBSCRIPTION_BYTES + 5 + 3 * WILDCARD_LEVEL_BYTES);
    // The group is not in the trie: `a/#` is two levels.
    expect(subscriptionCost("$share/g/a/#")).toBe(
      SUBSCRIPTION_BYTES + 12 + 2 * WILDCARD_LEVEL_BYTES,
    );
  });

  it.each(BOTH)("refuses deep wildcard filters by what they take (level %i)", async (v) => {
    const deep = (n: number): string => `d${n}/${"a/".repeat(126)}#`;
    const broker = await startBroker({ maxTotalSubscriptionBytes: 2 * subscriptionCost(deep(1)) });
    const raw = await rawConnected(broker, v, { clientId: "deep" });
    expect(await subscribe(raw, 1, [deep(1), deep(2), deep(3)])).toEqual([
      1,
      1,
      v === 5 ? 0x97 : 0x80,
    ]);
    expect(brokerOf(broker).subscriptionBytes).toBe(2 * subscriptionCost(deep(1)));
  });

  it("counts the properties a message carries to 5.0 subscribers", () => {
    const one = new Uint8Array(1);
    expect(messageSize("t", one, undefined)).toBe(1 + 1 + 16);
    expect(messageSize("t\u20ac", one, undefined)).toBe(1 + 2 * 2 + 16);
    expect(
      messageSize("t", one, {
        userProperties: [["a", "bc"]],
        correlationData: new Uint8Array(10),
        contentType: "c",
        responseTopic: "r",
      }),
    ).toBe(1 + 1 + 16 + 112 + 3 + 10 + 1 + 1);
  });

  it("holds a queued message's user properties to maxQueuedBytes", async () => {
    const broker = await startBroker({ maxQueuedBytes: 20_000 });
    const away = await rawConnected(broker, 4, persistent(4, "up-away"));
    expect(await subscribe(away, 1, ["up/#"])).toEqual([1]);
    await leave(broker, away, "up-away");
    const publisher = await rawConnected(broker, 5);
    const big = { userProperties: [["k", "v".repeat(30_000)]] as [string, string][] };
    publisher.send(pub("up/x", "p", 1, { packetId: 1, properties: big }));
    expect(await publisher.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
    publisher.send(
      pub("up/x", "p", 1, { packetId: 2, properties: { userProperties: [["k", "v"]] } }),
    );
    expect(await publisher.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 2 });
    const session = brokerOf(broker).sessions.get("up-away")!;
    expect(session.dropped).toBe(1);
    expect(session.queueLength).toBe(1);
  });

  it("keeps a held message's own bytes, not its packet's chunk or shared encodings", async () => {
    const broker = await startBroker();
    const away = await rawConnected(broker, 4, persistent(4, "ch-away"));
    expect(await subscribe(away, 1, ["ch/#"])).toEqual([1]);
    await leave(broker, away, "ch-away");
    const live = await rawConnected(broker, 4);
    live.send({
      type: PacketType.SUBSCRIBE,
      packetId: 1,
      subscriptions: [{ topicFilter: "ch/#", qos: 0 }],
    });
    expect(await live.next()).toMatchObject({ type: PacketType.SUBACK, reasonCodes: [0] });
    // Two packets in one write: the small message's payload arrives as a view into the chunk.
    const publisher = await rawConnected(broker, 4);
    const small = encode(pub("ch/x", "tiny", 1, { packetId: 1 }), { protocolVersion: 4 });
    const junk = encode(pub("junk", new Uint8Array(30_000), 0), { protocolVersion: 4 });
    publisher.write(Buffer.concat([small, junk]));
    expect(await publisher.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
    expect(await live.next()).toMatchObject({ type: PacketType.PUBLISH, topic: "ch/x" });
    const held = brokerOf(broker).sessions.get("ch-away")!.queue![0]!.msg;
    expect(Buffer.from(held.payload).toString()).toBe("tiny");
    expect(held.payload.buffer.byteLength).toBe(4);
    expect(held.encodedV4).toBeUndefined();
  });

  /** A QoS 1 publish of "tiny" sent in one write with 30 KB of junk, delivered to `live`. */
  async function tinyFromChunk(broker: TestBroker, topic: string, retain: boolean) {
    const publisher = await rawConnected(broker, 4);
    const small = encode(pub(topic, "tiny", 1, { packetId: 1, retain }), { protocolVersion: 4 });
    const junk = encode(pub("junk", new Uint8Array(30_000), 0), { protocolVersion: 4 });
    publisher.write(Buffer.concat([small, junk]));
    expect(await publisher.next()).toMatchObject({ type: PacketType.PUBACK, packetId: 1 });
  }

  it("keeps the own bytes of a message left unacknowledged for a second by a connected client", async () => {
    const broker = await startBroker();
    const slow = await rawConnected(broker, 4, { clientId: "ch-slow" });
    expect(await subscribe(slow, 1, ["ch/#"])).toEqual([1]);
    await tinyFromChunk(broker, "ch/slow", false);
    expect(await slow.next()).toMatchObject({ type: PacketType.PUBLISH, topic: "ch/slow" });
    const session = brokerOf(broker).sessions.get("ch-slow")!;
    const inflight = () => [...session.inflight!.values()][0]!.msg;
    // Acknowledged at once, as almost every message is, it is not worth a copy...
    expect(inflight().payload.buffer.byteLength).toBeGreaterThan(30_000);
    // ...left unacknowledged through four sweeps (a second), it keeps only its own bytes.
    for (let i = 0; i < 4; i++) brokerOf(broker).sweep();
    expect(Buffer.from(inflight().payload).toString()).toBe("tiny");
    expect(inflight().payload.buffer.byteLength).toBe(4);
    await expectServed(slow);
  });

  it("keeps the own bytes of what waits in a connected client's queue that has not moved for a second", () => {
    // As the broker's sweep sees a connected session: one sweep a tick, checkHeld after each.
    const memory = new MessageMemory();
    const chunk = new Uint8Array(30_000);
    const message = (at: number) =>
      makeMessage("q/x", chunk.subarray(at, at + 4), 1, false, undefined, "pub", Date.now());
    const pending = (at: number) => ({
      msg: message(at),
      qos: 1 as const,
      retain: false,
      subscriptionIds: null,
      seq: 0,
    });
    const sweep = (session: Session) => {
      memory.tick++;
      session.checkHeld(4);
    };

    // A queue that moves every sweep, however long it stays non-empty, keeps views.
    const moving = new Session("moving", memory);
    moving.pushQueued(pending(0));
    for (let i = 1; i <= 8; i++) {
      moving.pushQueued(pending(i * 8));
      sweep(moving);
      moving.dequeue();
    }
    expect(moving.queue![0]!.msg.payload.buffer.byteLength).toBe(30_000);

    // A queue that stands still (nothing in flight: the storage is behind, say) for four
    // sweeps keeps only its messages' own bytes, and so does what joins it then.
    const stuck = new Session("stuck", memory);
    stuck.pushQueued(pending(0));
    for (let i = 0; i < 3; i++) sweep(stuck);
    expect(stuck.queue![0]!.msg.payload.buffer.byteLength).toBe(30_000);
    sweep(stuck);
    stuck.pushQueued(pending(100));
    expect(stuck.queue!.map((p) => p.msg.payload.buffer.byteLength)).toEqual([4, 4]);
  });

  it("keeps a retained message's own bytes", async () => {
    const broker = await startBroker();
    await tinyFromChunk(broker, "ch/kept", true);
    const kept = brokerOf(broker).retained.get("ch/kept")!;
    expect(Buffer.from(kept.payload).toString()).toBe("tiny");
    expect(kept.payload.buffer.byteLength).toBe(4);
    const late = await rawConnected(broker, 4);
    expect(await subscribe(late, 1, ["ch/kept"])).toEqual([1]);
    expect(await late.next()).toMatchObject({
      type: PacketType.PUBLISH,
      topic: "ch/kept",
      retain: true,
    });
  });
});
