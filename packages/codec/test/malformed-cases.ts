// Hand-written wire bytes the decoder must refuse (or, for ACCEPTED, must take), and encoder input
// it must refuse. Expected classes and reason codes follow MQTT 3.1.1 and 5.0 ("v5 x.y" = 5.0 section).
import {
  type EncodeOptions,
  InvalidPacketError,
  InvalidTopicError,
  MalformedPacketError,
  type MqttError,
  type MqttErrorCode,
  type Packet,
  PacketTooLargeError,
  ProtocolError,
  type ProtocolVersion,
  UnsupportedProtocolError,
} from "../src/index.js";

export type ErrorClass = abstract new (...args: never[]) => MqttError;

export interface RefusedRow {
  name: string;
  version: ProtocolVersion;
  hex: string;
  error: ErrorClass;
  code: MqttErrorCode;
  reasonCode: number;
  /** More properties the error must have (protocolLevel, topic, ...). */
  fields?: Record<string, unknown>;
  /** The bytes are not one whole frame: only decodePacket can tell (not a streaming Decoder). */
  whole?: true;
}

export interface AcceptedRow {
  name: string;
  version: ProtocolVersion;
  hex: string;
  /** Fields the decoded packet must have (Uint8Arrays as number arrays). */
  packet: Record<string, unknown>;
}

const M = MalformedPacketError;
const P = ProtocolError;
const T = InvalidTopicError;
const U = UnsupportedProtocolError;

function malformed(
  name: string,
  version: ProtocolVersion,
  hex: string,
  code: MqttErrorCode,
  extra: Partial<RefusedRow> = {},
): RefusedRow {
  return { name, version, hex, error: M, code, reasonCode: 0x81, ...extra };
}

function protocol(
  name: string,
  version: ProtocolVersion,
  hex: string,
  code: MqttErrorCode,
  extra: Partial<RefusedRow> = {},
): RefusedRow {
  return { name, version, hex, error: P, code, reasonCode: 0x82, ...extra };
}

function badTopic(name: string, version: ProtocolVersion, hex: string, topic: string): RefusedRow {
  return {
    name,
    version,
    hex,
    error: T,
    code: "INVALID_TOPIC_NAME",
    reasonCode: 0x90,
    fields: { topic },
  };
}

function unsupported(
  name: string,
  hex: string,
  code: "UNSUPPORTED_PROTOCOL_NAME" | "UNSUPPORTED_PROTOCOL_VERSION",
  protocolName: string,
  protocolLevel: number,
): RefusedRow {
  return {
    name,
    version: 4,
    hex,
    error: U,
    code,
    reasonCode: 0x84,
    fields: { protocolName, protocolLevel },
  };
}

// CONNECT prefixes up to and including the keep alive (10 bytes for "MQTT", 12 for "MQIsdp"):
//   v4  00 04 4D 51 54 54 04 <flags> 00 3C
//   v5  00 04 4D 51 54 54 05 <flags> 00 3C   (then a property length)
//   v3  00 06 4D 51 49 73 64 70 03 <flags> 00 3C

export const REFUSED: RefusedRow[] = [
  // --- packet types [MQTT-2.1.3-1]; AUTH exists only in 5.0
  malformed("reserved packet type 0", 4, "00 00", "INVALID_PACKET_TYPE"),
  malformed("reserved packet type 0", 5, "00 00", "INVALID_PACKET_TYPE"),
  malformed("reserved packet type 0 with flags and a body", 3, "0F 01 00", "INVALID_PACKET_TYPE"),
  malformed("AUTH (15) in 3.1.1", 4, "F0 00", "INVALID_PACKET_TYPE"),
  malformed("AUTH (15) in 3.1", 3, "F0 00", "INVALID_PACKET_TYPE"),
  malformed("AUTH (15) with a body in 3.1.1", 4, "F0 02 00 00", "INVALID_PACKET_TYPE"),

  // --- reserved fixed header flags on every non-PUBLISH type [MQTT-2.1.3-1]
  malformed("CONNECT flags 0x1", 4, "11 0C 00 04 4D 51 54 54 04 02 00 3C 00 00", "RESERVED_FLAGS"),
  malformed(
    "CONNECT flags 0x8",
    5,
    "18 0D 00 04 4D 51 54 54 05 02 00 3C 00 00 00",
    "RESERVED_FLAGS",
  ),
  malformed("CONNACK flags 0x1", 4, "21 02 00 00", "RESERVED_FLAGS"),
  malformed("PUBACK flags 0x1", 4, "41 02 00 01", "RESERVED_FLAGS"),
  malformed("PUBACK flags 0x8 (DUP)", 5, "48 02 00 01", "RESERVED_FLAGS"),
  malformed("PUBREC flags 0x1", 4, "51 02 00 01", "RESERVED_FLAGS"),
  malformed("PUBREL flags 0x0", 4, "60 02 00 01", "RESERVED_FLAGS"),
  malformed("PUBREL flags 0x3", 5, "63 02 00 01", "RESERVED_FLAGS"),
  malformed("PUBCOMP flags 0x1", 4, "71 02 00 01", "RESERVED_FLAGS"),
  malformed("SUBSCRIBE flags 0x0", 4, "80 06 00 01 00 01 61 00", "RESERVED_FLAGS"),
  malformed("SUBSCRIBE flags 0x3", 5, "83 07 00 01 00 00 01 61 00", "RESERVED_FLAGS"),
  malformed("SUBACK flags 0x1", 4, "91 03 00 01 00", "RESERVED_FLAGS"),
  malformed("UNSUBSCRIBE flags 0x0", 4, "A0 05 00 01 00 01 61", "RESERVED_FLAGS"),
  malformed("UNSUBACK flags 0x1", 4, "B1 02 00 01", "RESERVED_FLAGS"),
  malformed("PINGREQ flags 0x1", 4, "C1 00", "RESERVED_FLAGS"),
  malformed("PINGRESP flags 0x2", 4, "D2 00", "RESERVED_FLAGS"),
  malformed("DISCONNECT flags 0x1", 4, "E1 00", "RESERVED_FLAGS"),
  malformed("AUTH flags 0x1", 5, "F1 00", "RESERVED_FLAGS"),
  // Only MQTT 3.1 set DUP on PUBREL/SUBSCRIBE/UNSUBSCRIBE (see ACCEPTED); 3.1.1 and 5.0 refuse it.
  malformed("PUBREL with DUP (0x6A) in 3.1.1", 4, "6A 02 00 01", "RESERVED_FLAGS"),
  malformed("SUBSCRIBE with DUP (0x8A) in 3.1.1", 4, "8A 06 00 01 00 01 61 00", "RESERVED_FLAGS"),
  malformed("UNSUBSCRIBE with DUP (0xAA) in 3.1.1", 4, "AA 05 00 01 00 01 61", "RESERVED_FLAGS"),
  malformed("SUBSCRIBE with DUP (0x8A) in 5.0", 5, "8A 07 00 01 00 00 01 61 00", "RESERVED_FLAGS"),
  malformed("PUBACK with DUP (0x4A) in 3.1", 3, "4A 02 00 01", "RESERVED_FLAGS"),
  malformed("PUBREL with DUP but QoS 0 bits (0x68) in 3.1", 3, "68 02 00 01", "RESERVED_FLAGS"),

  // --- PUBLISH flags [MQTT-3.3.1-4] [MQTT-3.3.1-2]
  malformed("PUBLISH QoS 3", 4, "36 05 00 01 61 00 01", "INVALID_QOS"),
  malformed("PUBLISH QoS 3 with DUP and RETAIN", 5, "3F 06 00 01 61 00 01 00", "INVALID_QOS"),
  malformed("PUBLISH DUP on QoS 0", 4, "38 03 00 01 61", "INVALID_DUP_FLAG"),
  malformed("PUBLISH DUP on QoS 0 with RETAIN", 5, "39 04 00 01 61 00", "INVALID_DUP_FLAG"),

  // --- remaining length: at most 4 bytes, minimally encoded in 5.0 [MQTT-1.5.5-1]
  malformed(
    "remaining length with a 5th byte",
    4,
    "C0 FF FF FF FF 7F",
    "REMAINING_LENGTH_TOO_LONG",
  ),
  malformed(
    "remaining length with a 5th byte",
    5,
    "30 80 80 80 80 01",
    "REMAINING_LENGTH_TOO_LONG",
  ),
  malformed("remaining length 0 encoded in 2 bytes", 5, "C0 80 00", "NON_MINIMAL_VARINT"),

  // --- bodies that end before their fields do
  malformed("PUBACK with a 1-byte body", 4, "40 01 00", "TRUNCATED_PACKET"),
  malformed("CONNACK with a 1-byte body", 4, "20 01 00", "TRUNCATED_PACKET"),
  malformed("PUBLISH topic length past the body", 4, "30 03 00 05 61", "TRUNCATED_PACKET"),
  malformed("PUBLISH QoS 1 without a packet id", 4, "32 03 00 01 61", "TRUNCATED_PACKET"),
  malformed(
    "CONNECT ending inside the client id",
    4,
    "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 05 61",
    "TRUNCATED_PACKET",
  ),
  malformed(
    "CONNECT ending before the keep alive",
    4,
    "10 08 00 04 4D 51 54 54 04 02",
    "TRUNCATED_PACKET",
  ),
  malformed(
    "CONNECT with the will flag but no will",
    4,
    "10 0D 00 04 4D 51 54 54 04 06 00 3C 00 01 61",
    "TRUNCATED_PACKET",
  ),
  malformed("SUBSCRIBE filter without its options", 4, "82 05 00 01 00 01 61", "TRUNCATED_PACKET"),
  malformed("5.0 PUBLISH without a property length", 5, "30 03 00 01 61", "TRUNCATED_PACKET"),
  malformed(
    "frame shorter than its remaining length",
    4,
    "30 0A 00 03 61 2F 62",
    "TRUNCATED_PACKET",
    {
      whole: true,
    },
  ),
  malformed("a lone first byte", 4, "30", "TRUNCATED_PACKET", { whole: true }),
  malformed("bytes ending inside the remaining length", 4, "30 80 80", "TRUNCATED_PACKET", {
    whole: true,
  }),

  // --- bytes after the last field
  malformed("PINGREQ with a body", 4, "C0 01 00", "TRAILING_BYTES"),
  malformed("PINGRESP with a body", 5, "D0 02 00 00", "TRAILING_BYTES"),
  malformed("3.1 PUBACK of length 3", 3, "40 03 00 01 00", "TRAILING_BYTES"),
  malformed("3.1.1 PUBCOMP of length 4", 4, "70 04 00 01 00 00", "TRAILING_BYTES"),
  malformed("3.1 DISCONNECT with a body", 3, "E0 01 00", "TRAILING_BYTES"),
  malformed("3.1.1 DISCONNECT with a body", 4, "E0 02 00 00", "TRAILING_BYTES"),
  malformed("3.1.1 CONNACK of length 3", 4, "20 03 00 00 00", "TRAILING_BYTES"),
  malformed("3.1.1 UNSUBACK of length 3", 4, "B0 03 00 01 00", "TRAILING_BYTES"),
  malformed(
    "CONNECT with a byte after the last field",
    4,
    "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 00 FF",
    "TRAILING_BYTES",
  ),
  malformed(
    "5.0 PUBACK with a byte after the properties",
    5,
    "40 05 00 01 00 00 FF",
    "TRAILING_BYTES",
  ),
  malformed(
    "5.0 DISCONNECT with a byte after the properties",
    5,
    "E0 03 00 00 FF",
    "TRAILING_BYTES",
  ),
  malformed("two packets given to decodePacket", 4, "C0 00 C0 00", "TRAILING_BYTES", {
    whole: true,
  }),
  malformed("a packet and one more byte", 4, "C0 00 30", "TRAILING_BYTES", { whole: true }),
  // The fixed header of a second frame is trailing data even before any of its body arrives.
  malformed("a packet and a second fixed header", 4, "C0 00 30 05", "TRAILING_BYTES", {
    whole: true,
  }),

  // --- ill-formed UTF-8 [MQTT-1.5.4-1] and U+0000 [MQTT-1.5.4-2] in a PUBLISH topic
  malformed("topic with a stray continuation byte", 4, "30 04 00 02 61 80", "INVALID_UTF8"),
  malformed("topic starting with a continuation byte", 4, "30 03 00 01 BF", "INVALID_UTF8"),
  malformed("topic with overlong C0 AF", 4, "30 04 00 02 C0 AF", "INVALID_UTF8"),
  malformed("topic with overlong C1 81", 4, "30 04 00 02 C1 81", "INVALID_UTF8"),
  malformed("topic with overlong E0 80 AF", 4, "30 05 00 03 E0 80 AF", "INVALID_UTF8"),
  malformed("topic with overlong F0 80 80 AF", 4, "30 06 00 04 F0 80 80 AF", "INVALID_UTF8"),
  malformed("topic with surrogate ED A0 80 (U+D800)", 4, "30 05 00 03 ED A0 80", "INVALID_UTF8"),
  malformed("topic with surrogate ED BF BF (U+DFFF)", 5, "30 06 00 03 ED BF BF 00", "INVALID_UTF8"),
  malformed("topic with lead byte F5", 4, "30 06 00 04 F5 80 80 80", "INVALID_UTF8"),
  malformed("topic with byte FF", 4, "30 03 00 01 FF", "INVALID_UTF8"),
  malformed("topic above U+10FFFF (F4 90 80 80)", 4, "30 06 00 04 F4 90 80 80", "INVALID_UTF8"),
  malformed("topic ending inside a 3-byte sequence", 4, "30 04 00 02 E2 82", "INVALID_UTF8"),
  malformed("topic with a 2-byte sequence cut by ASCII", 4, "30 04 00 02 C3 61", "INVALID_UTF8"),
  malformed(
    "topic with a 4-byte sequence cut by ASCII",
    4,
    "30 06 00 04 F0 9F 98 61",
    "INVALID_UTF8",
  ),
  malformed("topic with U+0000", 4, "30 05 00 03 61 00 62", "NULL_CHARACTER"),
  malformed(
    "topic with U+0000 after a non-ASCII character",
    4,
    "30 05 00 03 C3 A9 00",
    "NULL_CHARACTER",
  ),
  malformed("topic that is U+0000", 5, "30 04 00 01 00 00", "NULL_CHARACTER"),
  // ... and in the strings of a CONNECT
  malformed(
    "client id with a stray continuation byte",
    4,
    "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 80",
    "INVALID_UTF8",
  ),
  malformed(
    "client id with surrogate ED A0 80",
    4,
    "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 ED A0 80",
    "INVALID_UTF8",
  ),
  malformed(
    "client id with U+0000",
    4,
    "10 0E 00 04 4D 51 54 54 04 02 00 3C 00 02 61 00",
    "NULL_CHARACTER",
  ),
  malformed(
    "client id with overlong C1 81",
    5,
    "10 0F 00 04 4D 51 54 54 05 02 00 3C 00 00 02 C1 81",
    "INVALID_UTF8",
  ),
  malformed(
    "client id with a 5-byte form F8 88 80 80 80",
    3,
    "10 13 00 06 4D 51 49 73 64 70 03 02 00 3C 00 05 F8 88 80 80 80",
    "INVALID_UTF8",
  ),
  malformed(
    "client id ending inside a 3-byte sequence",
    4,
    "10 0E 00 04 4D 51 54 54 04 02 00 3C 00 02 E2 82",
    "INVALID_UTF8",
  ),
  malformed(
    "user name with byte FE",
    4,
    "10 10 00 04 4D 51 54 54 04 82 00 3C 00 01 61 00 01 FE",
    "INVALID_UTF8",
  ),
  malformed(
    "will topic with surrogate ED A0 80",
    4,
    "10 14 00 04 4D 51 54 54 04 06 00 3C 00 01 61 00 03 ED A0 80 00 00",
    "INVALID_UTF8",
  ),
  malformed(
    "user property name with byte FF",
    5,
    "30 0B 00 01 61 07 26 00 01 FF 00 01 61",
    "INVALID_UTF8",
  ),

  // --- topic names: no wildcards [MQTT-3.3.2-2] [MQTT-4.7.0-1], at least one character
  badTopic("PUBLISH topic with '+'", 4, "30 05 00 03 61 2F 2B", "a/+"),
  badTopic("PUBLISH topic '#'", 4, "30 03 00 01 23", "#"),
  badTopic("PUBLISH topic with '#'", 5, "30 06 00 03 61 2F 23 00", "a/#"),
  badTopic("PUBLISH QoS 1 topic with '+' inside a level", 3, "32 07 00 03 61 2B 62 00 01", "a+b"),
  badTopic(
    "will topic with '#'",
    4,
    "10 14 00 04 4D 51 54 54 04 06 00 3C 00 01 61 00 03 61 2F 23 00 00",
    "a/#",
  ),
  badTopic(
    "will topic '+'",
    5,
    "10 14 00 04 4D 51 54 54 05 06 00 3C 00 00 01 61 00 00 01 2B 00 00",
    "+",
  ),
  badTopic(
    "will topic '#'",
    3,
    "10 14 00 06 4D 51 49 73 64 70 03 06 00 3C 00 01 61 00 01 23 00 00",
    "#",
  ),
  badTopic("empty will topic", 4, "10 11 00 04 4D 51 54 54 04 06 00 3C 00 01 61 00 00 00 00", ""),
  // v5 3.3.2.1: a zero-length topic needs a Topic Alias; before 5.0 it is never allowed.
  protocol("PUBLISH with an empty topic", 3, "30 02 00 00", "MISSING_TOPIC"),
  protocol("PUBLISH with an empty topic and a payload", 4, "30 04 00 00 68 69", "MISSING_TOPIC"),
  protocol("PUBLISH QoS 1 with an empty topic", 4, "32 04 00 00 00 01", "MISSING_TOPIC"),
  protocol("PUBLISH with an empty topic and no topic alias", 5, "30 03 00 00 00", "MISSING_TOPIC"),
  protocol(
    "PUBLISH with an empty topic and properties but no topic alias",
    5,
    "30 05 00 00 02 01 01",
    "MISSING_TOPIC",
  ),

  // --- CONNECT protocol name and level [MQTT-3.1.2-1] [MQTT-3.1.2-2]
  unsupported(
    'protocol name "MQTX"',
    "10 0C 00 04 4D 51 54 58 04 02 00 3C 00 00",
    "UNSUPPORTED_PROTOCOL_NAME",
    "MQTX",
    4,
  ),
  unsupported(
    'protocol name "mqtt"',
    "10 0C 00 04 6D 71 74 74 04 02 00 3C 00 00",
    "UNSUPPORTED_PROTOCOL_NAME",
    "mqtt",
    4,
  ),
  unsupported(
    '"MQTT" with level 3',
    "10 0C 00 04 4D 51 54 54 03 02 00 3C 00 00",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "MQTT",
    3,
  ),
  unsupported(
    '"MQIsdp" with level 4',
    "10 0E 00 06 4D 51 49 73 64 70 04 02 00 3C 00 00",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "MQIsdp",
    4,
  ),
  unsupported(
    '"MQIsdp" with level 5',
    "10 0E 00 06 4D 51 49 73 64 70 05 02 00 3C 00 00",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "MQIsdp",
    5,
  ),
  unsupported(
    '"MQTT" with level 6',
    "10 0C 00 04 4D 51 54 54 06 02 00 3C 00 00",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "MQTT",
    6,
  ),
  unsupported(
    '"MQTT" with level 6 and the bridge bit',
    "10 0C 00 04 4D 51 54 54 86 02 00 3C 00 00",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "MQTT",
    0x86,
  ),
  unsupported(
    '"MQTT" with level 0',
    "10 0C 00 04 4D 51 54 54 00 02 00 3C 00 00",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "MQTT",
    0,
  ),

  // --- CONNECT flags [MQTT-3.1.2-3] [MQTT-3.1.2-11..13] [MQTT-3.1.2-22]
  malformed(
    "CONNECT reserved flag bit 0",
    4,
    "10 0C 00 04 4D 51 54 54 04 03 00 3C 00 00",
    "RESERVED_FLAGS",
  ),
  malformed(
    "CONNECT reserved flag bit 0",
    5,
    "10 0D 00 04 4D 51 54 54 05 01 00 3C 00 00 00",
    "RESERVED_FLAGS",
  ),
  malformed(
    "CONNECT reserved flag bit 0",
    3,
    "10 0E 00 06 4D 51 49 73 64 70 03 03 00 3C 00 00",
    "RESERVED_FLAGS",
  ),
  malformed(
    "will QoS 3",
    4,
    "10 12 00 04 4D 51 54 54 04 1E 00 3C 00 01 61 00 01 74 00 00",
    "INVALID_QOS",
  ),
  malformed(
    "will QoS 3",
    5,
    "10 14 00 04 4D 51 54 54 05 1C 00 3C 00 00 01 61 00 00 01 74 00 00",
    "INVALID_QOS",
  ),
  malformed(
    "will QoS 1 without the will flag",
    4,
    "10 0C 00 04 4D 51 54 54 04 0A 00 3C 00 00",
    "INVALID_CONNECT_FLAGS",
  ),
  malformed(
    "will QoS 2 without the will flag",
    5,
    "10 0D 00 04 4D 51 54 54 05 12 00 3C 00 00 00",
    "INVALID_CONNECT_FLAGS",
  ),
  malformed(
    "will retain without the will flag",
    4,
    "10 0C 00 04 4D 51 54 54 04 22 00 3C 00 00",
    "INVALID_CONNECT_FLAGS",
  ),
  malformed(
    "will retain without the will flag",
    3,
    "10 0E 00 06 4D 51 49 73 64 70 03 22 00 3C 00 00",
    "INVALID_CONNECT_FLAGS",
  ),
  malformed(
    "password without a user name",
    4,
    "10 0F 00 04 4D 51 54 54 04 42 00 3C 00 00 00 01 70",
    "INVALID_CONNECT_FLAGS",
  ),
  malformed(
    "password without a user name",
    3,
    "10 11 00 06 4D 51 49 73 64 70 03 42 00 3C 00 00 00 01 70",
    "INVALID_CONNECT_FLAGS",
  ),

  // --- packet identifier 0 [MQTT-2.2.1-3]
  protocol("PUBLISH QoS 1 with packet id 0", 4, "32 05 00 01 61 00 00", "ZERO_PACKET_ID"),
  protocol("PUBLISH QoS 2 with packet id 0", 5, "34 06 00 01 61 00 00 00", "ZERO_PACKET_ID"),
  protocol("SUBSCRIBE with packet id 0", 4, "82 06 00 00 00 01 61 00", "ZERO_PACKET_ID"),
  protocol("SUBSCRIBE with packet id 0", 5, "82 07 00 00 00 00 01 61 00", "ZERO_PACKET_ID"),
  protocol("UNSUBSCRIBE with packet id 0", 4, "A2 05 00 00 00 01 61", "ZERO_PACKET_ID"),
  protocol("PUBACK with packet id 0", 4, "40 02 00 00", "ZERO_PACKET_ID"),
  protocol("PUBACK with packet id 0 and a reason code", 5, "40 03 00 00 10", "ZERO_PACKET_ID"),
  protocol("PUBREC with packet id 0", 3, "50 02 00 00", "ZERO_PACKET_ID"),
  protocol("PUBREL with packet id 0", 4, "62 02 00 00", "ZERO_PACKET_ID"),
  protocol("PUBCOMP with packet id 0", 5, "70 02 00 00", "ZERO_PACKET_ID"),
  protocol("SUBACK with packet id 0", 4, "90 03 00 00 00", "ZERO_PACKET_ID"),
  protocol("UNSUBACK with packet id 0", 4, "B0 02 00 00", "ZERO_PACKET_ID"),

  // --- SUBSCRIBE / UNSUBSCRIBE payloads [MQTT-3.8.3-2..5] [MQTT-3.10.3-2]
  protocol("SUBSCRIBE with no filters", 4, "82 02 00 01", "EMPTY_SUBSCRIPTION_LIST"),
  protocol("SUBSCRIBE with no filters", 5, "82 03 00 01 00", "EMPTY_SUBSCRIPTION_LIST"),
  protocol("SUBSCRIBE with properties only", 5, "82 05 00 01 02 0B 01", "EMPTY_SUBSCRIPTION_LIST"),
  malformed(
    "subscribe options reserved bit 2",
    3,
    "82 06 00 01 00 01 61 04",
    "INVALID_SUBSCRIPTION_OPTIONS",
  ),
  malformed(
    "subscribe options reserved bit 7",
    4,
    "82 06 00 01 00 01 61 81",
    "INVALID_SUBSCRIPTION_OPTIONS",
  ),
  malformed(
    "subscribe options with 5.0 retain handling bits",
    4,
    "82 06 00 01 00 01 61 20",
    "INVALID_SUBSCRIPTION_OPTIONS",
  ),
  malformed(
    "subscription options reserved bit 6",
    5,
    "82 07 00 01 00 00 01 61 40",
    "INVALID_SUBSCRIPTION_OPTIONS",
  ),
  malformed(
    "subscription options reserved bit 7",
    5,
    "82 07 00 01 00 00 01 61 80",
    "INVALID_SUBSCRIPTION_OPTIONS",
  ),
  protocol("retain handling 3", 5, "82 07 00 01 00 00 01 61 30", "INVALID_RETAIN_HANDLING"),
  protocol(
    "no local on a $share/ filter",
    5,
    "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 74 04",
    "NO_LOCAL_ON_SHARED_SUBSCRIPTION",
  ),
  malformed("subscription QoS 3", 4, "82 06 00 01 00 01 61 03", "INVALID_QOS"),
  malformed("subscription QoS 3", 3, "82 06 00 01 00 01 61 03", "INVALID_QOS"),
  malformed(
    "second subscription with QoS 3",
    4,
    "82 0A 00 01 00 01 61 00 00 01 62 03",
    "INVALID_QOS",
  ),
  // v5 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
  protocol("subscription Maximum QoS 3", 5, "82 07 00 01 00 00 01 61 03", "INVALID_QOS"),
  protocol("UNSUBSCRIBE with no filters", 3, "A2 02 00 01", "EMPTY_SUBSCRIPTION_LIST"),
  protocol("UNSUBSCRIBE with no filters", 4, "A2 02 00 01", "EMPTY_SUBSCRIPTION_LIST"),
  protocol("UNSUBSCRIBE with no filters", 5, "A2 03 00 01 00", "EMPTY_SUBSCRIPTION_LIST"),

  // --- CONNACK [MQTT-3.2.2-1] [MQTT-3.2.2-6]
  malformed("CONNACK reserved flag bit 1", 4, "20 02 02 00", "RESERVED_FLAGS"),
  malformed("CONNACK reserved flag bit 7", 5, "20 03 80 00 00", "RESERVED_FLAGS"),
  protocol("CONNACK session present with code 5", 4, "20 02 01 05", "INVALID_SESSION_PRESENT"),
  protocol("CONNACK session present with 0x87", 5, "20 03 01 87 00", "INVALID_SESSION_PRESENT"),

  // --- reason codes the packet type does not define (v5 2.4, 3.x.2.1)
  protocol("CONNACK return code 6", 3, "20 02 00 06", "INVALID_REASON_CODE"),
  protocol("CONNACK return code 0x80", 4, "20 02 00 80", "INVALID_REASON_CODE"),
  protocol("CONNACK reason code 0x01", 5, "20 03 00 01 00", "INVALID_REASON_CODE"),
  protocol("CONNACK reason code 0x8D", 5, "20 03 00 8D 00", "INVALID_REASON_CODE"),
  protocol("PUBACK reason code 0x92", 5, "40 03 00 01 92", "INVALID_REASON_CODE"),
  protocol("PUBREC reason code 0x01", 5, "50 03 00 01 01", "INVALID_REASON_CODE"),
  protocol("PUBREL reason code 0x10", 5, "62 03 00 01 10", "INVALID_REASON_CODE"),
  protocol("PUBCOMP reason code 0x80", 5, "70 03 00 01 80", "INVALID_REASON_CODE"),
  protocol("SUBACK return code 0x03", 4, "90 03 00 01 03", "INVALID_REASON_CODE"),
  protocol("SUBACK reason code 0x03", 5, "90 04 00 01 00 03", "INVALID_REASON_CODE"),
  protocol("SUBACK reason code 0x11", 5, "90 04 00 01 00 11", "INVALID_REASON_CODE"),
  protocol("UNSUBACK reason code 0x02", 5, "B0 04 00 01 00 02", "INVALID_REASON_CODE"),
  protocol("AUTH reason code 0x80", 5, "F0 02 80 00", "INVALID_REASON_CODE"),
  protocol("AUTH reason code 0x04", 5, "F0 01 04", "INVALID_REASON_CODE"),
  protocol("DISCONNECT reason code 0x01", 5, "E0 01 01", "INVALID_REASON_CODE"),
  protocol("DISCONNECT reason code 0x84", 5, "E0 01 84", "INVALID_REASON_CODE"),
  malformed("SUBACK without return codes", 4, "90 02 00 01", "INVALID_LENGTH"),
  malformed("UNSUBACK without reason codes", 5, "B0 03 00 01 00", "INVALID_LENGTH"),

  // --- 5.0 properties (v5 2.2.2.2: unknown or misplaced identifiers are malformed)
  malformed("unknown property 0x7F", 5, "30 06 00 01 61 02 7F 00", "UNKNOWN_PROPERTY"),
  malformed(
    "unknown property 0x04 in CONNECT",
    5,
    "10 0F 00 04 4D 51 54 54 05 02 00 3C 02 04 00 00 00",
    "UNKNOWN_PROPERTY",
  ),
  malformed("unknown property 0x00 in PUBACK", 5, "40 06 00 01 00 02 00 00", "UNKNOWN_PROPERTY"),
  malformed("unknown property 128 in DISCONNECT", 5, "E0 04 00 02 80 01", "UNKNOWN_PROPERTY"),
  malformed(
    "topicAlias in CONNECT",
    5,
    "10 10 00 04 4D 51 54 54 05 02 00 3C 03 23 00 01 00 00",
    "PROPERTY_NOT_ALLOWED",
  ),
  malformed(
    "sessionExpiryInterval in PUBLISH",
    5,
    "30 09 00 01 61 05 11 00 00 00 0A",
    "PROPERTY_NOT_ALLOWED",
  ),
  malformed(
    "willDelayInterval in CONNECT properties",
    5,
    "10 12 00 04 4D 51 54 54 05 02 00 3C 05 18 00 00 00 05 00 00",
    "PROPERTY_NOT_ALLOWED",
  ),
  malformed(
    "topicAlias in will properties",
    5,
    "10 17 00 04 4D 51 54 54 05 06 00 3C 00 00 01 61 03 23 00 01 00 01 74 00 00",
    "PROPERTY_NOT_ALLOWED",
  ),
  malformed(
    "subscriptionIdentifier in UNSUBSCRIBE",
    5,
    "A2 08 00 01 02 0B 01 00 01 61",
    "PROPERTY_NOT_ALLOWED",
  ),
  malformed("reasonString in PUBLISH", 5, "30 08 00 01 61 04 1F 00 01 78", "PROPERTY_NOT_ALLOWED"),
  malformed(
    "assignedClientIdentifier in DISCONNECT",
    5,
    "E0 06 00 04 12 00 01 61",
    "PROPERTY_NOT_ALLOWED",
  ),
  protocol(
    "two sessionExpiryInterval in CONNECT",
    5,
    "10 17 00 04 4D 51 54 54 05 02 00 3C 0A 11 00 00 00 0A 11 00 00 00 14 00 00",
    "DUPLICATE_PROPERTY",
  ),
  protocol(
    "two topicAlias in PUBLISH",
    5,
    "30 0A 00 01 61 06 23 00 01 23 00 02",
    "DUPLICATE_PROPERTY",
  ),
  protocol(
    "two subscriptionIdentifier in SUBSCRIBE",
    5,
    "82 0B 00 01 04 0B 01 0B 02 00 01 61 00",
    "DUPLICATE_PROPERTY",
  ),
  protocol(
    "two reasonString in PUBACK",
    5,
    "40 0C 00 01 00 08 1F 00 01 61 1F 00 01 62",
    "DUPLICATE_PROPERTY",
  ),
  protocol(
    "two payloadFormatIndicator in will properties",
    5,
    "10 18 00 04 4D 51 54 54 05 06 00 3C 00 00 01 61 04 01 00 01 01 00 01 74 00 00",
    "DUPLICATE_PROPERTY",
  ),
  // v5 3.3.4: "A Topic Alias value of 0 ... is a Protocol Error, the receiver uses DISCONNECT
  // with Reason Code of 0x94 (Topic Alias invalid)".
  protocol("topicAlias 0", 5, "30 07 00 01 61 03 23 00 00", "INVALID_PROPERTY_VALUE", {
    reasonCode: 0x94,
  }),
  protocol(
    "receiveMaximum 0 in CONNECT",
    5,
    "10 10 00 04 4D 51 54 54 05 02 00 3C 03 21 00 00 00 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol("receiveMaximum 0 in CONNACK", 5, "20 06 00 00 03 21 00 00", "INVALID_PROPERTY_VALUE"),
  protocol(
    "maximumPacketSize 0 in CONNECT",
    5,
    "10 12 00 04 4D 51 54 54 05 02 00 3C 05 27 00 00 00 00 00 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol(
    "maximumPacketSize 0 in CONNACK",
    5,
    "20 08 00 00 05 27 00 00 00 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol(
    "subscriptionIdentifier 0 in SUBSCRIBE",
    5,
    "82 09 00 01 02 0B 00 00 01 61 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol(
    "subscriptionIdentifier 0 in PUBLISH",
    5,
    "30 06 00 01 61 02 0B 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol("payloadFormatIndicator 2", 5, "30 06 00 01 61 02 01 02", "INVALID_PROPERTY_VALUE"),
  protocol(
    "payloadFormatIndicator 0xFF in will properties",
    5,
    "10 16 00 04 4D 51 54 54 05 06 00 3C 00 00 01 61 02 01 FF 00 01 74 00 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol(
    "requestProblemInformation 2",
    5,
    "10 0F 00 04 4D 51 54 54 05 02 00 3C 02 17 02 00 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol(
    "requestResponseInformation 2",
    5,
    "10 0F 00 04 4D 51 54 54 05 02 00 3C 02 19 02 00 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol("retainAvailable 2", 5, "20 05 00 00 02 25 02", "INVALID_PROPERTY_VALUE"),
  protocol("maximumQoS 2", 5, "20 05 00 00 02 24 02", "INVALID_PROPERTY_VALUE"),
  protocol(
    "wildcardSubscriptionAvailable 0xFF",
    5,
    "20 05 00 00 02 28 FF",
    "INVALID_PROPERTY_VALUE",
  ),
  malformed("property length past the PUBLISH", 5, "30 05 00 01 61 05 01", "TRUNCATED_PACKET"),
  malformed("property length past the CONNACK", 5, "20 04 00 00 09 11", "TRUNCATED_PACKET"),
  malformed("property length past the PUBACK", 5, "40 05 00 01 00 7F 1F", "TRUNCATED_PACKET"),
  malformed(
    "property value past the property length",
    5,
    "30 09 00 01 61 02 02 00 00 00 00",
    "TRUNCATED_PACKET",
  ),
  malformed(
    "string property past the property length",
    5,
    "20 08 00 00 03 1F 00 05 61 62",
    "TRUNCATED_PACKET",
  ),
  // [MQTT-3.3.2-14]: the Response Topic is a topic name, so no wildcards (and not empty).
  protocol(
    "responseTopic with '#'",
    5,
    "30 09 00 01 61 05 08 00 02 61 23",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol(
    "will responseTopic with '+'",
    5,
    "10 19 00 04 4D 51 54 54 05 06 00 3C 00 00 01 61 05 08 00 02 2B 2F 00 01 74 00 00",
    "INVALID_PROPERTY_VALUE",
  ),
  protocol("empty responseTopic", 5, "30 07 00 01 61 03 08 00 00", "INVALID_PROPERTY_VALUE"),
  malformed(
    "subscriptionIdentifier 1 as 81 00",
    5,
    "30 07 00 01 61 03 0B 81 00",
    "NON_MINIMAL_VARINT",
  ),
  malformed("property length 0 as 80 00", 5, "30 05 00 01 61 80 00", "NON_MINIMAL_VARINT"),
  malformed("property id 1 as 81 00", 5, "30 07 00 01 61 03 81 00 00", "NON_MINIMAL_VARINT"),
  malformed(
    "CONNECT property length 0 as 80 00",
    5,
    "10 0E 00 04 4D 51 54 54 05 02 00 3C 80 00 00 00",
    "NON_MINIMAL_VARINT",
  ),
  malformed(
    "subscriptionIdentifier of 5 bytes",
    5,
    "30 09 00 01 61 05 0B 80 80 80 80",
    "REMAINING_LENGTH_TOO_LONG",
  ),
];

/** Inputs next to the refused ones that must decode: what the rules allow. */
export const ACCEPTED: AcceptedRow[] = [
  // MQTT 3.1 set DUP (0x0A) on PUBREL, SUBSCRIBE and UNSUBSCRIBE when it resent them.
  {
    name: "3.1 PUBREL with DUP (0x6A)",
    version: 3,
    hex: "6A 02 00 01",
    packet: { type: 6, packetId: 1 },
  },
  {
    name: "3.1 SUBSCRIBE with DUP (0x8A)",
    version: 3,
    hex: "8A 06 00 01 00 01 61 01",
    packet: { type: 8, packetId: 1, subscriptions: [{ topicFilter: "a", qos: 1 }] },
  },
  {
    name: "3.1 UNSUBSCRIBE with DUP (0xAA)",
    version: 3,
    hex: "AA 05 00 01 00 01 61",
    packet: { type: 10, packetId: 1, topicFilters: ["a"] },
  },
  {
    name: "3.1 PUBREL without DUP",
    version: 3,
    hex: "62 02 00 01",
    packet: { type: 6, packetId: 1 },
  },
  // v5 3.1.2.9 dropped [MQTT-3.1.2-22]: a password may come without a user name.
  {
    name: "5.0 password without a user name",
    version: 5,
    hex: "10 10 00 04 4D 51 54 54 05 42 00 3C 00 00 00 00 01 70",
    packet: { type: 1, protocolVersion: 5, clientId: "", password: [0x70], username: undefined },
  },
  {
    name: "5.0 empty topic with a topic alias",
    version: 5,
    hex: "30 06 00 00 03 23 00 01",
    packet: { type: 3, topic: "", properties: { topicAlias: 1 } },
  },
  {
    name: "5.0 AUTH without a body",
    version: 5,
    hex: "F0 00",
    packet: { type: 15, reasonCode: 0 },
  },
  {
    name: "5.0 PUBLISH with two subscription identifiers",
    version: 5,
    hex: "30 08 00 01 61 04 0B 01 0B 02",
    packet: { type: 3, topic: "a", properties: { subscriptionIdentifiers: [1, 2] } },
  },
  {
    name: "5.0 PUBACK with a repeated user property",
    version: 5,
    hex: "40 10 00 01 00 0C 26 00 01 61 00 00 26 00 01 61 00 00",
    packet: {
      type: 4,
      packetId: 1,
      reasonCode: 0,
      properties: {
        userProperties: [
          ["a", ""],
          ["a", ""],
        ],
      },
    },
  },
  {
    name: "5.0 no local on a filter that is not shared",
    version: 5,
    hex: "82 07 00 01 00 00 01 61 04",
    packet: { type: 8, subscriptions: [{ topicFilter: "a", qos: 0, noLocal: true }] },
  },
  {
    name: "5.0 subscription options using every defined bit",
    version: 5,
    hex: "82 07 00 01 00 00 01 61 2E",
    packet: {
      type: 8,
      subscriptions: [
        { topicFilter: "a", qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2 },
      ],
    },
  },
  {
    name: "noncharacter U+FFFF in a topic (SHOULD NOT, not MUST NOT)",
    version: 4,
    hex: "30 05 00 03 EF BF BF",
    packet: { type: 3, topic: "\uffff" },
  },
  {
    name: "leading U+FEFF kept in a topic [MQTT-1.5.4-3]",
    version: 4,
    hex: "30 05 00 03 EF BB BF",
    packet: { type: 3, topic: "\ufeff" },
  },
  {
    name: "U+10FFFF in a topic",
    version: 4,
    hex: "30 06 00 04 F4 8F BF BF",
    packet: { type: 3, topic: "\u{10ffff}" },
  },
  {
    name: "5.0 PUBACK with only a packet id",
    version: 5,
    hex: "40 02 00 01",
    packet: { type: 4, packetId: 1, reasonCode: 0 },
  },
  {
    name: "3.1.1 CONNECT with the bridge bit (0x84)",
    version: 4,
    hex: "10 0C 00 04 4D 51 54 54 84 02 00 3C 00 00",
    packet: { type: 1, protocolVersion: 4, bridge: true },
  },
  // decodeConnack promises to read a 3.1.1 server's 2-byte refusal of a 5.0 client.
  {
    name: "5.0 client reading a 3.1.1 CONNACK refusal (return code 1)",
    version: 5,
    hex: "20 02 00 01",
    packet: { type: 2, sessionPresent: false, reasonCode: 1 },
  },
];

export interface EncoderRow {
  name: string;
  /** Builds the packet (some are large, so only when the row runs). */
  packet: () => Packet;
  options?: EncodeOptions;
  error: ErrorClass;
  code: MqttErrorCode;
  reasonCode: number | undefined;
  fields?: Record<string, unknown>;
}

const payload = new Uint8Array([1, 2, 3]);

function publish(fields: Record<string, unknown>): () => Packet {
  return () =>
    ({
      type: 3,
      topic: "a/b",
      payload,
      qos: 0,
      retain: false,
      dup: false,
      ...fields,
    }) as unknown as Packet;
}

function connect(fields: Record<string, unknown>): () => Packet {
  return () =>
    ({
      type: 1,
      protocolVersion: 4,
      clean: true,
      keepAlive: 60,
      clientId: "c",
      ...fields,
    }) as Packet;
}

function subscribe(fields: Record<string, unknown>): () => Packet {
  return () =>
    ({ type: 8, packetId: 1, subscriptions: [{ topicFilter: "a", qos: 0 }], ...fields }) as Packet;
}

/** Encoder input that cannot go on the wire. */
function invalid(name: string, packet: () => Packet, options?: EncodeOptions): EncoderRow {
  return {
    name,
    packet,
    ...(options ? { options } : {}),
    error: InvalidPacketError,
    code: "INVALID_PACKET",
    reasonCode: undefined,
  };
}

function invalidTopic(
  name: string,
  packet: () => Packet,
  topic: string,
  options?: EncodeOptions,
): EncoderRow {
  return {
    name,
    packet,
    ...(options ? { options } : {}),
    error: InvalidTopicError,
    code: "INVALID_TOPIC_NAME",
    reasonCode: 0x90,
    fields: { topic },
  };
}

const V3 = { protocolVersion: 3 } as const;
const V5 = { protocolVersion: 5 } as const;

export const ENCODER_REFUSED: EncoderRow[] = [
  invalid("PUBLISH QoS 3", publish({ qos: 3, packetId: 1 })),
  invalid("PUBLISH QoS 1 without a packetId", publish({ qos: 1 })),
  invalid("PUBLISH QoS 2 with packetId 65536", publish({ qos: 2, packetId: 65536 })),
  invalid("PUBLISH QoS 1 with packetId 1.5", publish({ qos: 1, packetId: 1.5 })),
  invalid("PUBACK with packetId 0", () => ({ type: 4, packetId: 0 })),
  invalid("SUBSCRIBE with packetId 65536", subscribe({ packetId: 65536 })),
  invalid("UNSUBSCRIBE with packetId 0", () => ({ type: 10, packetId: 0, topicFilters: ["a"] })),
  invalid("DUP on a QoS 0 PUBLISH", publish({ dup: true })),
  invalidTopic("PUBLISH topic with '+'", publish({ topic: "a/+" }), "a/+"),
  invalidTopic("PUBLISH topic with '#'", publish({ topic: "#" }), "#", V5),
  invalidTopic("empty PUBLISH topic in 3.1", publish({ topic: "" }), "", V3),
  invalidTopic("empty PUBLISH topic without a topic alias", publish({ topic: "" }), "", V5),
  invalidTopic(
    "will topic with '#'",
    connect({ will: { topic: "a/#", payload, qos: 0, retain: false } }),
    "a/#",
  ),
  // Bad strings in encoder input are the caller's mistake, not a malformed packet from a peer.
  invalid("lone surrogate in a PUBLISH topic", publish({ topic: "a\ud800" })),
  invalid("lone surrogate in a user name", connect({ username: "u\udc00" })),
  invalid("U+0000 in a client id", connect({ clientId: "a\u0000" })),
  invalid("client id of 65536 bytes", connect({ clientId: "x".repeat(65_536) })),
  invalid("PUBLISH topic of 65536 bytes", publish({ topic: "t".repeat(65_536) })),
  invalid(
    "user property value of 65538 bytes",
    publish({ properties: { userProperties: [["k", "\u20ac".repeat(21_846)]] } }),
    V5,
  ),
  invalid(
    "correlationData of 65536 bytes",
    publish({ properties: { correlationData: new Uint8Array(65_536) } }),
    V5,
  ),
  invalid("topicAlias in CONNECT", connect({ protocolVersion: 5, properties: { topicAlias: 1 } })),
  invalid(
    "sessionExpiryInterval in PUBLISH",
    publish({ properties: { sessionExpiryInterval: 1 } }),
    V5,
  ),
  invalid("unknown property", publish({ properties: { colour: "red" } }), V5),
  invalid("topicAlias 0", publish({ properties: { topicAlias: 0 } }), V5),
  invalid("receiveMaximum 0", connect({ protocolVersion: 5, properties: { receiveMaximum: 0 } })),
  invalid(
    "maximumPacketSize 0",
    connect({ protocolVersion: 5, properties: { maximumPacketSize: 0 } }),
  ),
  invalid("subscriptionIdentifier 0", subscribe({ properties: { subscriptionIdentifier: 0 } }), V5),
  invalid("payloadFormatIndicator 2", publish({ properties: { payloadFormatIndicator: 2 } }), V5),
  invalid("responseTopic with '+'", publish({ properties: { responseTopic: "r/+" } }), V5),
  invalid("password without a user name in 3.1.1", connect({ password: payload })),
  invalid(
    "password without a user name in 3.1",
    connect({ protocolVersion: 3, password: payload }),
  ),
  invalid("will QoS 3", connect({ will: { topic: "w", payload, qos: 3, retain: false } })),
  invalid('protocol name "MQIsdp" with level 4', connect({ protocolName: "MQIsdp" })),
  invalid("keepAlive 65536", connect({ keepAlive: 65_536 })),
  invalid("SUBSCRIBE with no subscriptions", subscribe({ subscriptions: [] })),
  invalid("subscription QoS 3", subscribe({ subscriptions: [{ topicFilter: "a", qos: 3 }] })),
  invalid(
    "retainHandling 3",
    subscribe({ subscriptions: [{ topicFilter: "a", qos: 0, retainHandling: 3 }] }),
    V5,
  ),
  invalid(
    "no local on a $share/ filter",
    subscribe({ subscriptions: [{ topicFilter: "$share/g/t", qos: 0, noLocal: true }] }),
    V5,
  ),
  invalid("UNSUBSCRIBE with no filters", () => ({ type: 10, packetId: 1, topicFilters: [] })),
  invalid("SUBACK with no reason codes", () => ({ type: 9, packetId: 1, reasonCodes: [] })),
  invalid("SUBACK return code 3", () => ({ type: 9, packetId: 1, reasonCodes: [3] })),
  invalid("CONNACK return code 6 in 3.1.1", () => ({
    type: 2,
    sessionPresent: false,
    reasonCode: 6,
  })),
  invalid("CONNACK session present with a refusal", () => ({
    type: 2,
    sessionPresent: true,
    reasonCode: 5,
  })),
  invalid("PUBACK reason code 0x92", () => ({ type: 4, packetId: 1, reasonCode: 0x92 }), V5),
  invalid("AUTH in 3.1.1", () => ({ type: 15, reasonCode: 0 })),
  {
    name: "maximumPacketSize exceeded",
    packet: publish({ topic: "a", payload: new Uint8Array(2000) }),
    options: { maximumPacketSize: 1024 },
    error: PacketTooLargeError,
    code: "PACKET_TOO_LARGE",
    reasonCode: 0x95,
    // 1 type byte + 2 length bytes + 3 topic bytes + 2000 payload bytes
    fields: { size: 2006, limit: 1024, packetType: 3 },
  },
  {
    name: "maximumPacketSize exceeded by one byte",
    packet: publish({ topic: "a", payload: new Uint8Array(16) }),
    options: { maximumPacketSize: 20 },
    error: PacketTooLargeError,
    code: "PACKET_TOO_LARGE",
    reasonCode: 0x95,
    fields: { size: 21, limit: 20 },
  },
  {
    name: "remaining length over 268,435,455",
    packet: publish({ topic: "a", payload: new Uint8Array(268_435_455) }),
    error: PacketTooLargeError,
    code: "PACKET_TOO_LARGE",
    reasonCode: 0x95,
    fields: { size: 268_435_463, limit: 268_435_460 },
  },
];
