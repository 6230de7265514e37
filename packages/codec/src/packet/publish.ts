import { MAX_STRING_LENGTH, PacketType, type ProtocolVersion, type QoS } from "../constants.js";
import { InvalidPacketError, InvalidTopicError } from "../errors.js";
import { checkPacketId, checkQoS, writeU16 } from "../fields.js";
import type { PublishPacket, PublishProperties } from "../packets.js";
import { propertiesSize, readProperties, writeProperties } from "../properties.js";
import type { Reader } from "../reader.js";
import { writeUtf8 } from "../utf8.js";
import { varintSize } from "../varint.js";

const OPTIONS = { packetType: PacketType.PUBLISH };
const PLUS = 0x2b;
const HASH = 0x23;

function wildcardIn(topic: string): boolean {
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return true;
  }
  return false;
}

export function decodePublish(r: Reader, flags: number): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) r.malformed("INVALID_QOS", "PUBLISH with QoS 3 [MQTT-3.3.1-4]");
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0)
    r.malformed("INVALID_DUP_FLAG", "DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]");
  const topic = r.utf8();
  const packet: PublishPacket = {
    type: PacketType.PUBLISH,
    topic,
    payload: EMPTY,
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    dup,
  };
  if (qos > 0) packet.packetId = r.packetId();
  if (r.version === 5) {
    const props = readProperties(r, PacketType.PUBLISH);
    if (props) packet.properties = props as PublishProperties;
  }
  if (topic.length === 0) {
    // 5.0 lets a Topic Alias stand for the topic; otherwise a topic is required (v5 3.3.2.1).
    if (r.version !== 5 || packet.properties?.topicAlias === undefined) {
      r.protocolError(
        "MISSING_TOPIC",
        "PUBLISH without a topic name or topic alias [MQTT-4.7.3-1]",
      );
    }
  } else if (wildcardIn(topic)) {
    throw new InvalidTopicError(
      "INVALID_TOPIC_NAME",
      topic,
      "wildcards are not allowed in a topic name [MQTT-3.3.2-2]",
      OPTIONS,
    );
  }
  packet.payload = r.rest();
  return packet;
}

const EMPTY = new Uint8Array(0);

// Computed by publishSize for the writePublish call that immediately follows it.
let topicLen = 0;
let propsLen = 0;

/** The UTF-8 length of a topic name, checking it in the same pass. */
function topicLength(topic: string): number {
  const n = topic.length;
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i);
    if (c < 0x80) {
      if (c === PLUS || c === HASH) {
        throw new InvalidTopicError(
          "INVALID_TOPIC_NAME",
          topic,
          "wildcards are not allowed in a topic name [MQTT-3.3.2-2]",
          OPTIONS,
        );
      }
      if (c === 0) {
        throw new InvalidTopicError(
          "INVALID_TOPIC_NAME",
          topic,
          "contains U+0000 [MQTT-4.7.3-2]",
          OPTIONS,
        );
      }
    } else if (c < 0x800) {
      len += 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = c <= 0xdbff && i + 1 < n ? topic.charCodeAt(i + 1) : 0;
      if (d < 0xdc00 || d > 0xdfff) {
        throw new InvalidPacketError(
          `topic has a lone surrogate at index ${i} [MQTT-1.5.4-1]`,
          OPTIONS,
        );
      }
      i++;
      len += 2;
    } else {
      len += 2;
    }
  }
  return len;
}

export function publishSize(p: PublishPacket, v: ProtocolVersion): number {
  const qos = p.qos;
  checkQoS(qos, OPTIONS);
  if (qos > 0) checkPacketId(p.packetId, OPTIONS);
  else if (p.dup) throw new InvalidPacketError("DUP must be 0 for QoS 0 [MQTT-3.3.1-2]", OPTIONS);
  const topic = p.topic;
  if (typeof topic !== "string") throw new InvalidPacketError("topic must be a string", OPTIONS);
  topicLen = topicLength(topic);
  if (topicLen === 0 && (v !== 5 || p.properties?.topicAlias === undefined)) {
    throw new InvalidTopicError(
      "INVALID_TOPIC_NAME",
      topic,
      "must be at least one character long [MQTT-4.7.3-1]",
      OPTIONS,
    );
  }
  if (topicLen > MAX_STRING_LENGTH) {
    throw new InvalidPacketError(
      `topic is ${topicLen} bytes; at most ${MAX_STRING_LENGTH} fit`,
      OPTIONS,
    );
  }
  const payload = p.payload;
  if (!(payload instanceof Uint8Array))
    throw new InvalidPacketError("payload must be a Uint8Array", OPTIONS);
  let size = 2 + topicLen + payload.length;
  if (qos > 0) size += 2;
  if (v === 5) {
    propsLen = propertiesSize(p.properties, PacketType.PUBLISH);
    size += varintSize(propsLen) + propsLen;
  }
  return size;
}

/** The fixed header flags of a PUBLISH: DUP, QoS, RETAIN. */
export function publishFlags(p: PublishPacket): number {
  return (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 0x01 : 0);
}

export function writePublish(
  buf: Uint8Array,
  pos: number,
  p: PublishPacket,
  v: ProtocolVersion,
): number {
  buf[pos] = topicLen >> 8;
  buf[pos + 1] = topicLen & 0xff;
  pos = writeUtf8(buf, pos + 2, p.topic, topicLen);
  if (p.qos > 0) pos = writeU16(buf, pos, p.packetId!);
  if (v === 5) pos = writeProperties(buf, pos, p.properties, propsLen);
  buf.set(p.payload, pos);
  return pos + p.payload.length;
}
