/**
 * Limits and behaviour of a broker. Every limit has a safe default and is enforced before the
 * memory it guards is taken. Set them with `createListener(ctx, host, port, options)` (the first
 * listener of a context fixes the broker-wide ones) or `configureBroker(ctx, options)`.
 */
export interface BrokerOptions {
  /** Largest packet accepted from a client, fixed header included (default 16 MiB). */
  maximumPacketSize?: number;
  /** Largest first packet (the CONNECT), so unauthenticated peers cannot make us buffer much (default 64 KiB). */
  maximumConnectPacketSize?: number;
  /** Milliseconds a new connection has to send its CONNECT (default 10 s). */
  connectTimeoutMs?: number;
  /** QoS 1/2 messages in flight to one client at most; fewer if the client asks (default 256). */
  maxInflight?: number;
  /** Receive Maximum announced to 5.0 clients: their QoS 1/2 publishes in flight to us (default 1024). */
  receiveMaximum?: number;
  /** Messages queued for one session (offline, or waiting for the in-flight window) (default 1000). */
  maxQueuedMessages?: number;
  /**
   * Bytes queued for one session (default 64 MiB), each message counted as its payload, topic
   * and the properties it carries to 5.0 subscribers (user properties, correlation data,
   * response topic, content type; a user property also 112 bytes for its pair), plus 16.
   */
  maxQueuedBytes?: number;
  /**
   * Bytes of messages the broker holds for later, all sessions together (default 1 GiB):
   * queued, in flight to a client until it acknowledges, and retained. A message held by many
   * sessions counts its size (as for maxQueuedBytes) and 384 bytes once, and 256 bytes per
   * hold: what the heap was measured to take with FileStorage (232 bytes a hold; 70 without
   * storage). A message held for long (retained, queued for a client that is away,
   * unacknowledged for a second, in a queue that has not moved for a second) keeps only its
   * own bytes, not the network chunk it arrived in. A delivery that would go beyond it is dropped for that session as from a full queue;
   * a retained message beyond it is delivered but not retained.
   */
  maxTotalMessageBytes?: number;
  /** Queue QoS 0 messages for offline persistent sessions too, as MyQtt does (default true). */
  queueQoS0?: boolean;
  /**
   * Bytes of storage writes that may wait to be committed (default 64 MiB; `Storage.pendingBytes`
   * counts them: each change its payload, topic and strings plus 64 to 272 bytes). A client
   * whose packet wrote while the storage is above it has its reading paused until the storage
   * is back under half of it: publishers (QoS 0 too: queued for offline sessions, they are
   * written with nobody waiting); and a session stops taking stored messages from its queue
   * (each writes again as it goes out). Other clients, and whatever writes nothing, go on.
   * Memory storage never waits.
   */
  maxStoragePendingBytes?: number;
  /**
   * Bytes waiting to be written to one client (default 8 MiB): beyond, its QoS 0 messages are
   * dropped and the broker stops reading from it until it reads what it was sent.
   */
  maxOutgoingBytes?: number;
  /** Milliseconds a client may leave written bytes unread before it is disconnected (default 30 s). */
  writeTimeoutMs?: number;
  /** Largest topic name or filter in bytes, and largest shared subscription group name (default 4096). */
  maxTopicLength?: number;
  /** Most levels in a topic name or filter (default 128). */
  maxTopicLevels?: number;
  /**
   * Topic filters one SUBSCRIBE or UNSUBSCRIBE may carry (default 1000). A packet with more
   * closes its connection (5.0: DISCONNECT 0x97 Quota exceeded) as soon as the decoder counts
   * one too many, before the rest of it is decoded.
   */
  maxTopicFiltersPerPacket?: number;
  /**
   * Subscriptions one session may hold (default 10,000). A SUBSCRIBE for a new filter beyond
   * it is refused in SUBACK (5.0: 0x97 Quota exceeded, 3.1.1: 0x80); one that replaces an
   * existing subscription is not.
   */
  maxSubscriptionsPerClient?: number;
  /**
   * Memory all subscriptions of all sessions may take together (default 512 MiB, about a
   * million short filters), each counted as its filter's length (twice that when a character
   * is beyond Latin-1), plus 512 bytes, plus 280 bytes for each level of a filter with a
   * wildcard (its nodes in the subscription trie: a 128-level wildcard filter takes about
   * 31 KB). A SUBSCRIBE for a new filter beyond it is refused in SUBACK as for
   * maxSubscriptionsPerClient, so that clients cannot subscribe the broker out of memory
   * however many sessions they open.
   */
  maxTotalSubscriptionBytes?: number;
  /**
   * User properties one packet may carry in each of its property lists (default 1000). One
   * more closes the connection (DISCONNECT 0x97 Quota exceeded) before it is read: a message
   * is re-encoded with its properties for every subscriber that needs its own copy.
   */
  maxUserPropertiesPerPacket?: number;
  /** Connections one listener accepts at a time (default 50,000). */
  maxConnections?: number;
  /** Topic Alias Maximum announced to 5.0 clients (default 64; 0 turns inbound aliases off). */
  topicAliasMaximum?: number;
  /** Use topic aliases towards 5.0 clients that accept them (default true). */
  outboundTopicAliases?: boolean;
  /** Largest keep alive accepted, in seconds; a larger one is lowered with Server Keep Alive (default 65535). */
  maxKeepAlive?: number;
  /**
   * Longest a session outlives its connection, in seconds (default 0xFFFFFFFF: no limit). It
   * caps the session expiry a 5.0 client asks for, and ends the session of a 3.1/3.1.1 client
   * with clean session 0 that stayed away that long (3.1.1 lets the administrator discard
   * sessions; Mosquitto calls this persistent_client_expiration). 0 makes every session end
   * with its connection.
   */
  maxSessionExpiryInterval?: number;
  /**
   * Sessions the broker holds, connected or not (default 100,000). Beyond it, a CONNECT that
   * asks for a new persistent session is refused (5.0: CONNACK 0x97 Quota exceeded, 3.1.1:
   * 3 Server unavailable); a client id that has a session may always come back to it, and
   * clean sessions, bounded by maxConnections instead, are still accepted.
   */
  maxSessions?: number;
  /**
   * What a CONNECT with the client id of a live connection does: "takeover" (the specification:
   * the old connection is closed, 0x8E) or "reject" (MyQtt: CONNACK 2 / 0x85).
   */
  duplicateClientId?: "takeover" | "reject";
  /** Keep retained messages (default true; false announces Retain Available = 0 to 5.0 clients). */
  retainAvailable?: boolean;
}

export type ResolvedOptions = Required<BrokerOptions>;

export const DEFAULT_OPTIONS: ResolvedOptions = {
  maximumPacketSize: 16 * 1024 * 1024,
  maximumConnectPacketSize: 64 * 1024,
  connectTimeoutMs: 10_000,
  maxInflight: 256,
  receiveMaximum: 1024,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 64 * 1024 * 1024,
  maxTotalMessageBytes: 1024 * 1024 * 1024,
  queueQoS0: true,
  maxStoragePendingBytes: 64 * 1024 * 1024,
  maxOutgoingBytes: 8 * 1024 * 1024,
  writeTimeoutMs: 30_000,
  maxTopicLength: 4096,
  maxTopicLevels: 128,
  maxTopicFiltersPerPacket: 1000,
  maxSubscriptionsPerClient: 10_000,
  maxTotalSubscriptionBytes: 512 * 1024 * 1024,
  maxUserPropertiesPerPacket: 1000,
  maxConnections: 50_000,
  topicAliasMaximum: 64,
  outboundTopicAliases: true,
  maxKeepAlive: 65_535,
  maxSessionExpiryInterval: 0xffffffff,
  maxSessions: 100_000,
  duplicateClientId: "takeover",
  retainAvailable: true,
};

const RANGES: Partial<Record<keyof BrokerOptions, [number, number]>> = {
  maximumPacketSize: [64, 268_435_460],
  maximumConnectPacketSize: [64, 268_435_460],
  connectTimeoutMs: [1, 3_600_000],
  maxInflight: [1, 65_535],
  receiveMaximum: [1, 65_535],
  maxQueuedMessages: [0, 10_000_000],
  maxQueuedBytes: [0, Number.MAX_SAFE_INTEGER],
  maxTotalMessageBytes: [0, Number.MAX_SAFE_INTEGER],
  maxStoragePendingBytes: [1024, Number.MAX_SAFE_INTEGER],
  maxOutgoingBytes: [1024, Number.MAX_SAFE_INTEGER],
  writeTimeoutMs: [1, 3_600_000],
  maxTopicLength: [1, 65_535],
  maxTopicLevels: [1, 65_535],
  maxTopicFiltersPerPacket: [1, 10_000_000],
  maxSubscriptionsPerClient: [1, 10_000_000],
  maxTotalSubscriptionBytes: [0, Number.MAX_SAFE_INTEGER],
  maxUserPropertiesPerPacket: [0, 10_000_000],
  maxConnections: [1, 10_000_000],
  topicAliasMaximum: [0, 65_535],
  maxKeepAlive: [0, 65_535],
  maxSessionExpiryInterval: [0, 0xffffffff],
  maxSessions: [1, 100_000_000],
};

/** Merges `options` over the defaults; throws RangeError for a value out of range. */
export function resolveOptions(
  options: BrokerOptions = {},
  base: ResolvedOptions = DEFAULT_OPTIONS,
): ResolvedOptions {
  const out = { ...base };
  for (const [key, value] of Object.entries(options) as [keyof BrokerOptions, unknown][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_OPTIONS)) throw new RangeError(`unknown broker option ${key}`);
    const range = RANGES[key];
    if (range !== undefined) {
      if (
        typeof value !== "number" ||
        !Number.isInteger(value) ||
        value < range[0] ||
        value > range[1]
      ) {
        throw new RangeError(
          `broker option ${key} must be an integer in ${range[0]}..${range[1]}, got ${String(value)}`,
        );
      }
    } else if (key === "duplicateClientId") {
      if (value !== "takeover" && value !== "reject") {
        throw new RangeError(`broker option duplicateClientId must be "takeover" or "reject"`);
      }
    } else if (typeof value !== "boolean") {
      throw new RangeError(`broker option ${key} must be a boolean`);
    }
    (out as Record<string, unknown>)[key] = value;
  }
  return out;
}
