import {
  encode,
  PacketType,
  type PublishPacket,
  type PublishProperties,
  type QoS,
} from "@myqtt/codec";

/**
 * An application message inside the broker: what was published, without the parts that belong
 * to one connection (packet id, topic alias, subscription identifiers). One object is shared by
 * every delivery of a publish.
 */
export interface BrokerMessage {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  /** Forwarded properties; messageExpiryInterval is kept as `expiresAt` instead. */
  readonly properties: PublishProperties | undefined;
  /** Epoch milliseconds after which the message is dropped; 0 for never. */
  readonly expiresAt: number;
  /** The client id of the publisher, for No Local; null for messages the broker made. */
  readonly publisher: string | null;
  /** Bytes counted against queue limits. */
  readonly size: number;
  /** Queue, in-flight and retained entries that hold it (see MessageMemory). */
  holders?: number;
  /** QoS 0 encodings shared by every plain delivery, by protocol level (4 covers 3 too). */
  encodedV4?: Uint8Array;
  encodedV5?: Uint8Array;
}

const FORWARDED: readonly (keyof PublishProperties)[] = [
  "payloadFormatIndicator",
  "contentType",
  "responseTopic",
  "correlationData",
  "userProperties",
];

/** Builds the broker's message from a received PUBLISH (topic alias already resolved). */
export function messageFromPublish(
  packet: PublishPacket,
  topic: string,
  publisher: string | null,
  now: number,
): BrokerMessage {
  let properties: PublishProperties | undefined;
  let expiresAt = 0;
  const p = packet.properties;
  if (p !== undefined) {
    for (const key of FORWARDED) {
      const value = p[key];
      if (value !== undefined) (properties ??= {})[key] = value as never;
    }
    if (p.messageExpiryInterval !== undefined) expiresAt = now + p.messageExpiryInterval * 1000;
  }
  return {
    topic,
    payload: packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    properties,
    expiresAt,
    publisher,
    size: packet.payload.length + topic.length + 16,
    holders: 0,
  };
}

/** A message the broker makes itself (a will, an admin reply). */
export function makeMessage(
  topic: string,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  properties: PublishProperties | undefined,
  publisher: string | null,
  now: number,
): BrokerMessage {
  return messageFromPublish(
    {
      type: PacketType.PUBLISH,
      topic,
      payload,
      qos,
      retain,
      dup: false,
      ...(properties ? { properties } : {}),
    },
    topic,
    publisher,
    now,
  );
}

/** Whether the message expired (v5 3.3.2.3.3). */
export function isExpired(msg: BrokerMessage, now: number): boolean {
  return msg.expiresAt !== 0 && now >= msg.expiresAt;
}

/** The properties of one delivery: forwarded ones, remaining expiry, subscription ids. */
export function deliveryProperties(
  msg: BrokerMessage,
  subscriptionIds: readonly number[] | null,
  now: number,
): PublishProperties | undefined {
  if (msg.expiresAt === 0 && subscriptionIds === null) return msg.properties;
  const out: PublishProperties = { ...msg.properties };
  if (msg.expiresAt !== 0)
    out.messageExpiryInterval = Math.max(0, Math.ceil((msg.expiresAt - now) / 1000));
  if (subscriptionIds !== null) out.subscriptionIdentifiers = subscriptionIds.slice();
  return out;
}

/**
 * The encoded QoS 0 delivery shared by all receivers that need nothing of their own (no
 * subscription id, no alias, no expiry to adjust), made once per protocol family.
 */
export function sharedQoS0Encoding(msg: BrokerMessage, v5: boolean): Uint8Array {
  const packet: PublishPacket = {
    type: PacketType.PUBLISH,
    topic: msg.topic,
    payload: msg.payload,
    qos: 0,
    retain: false,
    dup: false,
  };
  if (v5) {
    if (msg.properties !== undefined) packet.properties = msg.properties;
    return encode(packet, { protocolVersion: 5 });
  }
  return encode(packet, { protocolVersion: 4 });
}
