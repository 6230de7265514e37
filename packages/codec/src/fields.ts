import { MAX_PACKET_ID, MAX_STRING_LENGTH, type QoS } from "./constants.js";
import { InvalidPacketError, type MqttErrorOptions } from "./errors.js";
import { utf8Length, writeUtf8 } from "./utf8.js";

// Checks and writers for the fields the encoder puts on the wire. Sizes come first (so the
// packet is allocated once), then the writers fill the bytes.

/** The encoded size of a length-prefixed UTF-8 string field. */
export function stringFieldSize(name: string, text: unknown, options: MqttErrorOptions): number {
  if (typeof text !== "string") throw new InvalidPacketError(`${name} must be a string`, options);
  const len = utf8Length(text, options);
  if (len > MAX_STRING_LENGTH) {
    throw new InvalidPacketError(
      `${name} is ${len} bytes; at most ${MAX_STRING_LENGTH} fit`,
      options,
    );
  }
  return 2 + len;
}

/** The encoded size of a length-prefixed binary field. */
export function binaryFieldSize(name: string, bytes: unknown, options: MqttErrorOptions): number {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidPacketError(`${name} must be a Uint8Array`, options);
  }
  if (bytes.length > MAX_STRING_LENGTH) {
    throw new InvalidPacketError(
      `${name} is ${bytes.length} bytes; at most ${MAX_STRING_LENGTH} fit`,
      options,
    );
  }
  return 2 + bytes.length;
}

/** Checks a packet identifier for the encoder: an integer in 1..65535 [MQTT-2.2.1-3]. */
export function checkPacketId(id: unknown, options: MqttErrorOptions): void {
  if (typeof id !== "number" || !Number.isInteger(id) || id < 1 || id > MAX_PACKET_ID) {
    throw new InvalidPacketError(
      `packetId must be an integer in 1..65535, got ${String(id)}`,
      options,
    );
  }
}

/** Checks a QoS for the encoder. */
export function checkQoS(qos: unknown, options: MqttErrorOptions): asserts qos is QoS {
  if (qos !== 0 && qos !== 1 && qos !== 2) {
    throw new InvalidPacketError(`qos must be 0, 1 or 2, got ${String(qos)}`, options);
  }
}

/** Checks a one-byte reason code for the encoder. */
export function checkByte(name: string, value: unknown, options: MqttErrorOptions): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 255) {
    throw new InvalidPacketError(
      `${name} must be an integer in 0..255, got ${String(value)}`,
      options,
    );
  }
  return value;
}

export function writeU16(buf: Uint8Array, pos: number, value: number): number {
  buf[pos] = value >> 8;
  buf[pos + 1] = value & 0xff;
  return pos + 2;
}

/** Writes a length-prefixed string already checked by stringFieldSize. */
export function writeString(buf: Uint8Array, pos: number, text: string): number {
  const start = pos + 2;
  const end = writeUtf8(buf, start, text, utf8Length(text));
  const len = end - start;
  buf[pos] = len >> 8;
  buf[pos + 1] = len & 0xff;
  return end;
}

/** Writes a length-prefixed binary field already checked by binaryFieldSize. */
export function writeBinary(buf: Uint8Array, pos: number, bytes: Uint8Array): number {
  buf[pos] = bytes.length >> 8;
  buf[pos + 1] = bytes.length & 0xff;
  buf.set(bytes, pos + 2);
  return pos + 2 + bytes.length;
}
