import { hasWildcard, match } from "@myqtt/codec";
import type { StorageLog, StoredClient, StoredDelivery, StoredMessage } from "@myqtt/storage";
import type { ChainableCommander, Redis } from "ioredis";
import {
  decodeDelivery,
  decodeRetained,
  decodeSession,
  decodeSubscription,
  decodeWill,
} from "./encoding.js";
import { globPrefix, type KeyLayout } from "./keys.js";

/** How many entries one SCAN step asks for. */
const SCAN_COUNT = 500;
/** A cap on SCAN steps, so a misbehaving server cannot keep a read looping forever. */
const MAX_SCAN_STEPS = 10_000_000;

/** The five replies of one client's keys, as queued by `queueClientRead`. */
type ClientReplies = [
  session: Buffer | null,
  subs: Buffer[],
  msgs: Buffer[],
  qos2: string[],
  will: Buffer | null,
];

/** Queues the reads of every key of `clientId` (5 replies, see `clientFrom`). */
export function queueClientRead(
  batch: ChainableCommander,
  keys: KeyLayout,
  clientId: string,
): void {
  const k = keys.client(clientId);
  batch
    .getBuffer(k.session)
    .hvalsBuffer(k.subs)
    .hvalsBuffer(k.msgs)
    .smembers(k.qos2)
    .getBuffer(k.will);
}

/** Turns the replies of one client's keys into its record; null when it has nothing stored. */
export function clientFrom(
  clientId: string,
  replies: readonly [Error | null, unknown][],
  log: StorageLog,
): StoredClient | null {
  const values = replies.map(([error, value]) => {
    if (error !== null) throw error;
    return value;
  }) as ClientReplies;
  const [session, subs, msgs, qos2, will] = values;
  const subscriptions = decodeAll(subs, decodeSubscription, clientId, log);
  const deliveries = decodeAll(msgs, decodeDelivery, clientId, log).sort(
    (a: StoredDelivery, b: StoredDelivery) => a.seq - b.seq,
  );
  const incomingQoS2 = qos2.map(Number).sort((a, b) => a - b);
  const client: StoredClient = {
    clientId,
    session: session === null ? null : (decodeOne(session, decodeSession, clientId, log) ?? null),
    subscriptions,
    deliveries,
    incomingQoS2,
    will: will === null ? null : (decodeOne(will, decodeWill, clientId, log) ?? null),
  };
  const empty =
    client.session === null &&
    client.will === null &&
    subscriptions.length === 0 &&
    deliveries.length === 0 &&
    incomingQoS2.length === 0;
  return empty ? null : client;
}

/** Every client id listed in the clients set (SSCAN: does not block the server). */
export async function listClients(redis: Redis, keys: KeyLayout): Promise<string[]> {
  const ids = new Set<string>();
  let cursor = "0";
  for (let step = 0; step < MAX_SCAN_STEPS; step++) {
    const [next, members] = await redis.sscanBuffer(keys.clients, cursor, "COUNT", SCAN_COUNT);
    for (const m of members) ids.add(m.toString("utf8"));
    cursor = next.toString();
    if (cursor === "0") return [...ids];
  }
  throw new Error(`SSCAN of ${keys.clients} did not finish`);
}

/** The retained messages whose topic matches `filter`. */
export async function retainedMatching(
  redis: Redis,
  keys: KeyLayout,
  filter: string,
  log: StorageLog,
): Promise<StoredMessage[]> {
  if (!hasWildcard(filter)) {
    const value = await redis.hgetBuffer(keys.retained, filter);
    const msg = value === null ? undefined : decodeOne(value, decodeRetained, filter, log);
    return msg === undefined ? [] : [msg];
  }
  // The literal part before the first wildcard level narrows the scan; `match` decides.
  const literal = filter.slice(0, filter.search(/[+#]/)).replace(/\/$/, "");
  const out = await scanRetained(redis, keys, literal, log);
  return out.filter((m) => match(filter, m.topic));
}

/** Every retained message whose topic starts with `literal` ("" for all). */
export async function scanRetained(
  redis: Redis,
  keys: KeyLayout,
  literal: string,
  log: StorageLog,
): Promise<StoredMessage[]> {
  const found = new Map<string, StoredMessage>();
  let cursor = "0";
  for (let step = 0; step < MAX_SCAN_STEPS; step++) {
    const [next, entries] =
      literal === ""
        ? await redis.hscanBuffer(keys.retained, cursor, "COUNT", SCAN_COUNT)
        : await redis.hscanBuffer(
            keys.retained,
            cursor,
            "MATCH",
            globPrefix(literal),
            "COUNT",
            SCAN_COUNT,
          );
    for (let i = 0; i + 1 < entries.length; i += 2) {
      const topic = entries[i]!.toString("utf8");
      // SCAN may return an entry twice; keep one.
      if (found.has(topic)) continue;
      const msg = decodeOne(entries[i + 1]!, decodeRetained, topic, log);
      if (msg !== undefined) found.set(topic, msg);
    }
    cursor = next.toString();
    if (cursor === "0") return [...found.values()];
  }
  throw new Error(`HSCAN of ${keys.retained} did not finish`);
}

/** Decodes a value; a damaged one is reported and left out rather than failing the whole read. */
function decodeOne<T>(
  value: Buffer,
  decode: (v: Buffer) => T,
  owner: string,
  log: StorageLog,
): T | undefined {
  try {
    return decode(value);
  } catch (error) {
    log(
      "warning",
      `redis storage: skipped a damaged value of ${JSON.stringify(owner)}: ${String(error)}`,
    );
    return undefined;
  }
}

function decodeAll<T>(
  values: Buffer[],
  decode: (v: Buffer) => T,
  owner: string,
  log: StorageLog,
): T[] {
  const out: T[] = [];
  for (const v of values) {
    const item = decodeOne(v, decode, owner, log);
    if (item !== undefined) out.push(item);
  }
  return out;
}
