import { PacketType, type ProtocolVersion, type QoS, type RetainHandling } from "../constants.js";
import { InvalidPacketError } from "../errors.js";
import { checkPacketId, checkQoS, stringFieldSize, writeString, writeU16 } from "../fields.js";
import type { SubscribePacket, SubscribeProperties, Subscription } from "../packets.js";
import { propertiesSize, readProperties, writeProperties } from "../properties.js";
import type { Reader } from "../reader.js";
import { isSharedSubscription } from "../topics.js";
import { varintSize } from "../varint.js";

const OPTIONS = { packetType: PacketType.SUBSCRIBE };

// Topic filter syntax is left to the receiver's policy: a broker answers a bad filter with a
// failure code in SUBACK for that filter alone (see validateTopicFilter).
export function decodeSubscribe(r: Reader): SubscribePacket {
  const packetId = r.packetId();
  const v5 = r.version === 5;
  const packet: SubscribePacket = { type: PacketType.SUBSCRIBE, packetId, subscriptions: [] };
  if (v5) {
    const props = readProperties(r, PacketType.SUBSCRIBE);
    if (props) packet.properties = props as SubscribeProperties;
  }
  while (r.left > 0) {
    r.checkTopicFilterCount(packet.subscriptions.length);
    const topicFilter = r.utf8();
    const options = r.u8();
    const qos = options & 0x03;
    if (!v5) {
      if (qos === 3) r.malformed("INVALID_QOS", "subscription with QoS 3 [MQTT-3-8.3-4]");
      if ((options & 0xfc) !== 0) {
        r.malformed(
          "INVALID_SUBSCRIPTION_OPTIONS",
          "reserved bits of the requested QoS are set [MQTT-3.8.3-4]",
        );
      }
      packet.subscriptions.push({ topicFilter, qos: qos as QoS });
      continue;
    }
    if ((options & 0xc0) !== 0) {
      r.malformed(
        "INVALID_SUBSCRIPTION_OPTIONS",
        "reserved bits of the subscription options are set [MQTT-3.8.3-5]",
      );
    }
    if (qos === 3) r.protocolError("INVALID_QOS", "subscription with Maximum QoS 3 (v5 3.8.3.1)");
    const retainHandling = (options >> 4) & 0x03;
    if (retainHandling === 3)
      r.protocolError("INVALID_RETAIN_HANDLING", "retain handling 3 (v5 3.8.3.1)");
    const noLocal = (options & 0x04) !== 0;
    if (noLocal && isSharedSubscription(topicFilter)) {
      r.protocolError(
        "NO_LOCAL_ON_SHARED_SUBSCRIPTION",
        "no local on a shared subscription [MQTT-3.8.3-4]",
      );
    }
    packet.subscriptions.push({
      topicFilter,
      qos: qos as QoS,
      noLocal,
      retainAsPublished: (options & 0x08) !== 0,
      retainHandling: retainHandling as RetainHandling,
    });
  }
  if (packet.subscriptions.length === 0) {
    r.protocolError("EMPTY_SUBSCRIPTION_LIST", "SUBSCRIBE without a topic filter [MQTT-3.8.3-2]");
  }
  return packet;
}

let propsLen = 0;

function optionsByte(s: Subscription, v: ProtocolVersion): number {
  if (v < 5) return s.qos;
  const rh = s.retainHandling ?? 0;
  if (rh !== 0 && rh !== 1 && rh !== 2)
    throw new InvalidPacketError("retainHandling must be 0, 1 or 2", OPTIONS);
  return s.qos | (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | (rh << 4);
}

export function subscribeSize(p: SubscribePacket, v: ProtocolVersion): number {
  checkPacketId(p.packetId, OPTIONS);
  if (!Array.isArray(p.subscriptions) || p.subscriptions.length === 0) {
    throw new InvalidPacketError(
      "SUBSCRIBE needs at least one subscription [MQTT-3.8.3-2]",
      OPTIONS,
    );
  }
  let size = 2;
  for (const s of p.subscriptions) {
    checkQoS(s.qos, OPTIONS);
    if (v === 5 && s.noLocal && isSharedSubscription(s.topicFilter)) {
      throw new InvalidPacketError("no local on a shared subscription [MQTT-3.8.3-4]", OPTIONS);
    }
    optionsByte(s, v);
    size += stringFieldSize("topicFilter", s.topicFilter, OPTIONS) + 1;
  }
  if (v === 5) {
    propsLen = propertiesSize(p.properties, PacketType.SUBSCRIBE);
    size += varintSize(propsLen) + propsLen;
  }
  return size;
}

export function writeSubscribe(
  buf: Uint8Array,
  pos: number,
  p: SubscribePacket,
  v: ProtocolVersion,
): number {
  pos = writeU16(buf, pos, p.packetId);
  if (v === 5) pos = writeProperties(buf, pos, p.properties, propsLen);
  for (const s of p.subscriptions) {
    pos = writeString(buf, pos, s.topicFilter);
    buf[pos++] = optionsByte(s, v);
  }
  return pos;
}
