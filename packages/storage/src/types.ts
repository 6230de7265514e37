import type { PublishProperties, QoS, RetainHandling } from "@myqtt/codec";

/**
 * How far a write has gone when its promise resolves: `fsync` (on disk, survives a power cut or
 * kill -9), `async` (handed to the operating system: survives kill -9 of the process, not a
 * power cut), `none` (in memory, written soon: a crash loses the last writes).
 */
export type Durability = "fsync" | "async" | "none";

/** An application message as stored: what was published, not one delivery of it. */
export interface StoredMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  /** Forwarded MQTT 5.0 properties (message expiry is kept as `expiresAt`). */
  readonly properties?: PublishProperties | undefined;
  /** Epoch milliseconds after which the message is dropped; 0 for never. */
  readonly expiresAt: number;
  /** Client id of the publisher (for No Local), null for messages the broker made. */
  readonly publisher: string | null;
}

/** One subscription of a persistent session. */
export interface StoredSubscription {
  /** The filter as subscribed, `$share/<group>/` included. */
  readonly filter: string;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: RetainHandling;
  readonly subscriptionIdentifier?: number | undefined;
}

/**
 * A message on its way to one client: queued (not sent yet) or in flight (sent with a packet
 * id, waiting for PUBACK / PUBREC, or PUBREL sent and waiting for PUBCOMP).
 */
export interface StoredDelivery {
  /** Unique per client and increasing: the order of the queue. */
  readonly seq: number;
  readonly message: StoredMessage;
  /** The QoS of this delivery (the subscription may have lowered it). */
  readonly qos: QoS;
  readonly retain: boolean;
  readonly subscriptionIds: readonly number[] | null;
  /** "queued": not sent; "publish": sent as `packetId`; "pubrel": PUBREL sent for `packetId`. */
  readonly state: "queued" | "publish" | "pubrel";
  /** The packet id once sent, else 0. */
  readonly packetId: number;
}

/** What a persistent session is, apart from its subscriptions and messages. */
export interface StoredSessionInfo {
  /** Seconds the session outlives its connection; 0xFFFFFFFF for never ending. */
  readonly expiryInterval: number;
  /** Epoch ms at which the client went away; 0 while it was connected. */
  readonly disconnectedAt: number;
}

/** A will message waiting: for its delay, or for its connection to end. */
export interface StoredWill {
  readonly message: StoredMessage;
  /** Epoch ms at which it is published; 0 while its connection is alive (armed). */
  readonly at: number;
  /** Will Delay Interval in seconds, applied when an armed will's connection is lost. */
  readonly delay: number;
}

/** Everything stored for one client id. */
export interface StoredClient {
  readonly clientId: string;
  readonly session: StoredSessionInfo | null;
  readonly subscriptions: readonly StoredSubscription[];
  /** Queued and in-flight deliveries, by `seq`. */
  readonly deliveries: readonly StoredDelivery[];
  /** Packet ids of QoS 2 messages received and not yet released by PUBREL. */
  readonly incomingQoS2: readonly number[];
  readonly will: StoredWill | null;
}

/** Everything a backend holds, as read at start. */
export interface StoredState {
  readonly clients: readonly StoredClient[];
  readonly retained: readonly StoredMessage[];
}

/**
 * One change. Every operation sets or removes one keyed value, so replaying a change twice
 * gives the same state (which is what makes recovery after a crash during compaction safe).
 */
export type StorageOp =
  | { readonly op: "session"; readonly clientId: string; readonly info: StoredSessionInfo }
  /** Removes everything of the client id: session, subscriptions, deliveries, QoS 2 ids, will. */
  | { readonly op: "drop"; readonly clientId: string }
  | { readonly op: "sub"; readonly clientId: string; readonly sub: StoredSubscription }
  | { readonly op: "unsub"; readonly clientId: string; readonly filter: string }
  /** Adds or replaces the delivery with the same `seq`. */
  | { readonly op: "delivery"; readonly clientId: string; readonly delivery: StoredDelivery }
  | { readonly op: "release"; readonly clientId: string; readonly seq: number }
  | { readonly op: "qos2"; readonly clientId: string; readonly packetId: number }
  | { readonly op: "qos2done"; readonly clientId: string; readonly packetId: number }
  | { readonly op: "will"; readonly clientId: string; readonly will: StoredWill }
  | { readonly op: "unwill"; readonly clientId: string }
  /** Sets the retained message of `message.topic`; an empty payload clears it. */
  | { readonly op: "retain"; readonly message: StoredMessage }
  | { readonly op: "unretain"; readonly topic: string };

/** Where a backend reports what it could not read or write (a damaged file, a lost link). */
export type StorageLog = (level: "debug" | "warning" | "critical", message: string) => void;
