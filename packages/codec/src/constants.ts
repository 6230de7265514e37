/** MQTT control packet types (the high nibble of the first byte). */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  /** MQTT 5.0 only. */
  AUTH: 15,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

const packetTypeNames: readonly string[] = [
  "RESERVED",
  "CONNECT",
  "CONNACK",
  "PUBLISH",
  "PUBACK",
  "PUBREC",
  "PUBREL",
  "PUBCOMP",
  "SUBSCRIBE",
  "SUBACK",
  "UNSUBSCRIBE",
  "UNSUBACK",
  "PINGREQ",
  "PINGRESP",
  "DISCONNECT",
  "AUTH",
];

/** The upper-case name of a packet type ("PUBLISH"), or "UNKNOWN". */
export function packetTypeName(type: number): string {
  return packetTypeNames[type] ?? "UNKNOWN";
}

/** Protocol levels: 3 is MQTT 3.1 ("MQIsdp"), 4 is MQTT 3.1.1, 5 is MQTT 5.0. */
export const ProtocolVersion = {
  MQTT_3_1: 3,
  MQTT_3_1_1: 4,
  MQTT_5: 5,
} as const;
export type ProtocolVersion = (typeof ProtocolVersion)[keyof typeof ProtocolVersion];

/** Quality of service levels. */
export const QoS = {
  AT_MOST_ONCE: 0,
  AT_LEAST_ONCE: 1,
  EXACTLY_ONCE: 2,
} as const;
export type QoS = (typeof QoS)[keyof typeof QoS];

/** Retain Handling subscription option (MQTT 5.0, 3.8.3.1). */
export const RetainHandling = {
  /** Send retained messages at the time of the subscribe. */
  SEND_ON_SUBSCRIBE: 0,
  /** Send retained messages only if the subscription did not exist yet. */
  SEND_IF_NEW_SUBSCRIPTION: 1,
  /** Do not send retained messages. */
  DO_NOT_SEND: 2,
} as const;
export type RetainHandling = (typeof RetainHandling)[keyof typeof RetainHandling];

/** The largest value a remaining length (variable byte integer) can hold. */
export const MAX_REMAINING_LENGTH = 268_435_455;
/** The largest possible packet: 1 type byte, 4 length bytes, the largest body. */
export const MAX_PACKET_SIZE = 1 + 4 + MAX_REMAINING_LENGTH;
/** Strings and binary fields are prefixed with a 2-byte length. */
export const MAX_STRING_LENGTH = 65_535;
/** Packet identifiers are 16-bit and never 0. */
export const MAX_PACKET_ID = 65_535;
