import { PacketType, type ProtocolVersion } from "../constants.js";
import { InvalidPacketError } from "../errors.js";
import { checkPacketId, stringFieldSize, writeString, writeU16 } from "../fields.js";
import type { UnsubscribePacket, UnsubscribeProperties } from "../packets.js";
import { propertiesSize, readProperties, writeProperties } from "../properties.js";
import type { Reader } from "../reader.js";
import { varintSize } from "../varint.js";

const OPTIONS = { packetType: PacketType.UNSUBSCRIBE };

export function decodeUnsubscribe(r: Reader): UnsubscribePacket {
  const packet: UnsubscribePacket = {
    type: PacketType.UNSUBSCRIBE,
    packetId: r.packetId(),
    topicFilters: [],
  };
  if (r.version === 5) {
    const props = readProperties(r, PacketType.UNSUBSCRIBE);
    if (props) packet.properties = props as UnsubscribeProperties;
  }
  while (r.left > 0) {
    r.checkTopicFilterCount(packet.topicFilters.length);
    packet.topicFilters.push(r.utf8());
  }
  if (packet.topicFilters.length === 0) {
    r.protocolError(
      "EMPTY_SUBSCRIPTION_LIST",
      "UNSUBSCRIBE without a topic filter [MQTT-3.10.3-2]",
    );
  }
  return packet;
}

let propsLen = 0;

export function unsubscribeSize(p: UnsubscribePacket, v: ProtocolVersion): number {
  checkPacketId(p.packetId, OPTIONS);
  if (!Array.isArray(p.topicFilters) || p.topicFilters.length === 0) {
    throw new InvalidPacketError(
      "UNSUBSCRIBE needs at least one topic filter [MQTT-3.10.3-2]",
      OPTIONS,
    );
  }
  let size = 2;
  for (const f of p.topicFilters) size += stringFieldSize("topic filter", f, OPTIONS);
  if (v === 5) {
    propsLen = propertiesSize(p.properties, PacketType.UNSUBSCRIBE);
    size += varintSize(propsLen) + propsLen;
  }
  return size;
}

export function writeUnsubscribe(
  buf: Uint8Array,
  pos: number,
  p: UnsubscribePacket,
  v: ProtocolVersion,
): number {
  pos = writeU16(buf, pos, p.packetId);
  if (v === 5) pos = writeProperties(buf, pos, p.properties, propsLen);
  for (const f of p.topicFilters) pos = writeString(buf, pos, f);
  return pos;
}
