// @myqtt/storage/testing: the conformance suite every storage backend passes.
//
//   import { describeStorageConformance } from "@myqtt/storage/testing";
//   describeStorageConformance("file", async () => { ... return { storage, reopen, cleanup }; },
//     { durable: true });
//
// It checks what a broker or an application would notice: what is written reads back exactly,
// group commit keeps the order of writes, retained lookups follow MQTT's matching rules, MyQtt's
// storage operations give the numbers MyQtt's regression tests expect, and (for a durable
// backend) everything comes back identical after a close and reopen.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { StorageErrorCode } from "./errors.js";
import type { Storage } from "./storage.js";
import type {
  StorageOp,
  StoredClient,
  StoredDelivery,
  StoredMessage,
  StoredSessionInfo,
  StoredState,
  StoredSubscription,
  StoredWill,
} from "./types.js";

/** What the suite runs against; made afresh for every test. */
export interface ConformanceTarget {
  /** A fresh, opened, EMPTY storage. */
  storage: Storage;
  /**
   * Closes `storage` and returns a new opened instance over the same data; undefined for backends
   * where nothing survives (memory). The suite closes the instance it last used before calling
   * it, and may call it more than once in a test (each time over the latest instance's data).
   */
  reopen?: () => Promise<Storage>;
  /** Removes whatever the target created (files, keys); called after each test. */
  cleanup?: () => Promise<void>;
}

/** Options of describeStorageConformance. */
export interface ConformanceOptions {
  /** The backend keeps its data across a close and reopen: runs the durability tests (needs `reopen`). */
  durable?: boolean;
}

// --- helpers -------------------------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (s: string): Uint8Array => encoder.encode(s);
const text = (b: Uint8Array): string => decoder.decode(b);

/** Every byte value once, 0 to 255. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

function message(
  topic: string,
  payload: Uint8Array | string = "payload",
  extra: Partial<StoredMessage> = {},
): StoredMessage {
  return {
    topic,
    payload: typeof payload === "string" ? bytes(payload) : payload,
    qos: 1,
    retain: false,
    expiresAt: 0,
    publisher: null,
    ...extra,
  };
}

function retained(
  topic: string,
  payload: Uint8Array | string = `retained ${topic}`,
  extra: Partial<StoredMessage> = {},
): StoredMessage {
  return message(topic, payload, { retain: true, ...extra });
}

function delivery(seq: number, extra: Partial<StoredDelivery> = {}): StoredDelivery {
  return {
    seq,
    message: message(`queue/${seq}`, `message ${seq}`),
    qos: 1,
    retain: false,
    subscriptionIds: null,
    state: "queued",
    packetId: 0,
    ...extra,
  };
}

function subscription(
  filter: string,
  qos: StoredSubscription["qos"] = 1,
  extra: Partial<StoredSubscription> = {},
): StoredSubscription {
  return { filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0, ...extra };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedStrings(list: readonly string[]): string[] {
  return [...list].sort(compare);
}

/**
 * A deep copy where every byte array is a plain Uint8Array (a backend may hand back a Buffer,
 * which is a Uint8Array but not toEqual to one), for comparisons of contents.
 */
function plain<T>(value: T): T {
  if (value instanceof Uint8Array) return new Uint8Array(value) as T;
  if (Array.isArray(value)) return value.map((v) => plain(v)) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v);
    return out as T;
  }
  return value;
}

/** A client as compared: subscriptions by filter, QoS 2 ids ascending, deliveries as stored. */
function normalClient(client: StoredClient | null): StoredClient | null {
  if (client === null) return null;
  return plain({
    ...client,
    subscriptions: [...client.subscriptions].sort((a, b) => compare(a.filter, b.filter)),
    incomingQoS2: [...client.incomingQoS2].sort((a, b) => a - b),
  });
}

/** A state as compared: clients by id, retained messages by topic. */
function normalState(state: StoredState): StoredState {
  return {
    clients: [...state.clients]
      .sort((a, b) => compare(a.clientId, b.clientId))
      .map((c) => normalClient(c) as StoredClient),
    retained: plain([...state.retained].sort((a, b) => compare(a.topic, b.topic))),
  };
}

/** A delivery in one line (payload in hex): quick to compare, readable when it differs. */
function summary(d: StoredDelivery): string {
  const hex = Array.from(d.message.payload, (b) => b.toString(16).padStart(2, "0")).join("");
  return [d.seq, d.state, d.packetId, d.qos, d.retain, d.message.qos, d.message.topic, hex].join(
    " ",
  );
}

/** The index of the first byte where `a` and `b` differ (-1 when equal; the shorter length if one is a prefix). */
function firstDifference(a: Uint8Array | undefined, b: Uint8Array): number {
  if (a === undefined) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function topicsOf(messages: readonly StoredMessage[]): string[] {
  return sortedStrings(messages.map((m) => m.topic));
}

/** The ops that write `client` from nothing. */
function opsOf(client: StoredClient): StorageOp[] {
  const clientId = client.clientId;
  const ops: StorageOp[] = [];
  if (client.session !== null) ops.push({ op: "session", clientId, info: client.session });
  for (const sub of client.subscriptions) ops.push({ op: "sub", clientId, sub });
  for (const d of client.deliveries) ops.push({ op: "delivery", clientId, delivery: d });
  for (const packetId of client.incomingQoS2) ops.push({ op: "qos2", clientId, packetId });
  if (client.will !== null) ops.push({ op: "will", clientId, will: client.will });
  return ops;
}

/** Expects `call` to return a promise that rejects with StorageError `code` (not to throw). */
async function expectStorageError(
  call: () => Promise<unknown>,
  code: StorageErrorCode,
): Promise<void> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (error) {
    throw new Error(
      `expected a rejected promise (StorageError ${code}), but the call threw synchronously: ${String(error)}`,
    );
  }
  // By name, not instanceof: the CJS build of this suite may carry its own copy of the class.
  await expect(promise).rejects.toMatchObject({ name: "StorageError", code });
}

// --- a fixture with every kind of data --------------------------------------------------------

const FULL_PROPERTIES = {
  payloadFormatIndicator: 1 as const,
  messageExpiryInterval: 3600,
  responseTopic: "reply/to/me",
  correlationData: Uint8Array.from([0, 1, 2, 127, 128, 254, 255]),
  userProperties: [
    ["name", "value"],
    ["name", "second value, same name"],
    ["ключ", "значение 😀"],
    ["", ""],
  ] as Array<[string, string]>,
  contentType: "application/octet-stream; charset=binary",
  subscriptionIdentifiers: [1, 42, 268_435_455],
};

const LONG_ID = "x".repeat(2000);

/** The state the fixture leaves (see fixtureOps). */
function fixtureState(): StoredState {
  const full: StoredClient = {
    clientId: "durable/full",
    session: { expiryInterval: 0xffffffff, disconnectedAt: 1_700_000_000_123 },
    subscriptions: [
      subscription("a/+/c", 2, {
        noLocal: true,
        retainAsPublished: true,
        retainHandling: 2,
        subscriptionIdentifier: 268_435_455,
      }),
      subscription("$share/group/x/#", 0, { retainHandling: 1 }),
      subscription("#", 1, { subscriptionIdentifier: 1 }),
    ],
    deliveries: [
      delivery(1),
      delivery(2, { state: "publish", packetId: 65535, qos: 2 }),
      delivery(3, { state: "pubrel", packetId: 1, qos: 2 }),
      delivery(5, {
        qos: 0,
        message: message("empty/payload", new Uint8Array(0), { qos: 0 }),
      }),
      delivery(1_700_000_000_123_000, {
        qos: 1,
        retain: true,
        subscriptionIds: [1, 268_435_455],
        message: message("binary/all-bytes", ALL_BYTES, {
          qos: 2,
          retain: true,
          properties: FULL_PROPERTIES,
          expiresAt: 1_700_000_360_000,
          publisher: "publisher-1",
        }),
      }),
    ],
    incomingQoS2: [1, 300, 65535],
    will: {
      message: message("will/full", "gone", {
        qos: 2,
        retain: true,
        properties: { contentType: "text/plain", userProperties: [["k", "v"]] },
        publisher: "durable/full",
      }),
      at: 1_700_000_000_999,
      delay: 30,
    },
  };
  const unicode: StoredClient = {
    clientId: "клиент-😀",
    session: { expiryInterval: 60, disconnectedAt: 0 },
    subscriptions: [subscription("тема/😀/+", 2)],
    deliveries: [],
    incomingQoS2: [],
    will: { message: message("will/клиент", "пока", { qos: 0 }), at: 0, delay: 0 },
  };
  const pathLike: StoredClient = {
    clientId: "../../etc",
    session: null,
    subscriptions: [],
    deliveries: [],
    incomingQoS2: [7, 8],
    will: null,
  };
  const upper: StoredClient = {
    clientId: "A",
    session: null,
    subscriptions: [subscription("case/upper", 1)],
    deliveries: [],
    incomingQoS2: [],
    will: null,
  };
  const lower: StoredClient = {
    clientId: "a",
    session: null,
    subscriptions: [subscription("case/lower", 2)],
    deliveries: [],
    incomingQoS2: [],
    will: null,
  };
  const long: StoredClient = {
    clientId: LONG_ID,
    session: { expiryInterval: 10, disconnectedAt: 5 },
    subscriptions: [],
    deliveries: [delivery(9, { message: message("long/id", pattern(3000, 3)) })],
    incomingQoS2: [],
    will: null,
  };
  return {
    clients: [full, unicode, pathLike, upper, lower, long],
    retained: [
      retained("this/is/a/test", "third", { qos: 2 }),
      retained("$SYS/broker/load", "0.5", { qos: 0, properties: FULL_PROPERTIES }),
      retained("binary/all-bytes", ALL_BYTES, {
        qos: 1,
        expiresAt: 1_800_000_000_000,
        publisher: "publisher-2",
      }),
    ],
  };
}

/** Writes that leave fixtureState(), with replacements and removals on the way. */
function fixtureOps(): StorageOp[] {
  const state = fixtureState();
  const full = state.clients[0]!;
  const churn: StorageOp[] = [
    // Replaced below by the fixture's own values.
    { op: "sub", clientId: full.clientId, sub: subscription("#", 0) },
    { op: "delivery", clientId: full.clientId, delivery: delivery(2, { qos: 2 }) },
    { op: "delivery", clientId: full.clientId, delivery: delivery(3, { qos: 2 }) },
    {
      op: "delivery",
      clientId: full.clientId,
      delivery: delivery(3, { qos: 2, state: "publish", packetId: 1 }),
    },
    { op: "session", clientId: full.clientId, info: { expiryInterval: 1, disconnectedAt: 0 } },
    // Removed below.
    { op: "delivery", clientId: full.clientId, delivery: delivery(4) },
    { op: "qos2", clientId: full.clientId, packetId: 2 },
    { op: "sub", clientId: "gone", sub: subscription("gone/#", 1) },
    { op: "delivery", clientId: "gone", delivery: delivery(1) },
    { op: "retain", message: retained("this/is/a/test", "first") },
    { op: "retain", message: retained("this/is/a/test", "second") },
    { op: "retain", message: retained("gone/topic") },
    { op: "retain", message: retained("cleared/topic") },
  ];
  const ops: StorageOp[] = [...churn];
  for (const client of state.clients) ops.push(...opsOf(client));
  for (const m of state.retained) ops.push({ op: "retain", message: m });
  ops.push(
    { op: "release", clientId: full.clientId, seq: 4 },
    { op: "qos2done", clientId: full.clientId, packetId: 2 },
    { op: "drop", clientId: "gone" },
    { op: "unretain", topic: "gone/topic" },
    { op: "retain", message: retained("cleared/topic", new Uint8Array(0)) },
  );
  return ops;
}

// --- the suite ---------------------------------------------------------------------------------

/**
 * Defines the conformance tests of a storage backend. `makeTarget` is called before every test
 * and must give an opened, empty storage; the suite closes it (and calls `cleanup`) after.
 * With `durable: true` the tests of what survives a close and reopen run as well.
 */
export function describeStorageConformance(
  name: string,
  makeTarget: () => Promise<ConformanceTarget>,
  options: ConformanceOptions = {},
): void {
  describe(`${name} storage conformance`, () => {
    let target: ConformanceTarget | undefined;
    /** The instance in use: target.storage, or the one the last reopen() gave. */
    let storage: Storage;

    beforeEach(async () => {
      target = await makeTarget();
      storage = target.storage;
    });

    afterEach(async () => {
      const t = target;
      target = undefined;
      if (t === undefined) return;
      await storage.close().catch(() => {});
      await t.storage.close().catch(() => {});
      await t.cleanup?.();
    });

    async function reopen(): Promise<void> {
      const t = target;
      if (t?.reopen === undefined) {
        throw new Error(`${name}: durable tests need the target to give reopen()`);
      }
      await storage.close();
      storage = await t.reopen();
      expect(storage.isOpen).toBe(true);
    }

    async function client(clientId: string): Promise<StoredClient | null> {
      return normalClient(await storage.readClient(clientId));
    }

    async function clientIds(): Promise<string[]> {
      return sortedStrings((await storage.readAll()).clients.map((c) => c.clientId));
    }

    async function retainedTopics(filter: string): Promise<string[]> {
      return topicsOf(await storage.readRetained(filter));
    }

    /** Writes a subscription and a delivery under each id, then reads each back. */
    async function expectDistinctIds(ids: readonly string[]): Promise<void> {
      expect(new Set(ids).size).toBe(ids.length);
      await Promise.all(
        ids.map((clientId, i) =>
          storage.write([
            { op: "sub", clientId, sub: subscription(`ids/${i}`, 1) },
            {
              op: "delivery",
              clientId,
              delivery: delivery(i + 1, { message: message(`ids/${i}`, clientId) }),
            },
          ]),
        ),
      );
      await expectIdsReadBack(ids);
    }

    async function expectIdsReadBack(ids: readonly string[]): Promise<void> {
      for (const [i, clientId] of ids.entries()) {
        const got = await storage.readClient(clientId);
        expect(got?.clientId, `client id #${i}`).toBe(clientId);
        expect(
          got?.subscriptions.map((s) => s.filter),
          `subscriptions of #${i}`,
        ).toEqual([`ids/${i}`]);
        expect(
          got?.deliveries.map((d) => text(d.message.payload)),
          `deliveries of #${i}`,
        ).toEqual([clientId]);
      }
      expect(await clientIds()).toEqual(sortedStrings(ids));
    }

    it("gives an open, empty storage", async () => {
      expect(storage.isOpen).toBe(true);
      expect(await storage.readAll()).toEqual({ clients: [], retained: [] });
      expect(await storage.readClient("nobody")).toBeNull();
      expect(await storage.readRetained("#")).toEqual([]);
    });

    describe("write and read", () => {
      it("stores and replaces the session info of a client", async () => {
        const first: StoredSessionInfo = { expiryInterval: 0xffffffff, disconnectedAt: 0 };
        await storage.write({ op: "session", clientId: "s", info: first });
        expect((await client("s"))?.session).toEqual(first);
        const second: StoredSessionInfo = {
          expiryInterval: 120,
          disconnectedAt: 1_700_000_000_000,
        };
        await storage.write({ op: "session", clientId: "s", info: second });
        expect(await client("s")).toEqual({
          clientId: "s",
          session: second,
          subscriptions: [],
          deliveries: [],
          incomingQoS2: [],
          will: null,
        });
        expect(await clientIds()).toEqual(["s"]);
      });

      it("adds subscriptions, and replaces the one with the same filter", async () => {
        await storage.write([
          { op: "sub", clientId: "c", sub: subscription("a/b", 0) },
          { op: "sub", clientId: "c", sub: subscription("a/+", 1) },
        ]);
        expect((await client("c"))?.subscriptions).toEqual([
          subscription("a/+", 1),
          subscription("a/b", 0),
        ]);
        const replaced = subscription("a/b", 2, {
          noLocal: true,
          retainAsPublished: true,
          retainHandling: 2,
          subscriptionIdentifier: 77,
        });
        await storage.write({ op: "sub", clientId: "c", sub: replaced });
        expect((await client("c"))?.subscriptions).toEqual([subscription("a/+", 1), replaced]);
      });

      it("removes a subscription with unsub and leaves the others", async () => {
        await storage.write([
          { op: "sub", clientId: "c", sub: subscription("a/b", 0) },
          { op: "sub", clientId: "c", sub: subscription("a/c", 1) },
        ]);
        await storage.write({ op: "unsub", clientId: "c", filter: "a/b" });
        expect((await client("c"))?.subscriptions).toEqual([subscription("a/c", 1)]);
        await storage.write({ op: "unsub", clientId: "c", filter: "never/subscribed" });
        expect((await client("c"))?.subscriptions).toEqual([subscription("a/c", 1)]);
      });

      it("adds deliveries and replaces the one with the same seq (queued → publish → pubrel)", async () => {
        const queued = delivery(10, { qos: 2 });
        await storage.write([
          { op: "delivery", clientId: "c", delivery: queued },
          { op: "delivery", clientId: "c", delivery: delivery(11) },
        ]);
        expect((await client("c"))?.deliveries).toEqual(plain([queued, delivery(11)]));
        const sent = delivery(10, { qos: 2, state: "publish", packetId: 4321 });
        await storage.write({ op: "delivery", clientId: "c", delivery: sent });
        expect((await client("c"))?.deliveries).toEqual(plain([sent, delivery(11)]));
        const released = delivery(10, { qos: 2, state: "pubrel", packetId: 4321 });
        await storage.write({ op: "delivery", clientId: "c", delivery: released });
        expect((await client("c"))?.deliveries).toEqual(plain([released, delivery(11)]));
      });

      it("removes a delivery with release and leaves the others", async () => {
        await storage.write([
          { op: "delivery", clientId: "c", delivery: delivery(1) },
          { op: "delivery", clientId: "c", delivery: delivery(2) },
          { op: "delivery", clientId: "c", delivery: delivery(3) },
        ]);
        await storage.write({ op: "release", clientId: "c", seq: 2 });
        expect((await client("c"))?.deliveries.map((d) => d.seq)).toEqual([1, 3]);
        await storage.write({ op: "release", clientId: "c", seq: 999 });
        expect((await client("c"))?.deliveries).toEqual(plain([delivery(1), delivery(3)]));
      });

      it("records incoming QoS 2 packet ids once each, and forgets them with qos2done", async () => {
        await storage.write([
          { op: "qos2", clientId: "c", packetId: 1 },
          { op: "qos2", clientId: "c", packetId: 65535 },
          { op: "qos2", clientId: "c", packetId: 300 },
          { op: "qos2", clientId: "c", packetId: 1 },
        ]);
        expect((await client("c"))?.incomingQoS2).toEqual([1, 300, 65535]);
        await storage.write({ op: "qos2done", clientId: "c", packetId: 300 });
        expect((await client("c"))?.incomingQoS2).toEqual([1, 65535]);
        await storage.write({ op: "qos2done", clientId: "c", packetId: 12 });
        expect((await client("c"))?.incomingQoS2).toEqual([1, 65535]);
      });

      it("stores, replaces and removes a will", async () => {
        await storage.write({ op: "sub", clientId: "c", sub: subscription("keep", 0) });
        const armed: StoredWill = {
          message: message("will/c", "bye", { qos: 1 }),
          at: 0,
          delay: 0,
        };
        await storage.write({ op: "will", clientId: "c", will: armed });
        expect((await client("c"))?.will).toEqual(plain(armed));
        const delayed: StoredWill = {
          message: message("will/c", "bye later", { qos: 2, retain: true }),
          at: 1_700_000_030_000,
          delay: 30,
        };
        await storage.write({ op: "will", clientId: "c", will: delayed });
        expect((await client("c"))?.will).toEqual(plain(delayed));
        await storage.write({ op: "unwill", clientId: "c" });
        expect((await client("c"))?.will).toBeNull();
        expect((await client("c"))?.subscriptions).toEqual([subscription("keep", 0)]);
      });

      it("stores, replaces and removes retained messages", async () => {
        const first = retained("r/1", "one", { qos: 1 });
        const other = retained("r/2", "two", { qos: 0 });
        await storage.write([
          { op: "retain", message: first },
          { op: "retain", message: other },
        ]);
        expect(plain(await storage.readRetained("r/1"))).toEqual(plain([first]));
        const replaced = retained("r/1", "one, again", { qos: 2, publisher: "p" });
        await storage.write({ op: "retain", message: replaced });
        expect(plain(await storage.readRetained("r/1"))).toEqual(plain([replaced]));
        expect(await retainedTopics("#")).toEqual(["r/1", "r/2"]);
        await storage.write({ op: "unretain", topic: "r/1" });
        expect(await storage.readRetained("r/1")).toEqual([]);
        expect(plain((await storage.readAll()).retained)).toEqual(plain([other]));
        await storage.write({ op: "unretain", topic: "never/retained" });
        expect(await retainedTopics("#")).toEqual(["r/2"]);
      });

      it("a retained message with an empty payload clears the topic", async () => {
        await storage.write([
          { op: "retain", message: retained("r/1") },
          { op: "retain", message: retained("r/2") },
        ]);
        await storage.write({ op: "retain", message: retained("r/1", new Uint8Array(0)) });
        expect(await storage.readRetained("r/1")).toEqual([]);
        expect(await retainedTopics("#")).toEqual(["r/2"]);
        // Clearing a topic that has nothing stores nothing.
        await storage.write({ op: "retain", message: retained("r/3", new Uint8Array(0)) });
        expect(await retainedTopics("#")).toEqual(["r/2"]);
        expect((await storage.readAll()).retained.map((m) => m.topic)).toEqual(["r/2"]);
      });

      it("drop removes everything of one client and leaves the other clients intact", async () => {
        const state = fixtureState();
        const victim: StoredClient = { ...state.clients[0]!, clientId: "victim" };
        const bystander: StoredClient = { ...state.clients[0]!, clientId: "bystander" };
        await storage.write([...opsOf(victim), ...opsOf(bystander)]);
        await storage.write({ op: "retain", message: retained("stays") });
        expect(await clientIds()).toEqual(["bystander", "victim"]);
        await storage.write({ op: "drop", clientId: "victim" });
        expect(await storage.readClient("victim")).toBeNull();
        expect(await clientIds()).toEqual(["bystander"]);
        expect(await client("bystander")).toEqual(normalClient(bystander));
        expect(await retainedTopics("#")).toEqual(["stays"]);
        // Dropping an unknown client is harmless.
        await storage.write({ op: "drop", clientId: "nobody" });
        expect(await clientIds()).toEqual(["bystander"]);
      });

      it("a client whose last data is removed disappears from readAll and readClient", async () => {
        const armed: StoredWill = { message: message("w", "w"), at: 0, delay: 0 };
        await storage.write([
          { op: "sub", clientId: "by-unsub", sub: subscription("x", 1) },
          { op: "delivery", clientId: "by-release", delivery: delivery(1) },
          { op: "qos2", clientId: "by-qos2done", packetId: 5 },
          { op: "will", clientId: "by-unwill", will: armed },
          { op: "session", clientId: "by-drop", info: { expiryInterval: 5, disconnectedAt: 0 } },
          { op: "sub", clientId: "stays", sub: subscription("x", 1) },
        ]);
        expect(await clientIds()).toEqual([
          "by-drop",
          "by-qos2done",
          "by-release",
          "by-unsub",
          "by-unwill",
          "stays",
        ]);
        await storage.write([
          { op: "unsub", clientId: "by-unsub", filter: "x" },
          { op: "release", clientId: "by-release", seq: 1 },
          { op: "qos2done", clientId: "by-qos2done", packetId: 5 },
          { op: "unwill", clientId: "by-unwill" },
          { op: "drop", clientId: "by-drop" },
        ]);
        expect(await clientIds()).toEqual(["stays"]);
        for (const id of ["by-unsub", "by-release", "by-qos2done", "by-unwill", "by-drop"]) {
          expect(await storage.readClient(id), id).toBeNull();
        }
      });

      it("applies the changes of one write() in the order given", async () => {
        await storage.write([
          { op: "delivery", clientId: "c", delivery: delivery(1) },
          { op: "release", clientId: "c", seq: 1 },
          { op: "release", clientId: "c", seq: 2 },
          { op: "delivery", clientId: "c", delivery: delivery(2) },
          { op: "sub", clientId: "c", sub: subscription("t", 0) },
          { op: "sub", clientId: "c", sub: subscription("t", 2) },
          { op: "retain", message: retained("r", "old") },
          { op: "unretain", topic: "r" },
          { op: "retain", message: retained("r2", "old") },
          { op: "retain", message: retained("r2", "new") },
        ]);
        const got = await client("c");
        expect(got?.deliveries).toEqual(plain([delivery(2)]));
        expect(got?.subscriptions).toEqual([subscription("t", 2)]);
        expect(await retainedTopics("#")).toEqual(["r2"]);
        expect(text((await storage.readRetained("r2"))[0]?.payload ?? new Uint8Array(0))).toBe(
          "new",
        );
      });

      it("reads back a mixed set of writes exactly", async () => {
        await storage.write(fixtureOps());
        expect(normalState(await storage.readAll())).toEqual(normalState(fixtureState()));
        for (const c of fixtureState().clients) {
          expect(await client(c.clientId), c.clientId).toEqual(normalClient(c));
        }
      });
    });

    describe("deliveries, payloads and properties", () => {
      it("returns deliveries ordered by seq whatever the order they were written in", async () => {
        const big = 1_700_000_000_000_000;
        const order = [10, 9, 100, 2, big + 1, 1, big, 20, 3];
        for (const seq of order.slice(0, 4)) {
          await storage.write({ op: "delivery", clientId: "c", delivery: delivery(seq) });
        }
        await storage.write(
          order.slice(4).map((seq) => ({ op: "delivery", clientId: "c", delivery: delivery(seq) })),
        );
        const seqs = (await storage.readClient("c"))?.deliveries.map((d) => d.seq);
        expect(seqs).toEqual([1, 2, 3, 9, 10, 20, 100, big, big + 1]);
        const state = await storage.readAll();
        expect(state.clients[0]?.deliveries.map((d) => d.seq)).toEqual(seqs);
      });

      it("round-trips every byte value in payloads, in deliveries and retained messages", async () => {
        const large = pattern(100_000, 1);
        await storage.write([
          {
            op: "delivery",
            clientId: "c",
            delivery: delivery(1, { message: message("bin/1", ALL_BYTES) }),
          },
          {
            op: "delivery",
            clientId: "c",
            delivery: delivery(2, { message: message("bin/2", large) }),
          },
          { op: "retain", message: retained("bin/r", ALL_BYTES) },
        ]);
        const got = await storage.readClient("c");
        const [first, second] = got?.deliveries ?? [];
        expect(first?.message.payload).toBeInstanceOf(Uint8Array);
        expect(plain(first?.message.payload)).toEqual(ALL_BYTES);
        expect(second?.message.payload.length).toBe(large.length);
        expect(firstDifference(second?.message.payload, large)).toBe(-1);
        const [r] = await storage.readRetained("bin/r");
        expect(r?.payload).toBeInstanceOf(Uint8Array);
        expect(plain(r?.payload)).toEqual(ALL_BYTES);
      });

      it("keeps a delivery with an empty payload", async () => {
        const empty = delivery(1, { qos: 0, message: message("e", new Uint8Array(0), { qos: 0 }) });
        // Forwarded with Retain As Published: the clearing of a retained message, as a delivery.
        const emptyRetained = delivery(2, {
          retain: true,
          message: message("e", new Uint8Array(0), { retain: true }),
        });
        await storage.write([
          { op: "delivery", clientId: "c", delivery: empty },
          { op: "delivery", clientId: "c", delivery: emptyRetained },
        ]);
        const got = await storage.readClient("c");
        expect(got?.deliveries).toHaveLength(2);
        expect(got?.deliveries[0]?.message.payload).toBeInstanceOf(Uint8Array);
        expect(got?.deliveries[0]?.message.payload.length).toBe(0);
        expect(plain(got?.deliveries)).toEqual(plain([empty, emptyRetained]));
        expect(await storage.queuedMessages("c")).toBe(2);
      });

      it("round-trips MQTT 5 properties, expiry and publisher exactly", async () => {
        const d = delivery(1, {
          qos: 1,
          subscriptionIds: [3, 268_435_455],
          message: message("props/d", "with properties", {
            qos: 2,
            properties: FULL_PROPERTIES,
            expiresAt: 1_700_000_360_000,
            publisher: "the-publisher",
          }),
        });
        const r = retained("props/r", "retained with properties", {
          qos: 1,
          properties: FULL_PROPERTIES,
          expiresAt: 1_800_000_000_000,
          publisher: "the-publisher",
        });
        await storage.write([
          { op: "delivery", clientId: "c", delivery: d },
          { op: "retain", message: r },
        ]);
        const got = (await storage.readClient("c"))?.deliveries[0];
        expect(plain(got)).toEqual(plain(d));
        const props = got?.message.properties;
        expect(props?.correlationData).toBeInstanceOf(Uint8Array);
        expect(plain(props?.correlationData)).toEqual(FULL_PROPERTIES.correlationData);
        expect(props?.userProperties).toEqual(FULL_PROPERTIES.userProperties);
        expect(props?.subscriptionIdentifiers).toEqual(FULL_PROPERTIES.subscriptionIdentifiers);
        expect(props?.contentType).toBe(FULL_PROPERTIES.contentType);
        expect(got?.subscriptionIds).toEqual([3, 268_435_455]);
        const [gotR] = await storage.readRetained("props/r");
        expect(plain(gotR)).toEqual(plain(r));
        expect(gotR?.properties?.correlationData).toBeInstanceOf(Uint8Array);
        expect(gotR?.publisher).toBe("the-publisher");
      });
    });

    describe("client ids", () => {
      it("keeps ids with '/', '.' and '..' apart and round-trips them", async () => {
        await expectDistinctIds([
          "a/b",
          "a",
          "b",
          "a%2Fb",
          "a_b",
          "ab",
          ".",
          "..",
          "../../etc",
          "../../etc/passwd",
          "/",
          "/absolute",
          "a/../b",
          "a\\b",
          "..\\..\\windows",
          "a b",
          "con",
        ]);
      });

      it("keeps unicode ids apart and round-trips them", async () => {
        await expectDistinctIds([
          "клиент-😀",
          "客户端",
          "😀",
          "\u00e9", // é, composed (NFC)
          "e\u0301", // é, decomposed (NFD)
          "tab\there",
          "line\nbreak",
        ]);
      });

      it("keeps very long ids (2000 characters) apart and round-trips them", async () => {
        await expectDistinctIds([
          LONG_ID,
          "x".repeat(1999),
          `${"x".repeat(1999)}y`,
          "a/".repeat(1000),
          "é".repeat(2000),
        ]);
      });

      it("keeps ids differing only in case apart", async () => {
        await expectDistinctIds(["A", "a", "Client", "client", "CLIENT"]);
      });
    });

    describe("group commit", () => {
      it("1000 writes issued in one tick all resolve and are all visible", async () => {
        const writes: Promise<void>[] = [];
        for (let seq = 1; seq <= 1000; seq++) {
          writes.push(
            storage.write({ op: "delivery", clientId: `g${seq % 10}`, delivery: delivery(seq) }),
          );
        }
        const settled = await Promise.allSettled(writes);
        expect(settled.filter((s) => s.status === "rejected")).toEqual([]);
        const state = await storage.readAll();
        expect(state.clients).toHaveLength(10);
        let total = 0;
        for (let g = 0; g < 10; g++) {
          const seqs = (await storage.readClient(`g${g}`))?.deliveries.map((d) => d.seq) ?? [];
          expect(seqs).toHaveLength(100);
          expect(seqs.every((s) => s % 10 === g)).toBe(true);
          expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
          total += seqs.length;
        }
        expect(total).toBe(1000);
      });

      it("a delivery and its release written in the same tick leave nothing", async () => {
        const a = storage.write({ op: "delivery", clientId: "c", delivery: delivery(1) });
        const b = storage.write({ op: "release", clientId: "c", seq: 1 });
        await Promise.all([a, b]);
        expect(await storage.readClient("c")).toBeNull();
        expect(await clientIds()).toEqual([]);
      });

      it("a release written before its delivery in the same tick leaves the delivery", async () => {
        const a = storage.write({ op: "release", clientId: "c", seq: 1 });
        const b = storage.write({ op: "delivery", clientId: "c", delivery: delivery(1) });
        await Promise.all([a, b]);
        expect((await client("c"))?.deliveries).toEqual(plain([delivery(1)]));
      });

      it("keeps the call order of writes of every kind in the same tick", async () => {
        const writes = [
          storage.write({ op: "sub", clientId: "c", sub: subscription("t", 0) }),
          storage.write({ op: "unsub", clientId: "c", filter: "t" }),
          storage.write({ op: "sub", clientId: "c", sub: subscription("u", 0) }),
          storage.write({ op: "sub", clientId: "c", sub: subscription("u", 2) }),
          storage.write({ op: "qos2done", clientId: "c", packetId: 9 }),
          storage.write({ op: "qos2", clientId: "c", packetId: 9 }),
          storage.write({ op: "retain", message: retained("r", "1") }),
          storage.write({ op: "retain", message: retained("r", "2") }),
          storage.write({ op: "sub", clientId: "d", sub: subscription("v", 0) }),
          storage.write({ op: "drop", clientId: "d" }),
        ];
        await Promise.all(writes);
        const got = await client("c");
        expect(got?.subscriptions).toEqual([subscription("u", 2)]);
        expect(got?.incomingQoS2).toEqual([9]);
        expect(await clientIds()).toEqual(["c"]);
        const [r] = await storage.readRetained("r");
        expect(text(r?.payload ?? new Uint8Array(0))).toBe("2");
      });

      it("a write's promise resolves only once its change is readable", async () => {
        const seen: boolean[] = [];
        const writes: Promise<void>[] = [];
        for (let i = 0; i < 50; i++) {
          writes.push(
            storage
              .write({ op: "sub", clientId: "c", sub: subscription(`f/${i}`, 1) })
              .then(async () => {
                const got = await storage.readClient("c");
                seen.push(got?.subscriptions.some((s) => s.filter === `f/${i}`) ?? false);
              }),
          );
        }
        await Promise.all(writes);
        expect(seen).toHaveLength(50);
        expect(seen.every(Boolean)).toBe(true);
      });

      it("writes issued while a commit is running are committed too", async () => {
        const first = storage.write({ op: "delivery", clientId: "c", delivery: delivery(1) });
        const during = (async () => {
          await Promise.resolve();
          await Promise.resolve();
          return storage.write({ op: "delivery", clientId: "c", delivery: delivery(2) });
        })();
        const after = first.then(() =>
          storage.write({ op: "delivery", clientId: "c", delivery: delivery(3) }),
        );
        const later = new Promise<void>((resolve, reject) => {
          setTimeout(() => {
            storage
              .write({ op: "delivery", clientId: "c", delivery: delivery(4) })
              .then(resolve, reject);
          }, 0);
        });
        await Promise.all([first, during, after, later]);
        expect((await storage.readClient("c"))?.deliveries.map((d) => d.seq)).toEqual([1, 2, 3, 4]);
      });
    });

    describe("what waits to be written (pendingBytes, whenBelow)", () => {
      it("counts a write until its commit is done, or never (a backend where nothing waits)", async () => {
        const payload = pattern(5000, 3);
        const ops: StorageOp[] = [1, 2, 3].map((seq) => ({
          op: "delivery",
          clientId: "pb",
          delivery: delivery(seq, { message: message(`pb/${seq}`, payload) }),
        }));
        const written = storage.write(ops);
        let committed = false;
        void written.then(() => {
          committed = true;
        });
        const counted = storage.pendingBytes;
        // At least the payloads, as soon as written: or 0 where a commit is done at once.
        expect(counted === 0 || counted >= 3 * 5000).toBe(true);
        await storage.whenBelow(1);
        if (counted > 0) expect(committed).toBe(true);
        await written;
        await storage.whenBelow(1);
        expect(storage.pendingBytes).toBe(0);
      });
    });

    describe("retained lookups", () => {
      const topics = [
        "a",
        "a/b/c",
        "a//c",
        "a/x/c",
        "a/b/c/d",
        "a/c",
        "b/c",
        "/leading",
        "$SYS",
        "$SYS/broker/uptime",
        "$share-not/x",
      ];

      beforeEach(async () => {
        await storage.write(topics.map((t): StorageOp => ({ op: "retain", message: retained(t) })));
      });

      it("'#' matches every retained topic except those starting with '$'", async () => {
        expect(await retainedTopics("#")).toEqual(
          sortedStrings(topics.filter((t) => !t.startsWith("$"))),
        );
      });

      it("'+' matches exactly one level, an empty one included", async () => {
        expect(await retainedTopics("a/+/c")).toEqual(["a//c", "a/b/c", "a/x/c"]);
        expect(await retainedTopics("+")).toEqual(["a"]);
        expect(await retainedTopics("+/+")).toEqual(["/leading", "a/c", "b/c"]);
        expect(await retainedTopics("a/+")).toEqual(["a/c"]);
      });

      it("a trailing '#' matches the parent level and everything below", async () => {
        expect(await retainedTopics("a/#")).toEqual([
          "a",
          "a//c",
          "a/b/c",
          "a/b/c/d",
          "a/c",
          "a/x/c",
        ]);
        expect(await retainedTopics("a/b/#")).toEqual(["a/b/c", "a/b/c/d"]);
      });

      it("filters starting with a wildcard skip '$' topics; '$SYS' filters match them", async () => {
        expect(await retainedTopics("+/broker/uptime")).toEqual([]);
        expect(await retainedTopics("+")).not.toContain("$SYS");
        expect(await retainedTopics("$SYS/#")).toEqual(["$SYS", "$SYS/broker/uptime"]);
        expect(await retainedTopics("$SYS/+/uptime")).toEqual(["$SYS/broker/uptime"]);
        expect(await retainedTopics("$SYS")).toEqual(["$SYS"]);
      });

      it("an exact filter returns only the message of that topic", async () => {
        expect(plain(await storage.readRetained("a/b/c"))).toEqual(plain([retained("a/b/c")]));
        expect(plain(await storage.readRetained("$SYS/broker/uptime"))).toEqual(
          plain([retained("$SYS/broker/uptime")]),
        );
        expect(await storage.readRetained("a/b")).toEqual([]);
        expect(await storage.readRetained("A/B/C")).toEqual([]);
        expect(await storage.readRetained("nothing/here")).toEqual([]);
      });
    });

    describe("MyQtt operations", () => {
      it("test_10: sub, subExists, unsub and subCount", async () => {
        const id = "test10@identifier.com";
        expect(await storage.subExists(id, "this/is/a/test")).toBe(false);
        await storage.sub(id, "this/is/a/test", 2);
        expect(await storage.subExists(id, "this/is/a/test")).toBe(true);
        await storage.sub(id, "this/is/a/test", 1);
        expect(await storage.subCount(id)).toBe(1);
        expect((await storage.readClient(id))?.subscriptions.map((s) => s.qos)).toEqual([1]);
        expect(await storage.unsub(id, "this/is/a/test")).toBe(true);
        expect(await storage.subExists(id, "this/is/a/test")).toBe(false);
        expect(await storage.subCount(id)).toBe(0);
        expect(await storage.unsub(id, "this/is/a/test")).toBe(false);

        for (let n = 0; n < 100; n++) await storage.sub(id, `this/is/a/test/${n}`, 1);
        expect(await storage.subCount(id)).toBe(100);
        expect(await storage.subExists(id, "this/is/a/test/49")).toBe(true);
        expect(await storage.subExists(id, "this/is/a/test/99")).toBe(true);
        expect(await storage.subExists(id, "this/is/a/test/149")).toBe(false);
        expect(await storage.subExists("someone-else", "this/is/a/test/49")).toBe(false);
      });

      it("sub stores the subscription options", async () => {
        await storage.sub("c", "a/#", 2, {
          noLocal: true,
          retainAsPublished: true,
          retainHandling: 1,
          subscriptionIdentifier: 12,
        });
        await storage.sub("c", "b", 0);
        expect((await client("c"))?.subscriptions).toEqual([
          subscription("a/#", 2, {
            noLocal: true,
            retainAsPublished: true,
            retainHandling: 1,
            subscriptionIdentifier: 12,
          }),
          subscription("b", 0),
        ]);
      });

      it("test_14: three 50-byte QoS 0 offline messages count 3 and quota 204", async () => {
        const id = "test14@identifier.com";
        const payload = "0123456789".repeat(5);
        for (const n of [1, 2, 3]) await storage.offlinePub(id, `test/message/${n}`, payload, 0);
        expect(await storage.queuedMessages(id)).toBe(3);
        expect(await storage.queuedMessagesQuota(id)).toBe(204);
        const got = await storage.sessionRecover(id);
        expect(got?.deliveries.map((d) => d.message.topic)).toEqual([
          "test/message/1",
          "test/message/2",
          "test/message/3",
        ]);
        expect(got?.deliveries.map((d) => text(d.message.payload))).toEqual([
          payload,
          payload,
          payload,
        ]);
        expect(got?.deliveries.every((d) => d.qos === 0 && d.state === "queued")).toBe(true);
      });

      it("test_14: a 1024-byte QoS 0 message on myqtt/test counts 1039 bytes", async () => {
        const id = "test14-big@identifier.com";
        await storage.offlinePub(id, "myqtt/test", pattern(1024, 2), 0);
        expect(await storage.queuedMessagesQuota(id)).toBe(1039);
        for (let i = 1; i < 10; i++)
          await storage.offlinePub(id, "myqtt/test", pattern(1024, 2), 0);
        expect(await storage.queuedMessages(id)).toBe(10);
        expect(await storage.queuedMessagesQuota(id)).toBe(10_390);
        expect(await storage.queuedMessagesQuota("nobody")).toBe(0);
        expect(await storage.queuedMessages("nobody")).toBe(0);
      });

      it("queuedMessagesQuota counts the packet id of QoS 1 and 2 messages", async () => {
        const payload = "0123456789".repeat(5);
        await storage.offlinePub("q", "test/message/1", payload, 1);
        expect(await storage.queuedMessagesQuota("q")).toBe(70);
        await storage.offlinePub("q", "test/message/2", payload, 2);
        expect(await storage.queuedMessagesQuota("q")).toBe(140);
      });

      it("offlinePub queues in call order with increasing seqs", async () => {
        const seqs: number[] = [];
        for (let i = 0; i < 20; i++) seqs.push(await storage.offlinePub("c", `t/${i}`, `${i}`, 1));
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(20);
        const got = await storage.readClient("c");
        expect(got?.deliveries.map((d) => d.seq)).toEqual(seqs);
        expect(got?.deliveries.map((d) => d.message.topic)).toEqual(seqs.map((_, i) => `t/${i}`));
      });

      it("test_14a: five clients with three subscriptions each load 15", async () => {
        for (let c = 1; c <= 5; c++) {
          const id = `test14a-${c}@identifier.com`;
          await storage.sub(id, "test/sub/1", 0);
          await storage.sub(id, "test/sub/2", 1);
          await storage.sub(id, "test/sub/3", 2);
        }
        expect(await storage.load()).toBe(15);
        for (let c = 1; c <= 5; c++) {
          const got = await client(`test14a-${c}@identifier.com`);
          expect(got?.subscriptions.map((s) => [s.filter, s.qos])).toEqual([
            ["test/sub/1", 0],
            ["test/sub/2", 1],
            ["test/sub/3", 2],
          ]);
        }
      });

      it("test_16: retainMsgSet, getRetainedTopics, retainMsgRecover and retainMsgRelease", async () => {
        await storage.retainMsgSet("this/is/a/test", 1, "first");
        await storage.retainMsgSet("this/is/a/test", 2, "second");
        await storage.retainMsgSet("this/is/a/test", 1, "third");
        expect(await storage.getRetainedTopics("#")).toEqual(["this/is/a/test"]);
        const b = pattern(74, 16);
        await storage.retainMsgSet("this/is/a/test/b", 2, b);
        expect(sortedStrings(await storage.getRetainedTopics("#"))).toEqual([
          "this/is/a/test",
          "this/is/a/test/b",
        ]);
        expect(await storage.retainMsgRelease("not/retained/at/all")).toBe(false);
        expect(await storage.getRetainedTopics("#")).toHaveLength(2);

        const recovered = await storage.retainMsgRecover("this/is/a/test/b");
        expect(recovered?.qos).toBe(2);
        expect(recovered?.payload.length).toBe(74);
        expect(plain(recovered?.payload)).toEqual(b);
        // Unlike MyQtt, recovering does not consume it.
        expect(plain(await storage.retainMsgRecover("this/is/a/test/b"))).toEqual({
          qos: 2,
          payload: b,
        });
        const first = await storage.retainMsgRecover("this/is/a/test");
        expect(first?.qos).toBe(1);
        expect(text(first?.payload ?? new Uint8Array(0))).toBe("third");

        expect(await storage.retainMsgRelease("this/is/a/test/b")).toBe(true);
        expect(await storage.getRetainedTopics("#")).toEqual(["this/is/a/test"]);
        expect(await storage.retainMsgRelease("this/is/a/test")).toBe(true);
        expect(await storage.getRetainedTopics("#")).toEqual([]);
        expect(await storage.retainMsgRecover("this/is/a/test/b")).toBeNull();
        expect(await storage.retainMsgRelease("this/is/a/test")).toBe(false);
      });

      it("retainMsgSet with an empty payload clears the topic", async () => {
        await storage.retainMsgSet("t", 1, "x");
        await storage.retainMsgSet("t", 1, "");
        expect(await storage.retainMsgRecover("t")).toBeNull();
        expect(await storage.getRetainedTopics("#")).toEqual([]);
      });

      it("sessionRecover returns the subscriptions and queued messages of a client", async () => {
        await storage.sub("c", "a/b", 2);
        await storage.sub("c", "c/#", 0);
        const s1 = await storage.offlinePub("c", "a/b", "one", 1);
        const s2 = await storage.offlinePub("c", "a/b", "two", 2);
        await storage.sub("other", "x", 0);
        const got = await storage.sessionRecover("c");
        expect(got?.clientId).toBe("c");
        expect(normalClient(got)?.subscriptions).toEqual([
          subscription("a/b", 2),
          subscription("c/#", 0),
        ]);
        expect(got?.deliveries.map((d) => [d.seq, text(d.message.payload), d.qos])).toEqual([
          [s1, "one", 1],
          [s2, "two", 2],
        ]);
        expect(await storage.sessionRecover("nobody")).toBeNull();
      });

      it("clear removes everything of a client and nothing else", async () => {
        await storage.sub("c", "a/b", 2);
        await storage.offlinePub("c", "a/b", "one", 1);
        await storage.write({ op: "qos2", clientId: "c", packetId: 3 });
        await storage.sub("other", "a/b", 1);
        await storage.retainMsgSet("a/b", 1, "kept");
        await storage.clear("c");
        expect(await storage.subCount("c")).toBe(0);
        expect(await storage.queuedMessages("c")).toBe(0);
        expect(await storage.sessionRecover("c")).toBeNull();
        expect(await clientIds()).toEqual(["other"]);
        expect(await storage.subCount("other")).toBe(1);
        expect(await storage.getRetainedTopics("a/b")).toEqual(["a/b"]);
      });

      it("releaseMsg removes one offline message and keeps the others", async () => {
        const s1 = await storage.offlinePub("c", "t/1", "one", 0);
        const s2 = await storage.offlinePub("c", "t/2", "two", 1);
        const s3 = await storage.offlinePub("c", "t/3", "three", 2);
        await storage.releaseMsg("c", s2);
        expect(await storage.queuedMessages("c")).toBe(2);
        expect((await storage.readClient("c"))?.deliveries.map((d) => d.seq)).toEqual([s1, s3]);
        await storage.releaseMsg("c", s1);
        await storage.releaseMsg("c", s3);
        expect(await storage.queuedMessages("c")).toBe(0);
        expect(await storage.readClient("c")).toBeNull();
      });

      const emptyIdCalls: Array<[string, (s: Storage) => Promise<unknown>]> = [
        ["sub", (s) => s.sub("", "a/b", 1)],
        ["unsub", (s) => s.unsub("", "a/b")],
        ["subExists", (s) => s.subExists("", "a/b")],
        ["subCount", (s) => s.subCount("")],
        ["queuedMessages", (s) => s.queuedMessages("")],
        ["queuedMessagesQuota", (s) => s.queuedMessagesQuota("")],
        ["offlinePub", (s) => s.offlinePub("", "a/b", "payload", 1)],
        ["releaseMsg", (s) => s.releaseMsg("", 1)],
        ["sessionRecover", (s) => s.sessionRecover("")],
        ["clear", (s) => s.clear("")],
      ];
      for (const [op, call] of emptyIdCalls) {
        it(`${op} with an empty client id rejects with INVALID_CLIENT_ID`, async () => {
          await expectStorageError(() => call(storage), "INVALID_CLIENT_ID");
          expect(await storage.readAll()).toEqual({ clients: [], retained: [] });
        });
      }
    });

    describe("closing", () => {
      it("write() after close() rejects with CLOSED", async () => {
        await storage.close();
        expect(storage.isOpen).toBe(false);
        await expectStorageError(
          () => storage.write({ op: "sub", clientId: "c", sub: subscription("t") }),
          "CLOSED",
        );
        await expectStorageError(() => storage.write([]), "CLOSED");
      });

      it("MyQtt writes after close() reject with CLOSED", async () => {
        await storage.close();
        await expectStorageError(() => storage.sub("c", "t", 1), "CLOSED");
        await expectStorageError(() => storage.clear("c"), "CLOSED");
        await expectStorageError(() => storage.releaseMsg("c", 1), "CLOSED");
        await expectStorageError(() => storage.retainMsgSet("t", 1, "x"), "CLOSED");
      });

      it("close() twice is fine", async () => {
        await storage.close();
        await storage.close();
        expect(storage.isOpen).toBe(false);
      });

      it("writes not yet awaited when close() is called resolve", async () => {
        const pending = [
          storage.write({ op: "sub", clientId: "c", sub: subscription("t") }),
          storage.write({ op: "delivery", clientId: "c", delivery: delivery(1) }),
        ];
        await storage.close();
        const settled = await Promise.allSettled(pending);
        expect(settled.map((s) => s.status)).toEqual(["fulfilled", "fulfilled"]);
      });
    });

    if (options.durable === true) {
      describe("durability (close and reopen)", () => {
        it("everything written is identical after reopen", async () => {
          await storage.write(fixtureOps());
          const expected = normalState(fixtureState());
          expect(normalState(await storage.readAll())).toEqual(expected);
          await reopen();
          expect(normalState(await storage.readAll())).toEqual(expected);
          for (const c of fixtureState().clients) {
            expect(await client(c.clientId), c.clientId).toEqual(normalClient(c));
          }
          for (const m of fixtureState().retained) {
            expect(plain(await storage.readRetained(m.topic)), m.topic).toEqual(plain([m]));
          }
          // Spot checks of what a resumed session relies on.
          const full = await storage.readClient("durable/full");
          expect(full?.deliveries.map((d) => [d.seq, d.state, d.packetId])).toEqual([
            [1, "queued", 0],
            [2, "publish", 65535],
            [3, "pubrel", 1],
            [5, "queued", 0],
            [1_700_000_000_123_000, "queued", 0],
          ]);
          expect(full?.will?.at).toBe(1_700_000_000_999);
          expect(full?.will?.delay).toBe(30);
          expect(
            full?.subscriptions.find((s) => s.filter === "a/+/c")?.subscriptionIdentifier,
          ).toBe(268_435_455);
          expect(full?.deliveries[3]?.message.payload).toBeInstanceOf(Uint8Array);
          expect(full?.deliveries[3]?.message.payload.length).toBe(0);
          expect(plain(full?.deliveries[4]?.message.payload)).toEqual(ALL_BYTES);
          expect(plain(full?.deliveries[4]?.message.properties?.correlationData)).toEqual(
            FULL_PROPERTIES.correlationData,
          );
        });

        it("2000 deliveries across 50 clients all come back after reopen", async () => {
          const writes: Promise<void>[] = [];
          const expected = new Map<string, StoredDelivery[]>();
          for (let c = 0; c < 50; c++) expected.set(`bulk-${c}`, []);
          for (let i = 0; i < 2000; i++) {
            const clientId = `bulk-${i % 50}`;
            const d = delivery(1000 + i, {
              qos: (i % 3) as 0 | 1 | 2,
              state: i % 4 === 0 ? "publish" : "queued",
              packetId: i % 4 === 0 ? (i % 65535) + 1 : 0,
              message: message(`bulk/${i}`, pattern(i % 300, i)),
            });
            expected.get(clientId)?.push(d);
            writes.push(storage.write({ op: "delivery", clientId, delivery: d }));
          }
          await Promise.all(writes);
          await reopen();
          const state = await storage.readAll();
          expect(state.clients).toHaveLength(50);
          for (const [clientId, deliveries] of expected) {
            const got = await storage.readClient(clientId);
            expect(got?.deliveries.map(summary), clientId).toEqual(deliveries.map(summary));
          }
        });

        it("writes after reopen work and survive a second reopen", async () => {
          await storage.write(fixtureOps());
          await reopen();
          await storage.write([
            { op: "sub", clientId: "durable/full", sub: subscription("new/after/reopen", 2) },
            { op: "unsub", clientId: "durable/full", filter: "#" },
            { op: "release", clientId: "durable/full", seq: 1 },
            {
              op: "delivery",
              clientId: "durable/full",
              delivery: delivery(2, { qos: 2, state: "pubrel", packetId: 65535 }),
            },
            { op: "delivery", clientId: "durable/full", delivery: delivery(6) },
            { op: "qos2done", clientId: "durable/full", packetId: 300 },
            { op: "qos2", clientId: "durable/full", packetId: 301 },
            { op: "unwill", clientId: "клиент-😀" },
            { op: "drop", clientId: "A" },
            { op: "qos2done", clientId: "../../etc", packetId: 7 },
            { op: "qos2done", clientId: "../../etc", packetId: 8 },
            { op: "unretain", topic: "$SYS/broker/load" },
            { op: "retain", message: retained("this/is/a/test", new Uint8Array(0)) },
            { op: "retain", message: retained("after/reopen", "new") },
            {
              op: "session",
              clientId: "new-client",
              info: { expiryInterval: 9, disconnectedAt: 0 },
            },
          ]);
          const before = normalState(await storage.readAll());
          await reopen();
          const after = normalState(await storage.readAll());
          expect(after).toEqual(before);
          expect(after.clients.map((c) => c.clientId)).toEqual(
            sortedStrings(["durable/full", "клиент-😀", "a", LONG_ID, "new-client"]),
          );
          const full = await client("durable/full");
          expect(full?.subscriptions.map((s) => s.filter)).toEqual([
            "$share/group/x/#",
            "a/+/c",
            "new/after/reopen",
          ]);
          expect(full?.deliveries.map((d) => [d.seq, d.state, d.packetId])).toEqual([
            [2, "pubrel", 65535],
            [3, "pubrel", 1],
            [5, "queued", 0],
            [6, "queued", 0],
            [1_700_000_000_123_000, "queued", 0],
          ]);
          expect(full?.incomingQoS2).toEqual([1, 301, 65535]);
          expect((await client("клиент-😀"))?.will).toBeNull();
          expect(await storage.readClient("A")).toBeNull();
          expect(await storage.readClient("../../etc")).toBeNull();
          expect(await retainedTopics("#")).toEqual(["after/reopen", "binary/all-bytes"]);
          expect(await retainedTopics("$SYS/#")).toEqual([]);
        });

        it("writes not yet awaited when closing survive reopen", async () => {
          const pending = [
            storage.write({ op: "sub", clientId: "c", sub: subscription("t", 2) }),
            storage.write({ op: "delivery", clientId: "c", delivery: delivery(1) }),
            storage.write({ op: "retain", message: retained("r") }),
          ];
          await reopen();
          await Promise.all(pending);
          expect(await client("c")).toEqual(
            normalClient({
              clientId: "c",
              session: null,
              subscriptions: [subscription("t", 2)],
              deliveries: [delivery(1)],
              incomingQoS2: [],
              will: null,
            }),
          );
          expect(await retainedTopics("#")).toEqual(["r"]);
        });

        it("unusual client ids survive reopen", async () => {
          const ids = [
            "a/b",
            "a%2Fb",
            "..",
            "../../etc",
            "/",
            "a\\b",
            "клиент-😀",
            "\u00e9",
            "e\u0301",
            LONG_ID,
            `${"x".repeat(1999)}y`,
            "A",
            "a",
          ];
          await expectDistinctIds(ids);
          await reopen();
          await expectIdsReadBack(ids);
        });

        it("MyQtt operations see the data after reopen", async () => {
          const id10 = "test10@identifier.com";
          for (let n = 0; n < 100; n++) await storage.sub(id10, `this/is/a/test/${n}`, 1);
          for (let c = 1; c <= 5; c++) {
            for (const n of [1, 2, 3]) await storage.sub(`test14a-${c}`, `test/sub/${n}`, 1);
          }
          const id14 = "test14@identifier.com";
          const payload = "0123456789".repeat(5);
          const seqs: number[] = [];
          for (const n of [1, 2, 3]) {
            seqs.push(await storage.offlinePub(id14, `test/message/${n}`, payload, 0));
          }
          await storage.retainMsgSet("this/is/a/test/b", 2, pattern(74, 16));
          await reopen();
          expect(await storage.subCount(id10)).toBe(100);
          expect(await storage.subExists(id10, "this/is/a/test/49")).toBe(true);
          expect(await storage.subExists(id10, "this/is/a/test/149")).toBe(false);
          expect(await storage.load()).toBe(115);
          expect(await storage.queuedMessages(id14)).toBe(3);
          expect(await storage.queuedMessagesQuota(id14)).toBe(204);
          expect(plain(await storage.retainMsgRecover("this/is/a/test/b"))).toEqual({
            qos: 2,
            payload: pattern(74, 16),
          });
          // The queue goes on after the messages that were there.
          const next = await storage.offlinePub(id14, "test/message/4", payload, 0);
          expect(next).toBeGreaterThan(Math.max(...seqs));
          await storage.releaseMsg(id14, seqs[0]!);
          await reopen();
          expect((await storage.readClient(id14))?.deliveries.map((d) => d.seq)).toEqual([
            seqs[1],
            seqs[2],
            next,
          ]);
        });
      });
    }
  });
}
