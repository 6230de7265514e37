import type { StoredDelivery, StoredMessage } from "@myqtt/storage";
import type { BrokerMessage } from "./message.js";
import type { Outgoing, Pending } from "./session.js";

// Conversions between the broker's objects and what storage holds.

const STORED = Symbol("myqtt.stored");

type WithStored = BrokerMessage & { [STORED]?: StoredMessage };

/** The stored form of a message, made once and shared by every delivery of it. */
export function toStored(msg: BrokerMessage): StoredMessage {
  const cached = (msg as WithStored)[STORED];
  if (cached !== undefined) return cached;
  const stored: StoredMessage = {
    topic: msg.topic,
    payload: msg.payload,
    qos: msg.qos,
    retain: msg.retain,
    properties: msg.properties,
    expiresAt: msg.expiresAt,
    publisher: msg.publisher,
  };
  (msg as WithStored)[STORED] = stored;
  return stored;
}

/** A stored message back as the broker's message. */
export function fromStored(m: StoredMessage): BrokerMessage {
  const msg: WithStored = {
    topic: m.topic,
    payload: m.payload,
    qos: m.qos,
    retain: m.retain,
    properties: m.properties ?? undefined,
    expiresAt: m.expiresAt,
    publisher: m.publisher,
    size: -1,
    holders: 0,
    encodedV4: undefined,
    encodedV5: undefined,
  };
  msg[STORED] = m;
  return msg;
}

/** The stored form of a queued (packetId 0) or sent delivery. */
export function toDelivery(
  d: Pending | Outgoing,
  state: StoredDelivery["state"],
  packetId: number,
): StoredDelivery {
  return {
    seq: d.seq,
    message: toStored(d.msg),
    qos: d.qos,
    retain: d.retain,
    subscriptionIds: d.subscriptionIds,
    state,
    packetId,
  };
}
