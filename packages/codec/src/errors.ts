import { ReasonCode } from "./reason-codes.js";

/** Stable, machine-readable error codes. They never change meaning between releases. */
export type MqttErrorCode =
  // framing
  | "INVALID_PACKET_TYPE"
  | "RESERVED_FLAGS"
  | "INVALID_QOS"
  | "INVALID_DUP_FLAG"
  | "REMAINING_LENGTH_TOO_LONG"
  | "NON_MINIMAL_VARINT"
  | "TRUNCATED_PACKET"
  | "TRAILING_BYTES"
  | "INVALID_LENGTH"
  | "PACKET_TOO_LARGE"
  // strings
  | "INVALID_UTF8"
  | "NULL_CHARACTER"
  | "STRING_TOO_LONG"
  | "INVALID_TOPIC_NAME"
  | "INVALID_TOPIC_FILTER"
  | "MISSING_TOPIC"
  // CONNECT / CONNACK
  | "UNSUPPORTED_PROTOCOL_NAME"
  | "UNSUPPORTED_PROTOCOL_VERSION"
  | "INVALID_CONNECT_FLAGS"
  | "INVALID_SESSION_PRESENT"
  // properties
  | "UNKNOWN_PROPERTY"
  | "PROPERTY_NOT_ALLOWED"
  | "DUPLICATE_PROPERTY"
  | "INVALID_PROPERTY_VALUE"
  // identifiers, subscriptions, reason codes
  | "ZERO_PACKET_ID"
  | "EMPTY_SUBSCRIPTION_LIST"
  | "TOO_MANY_TOPIC_FILTERS"
  | "TOO_MANY_USER_PROPERTIES"
  | "INVALID_SUBSCRIPTION_OPTIONS"
  | "INVALID_RETAIN_HANDLING"
  | "NO_LOCAL_ON_SHARED_SUBSCRIPTION"
  | "INVALID_REASON_CODE"
  // encoder input that cannot be put on the wire
  | "INVALID_PACKET"
  // client side: what a connection or an operation ran into
  | "CONNACK_REFUSED"
  | "CONNECTION_FAILED"
  | "CONNECTION_CLOSED"
  | "TIMEOUT"
  | "ABORTED"
  | "QUEUE_FULL"
  | "PUBLISH_REFUSED"
  | "SUBSCRIBE_REFUSED"
  | "UNSUBSCRIBE_REFUSED"
  | "NOT_CONNECTED";

const MARKER = Symbol.for("myqtt.error");

/** Options common to every MqttError. */
export interface MqttErrorOptions {
  /** The MQTT 5.0 reason code to send to the peer (CONNACK or DISCONNECT), when one applies. */
  reasonCode?: number;
  /** The type of the packet being decoded or encoded, when known. */
  packetType?: number;
  cause?: unknown;
}

/**
 * The base of every error the MyQtt packages raise. `code` is stable and meant for programs;
 * `reasonCode` is the MQTT 5.0 reason code that describes it on the wire.
 */
export class MqttError extends Error {
  readonly code: MqttErrorCode;
  readonly reasonCode: number | undefined;
  readonly packetType: number | undefined;

  constructor(code: MqttErrorCode, message: string, options: MqttErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MqttError";
    this.code = code;
    this.reasonCode = options.reasonCode;
    this.packetType = options.packetType;
    Object.defineProperty(this, MARKER, { value: true });
  }

  /** True for any MqttError, also one created by another copy of this package. */
  static is(value: unknown): value is MqttError {
    return typeof value === "object" && value !== null && MARKER in value;
  }
}

/** The bytes cannot be parsed as an MQTT packet (reason code 0x81). */
export class MalformedPacketError extends MqttError {
  constructor(code: MqttErrorCode, message: string, options: MqttErrorOptions = {}) {
    super(code, message, { reasonCode: ReasonCode.MALFORMED_PACKET, ...options });
    this.name = "MalformedPacketError";
  }
}

/** The packet parses, but the protocol does not allow what it says (reason code 0x82). */
export class ProtocolError extends MqttError {
  constructor(code: MqttErrorCode, message: string, options: MqttErrorOptions = {}) {
    super(code, message, { reasonCode: ReasonCode.PROTOCOL_ERROR, ...options });
    this.name = "ProtocolError";
  }
}

/** A packet is larger than the maximum packet size in force (reason code 0x95). */
export class PacketTooLargeError extends MqttError {
  /** The size of the packet in bytes, fixed header included. */
  readonly size: number;
  /** The limit it exceeded. */
  readonly limit: number;

  constructor(size: number, limit: number, options: MqttErrorOptions = {}) {
    super("PACKET_TOO_LARGE", `packet of ${size} bytes exceeds the maximum packet size ${limit}`, {
      reasonCode: ReasonCode.PACKET_TOO_LARGE,
      ...options,
    });
    this.name = "PacketTooLargeError";
    this.size = size;
    this.limit = limit;
  }
}

/**
 * A CONNECT with a protocol name or level this codec does not speak (reason code 0x84). A 3.1.1
 * server answers it with CONNACK return code 1 [MQTT-3.1.2-2].
 */
export class UnsupportedProtocolError extends MqttError {
  readonly protocolName: string;
  readonly protocolLevel: number;

  constructor(
    code: "UNSUPPORTED_PROTOCOL_NAME" | "UNSUPPORTED_PROTOCOL_VERSION",
    protocolName: string,
    protocolLevel: number,
  ) {
    super(code, `unsupported protocol ${JSON.stringify(protocolName)} level ${protocolLevel}`, {
      reasonCode: ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
      packetType: 1,
    });
    this.name = "UnsupportedProtocolError";
    this.protocolName = protocolName;
    this.protocolLevel = protocolLevel;
  }
}

/** A topic name or filter that breaks the rules of 4.7 (0x90 for names, 0x8F for filters). */
export class InvalidTopicError extends MqttError {
  readonly topic: string;

  constructor(
    code: "INVALID_TOPIC_NAME" | "INVALID_TOPIC_FILTER",
    topic: string,
    why: string,
    options: MqttErrorOptions = {},
  ) {
    const kind = code === "INVALID_TOPIC_NAME" ? "topic name" : "topic filter";
    super(code, `invalid ${kind} ${JSON.stringify(topic)}: ${why}`, {
      reasonCode:
        code === "INVALID_TOPIC_NAME"
          ? ReasonCode.TOPIC_NAME_INVALID
          : ReasonCode.TOPIC_FILTER_INVALID,
      ...options,
    });
    this.name = "InvalidTopicError";
    this.topic = topic;
  }
}

/** The packet given to the encoder cannot be put on the wire as it is. */
export class InvalidPacketError extends MqttError {
  constructor(message: string, options: MqttErrorOptions = {}) {
    super("INVALID_PACKET", message, options);
    this.name = "InvalidPacketError";
  }
}
