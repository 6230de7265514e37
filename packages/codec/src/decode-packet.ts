import { PacketType } from "./constants.js";
import { decodeAck } from "./packet/ack.js";
import { decodeConnack } from "./packet/connack.js";
import { decodeConnect } from "./packet/connect.js";
import { decodeAuth, decodeDisconnect } from "./packet/disconnect.js";
import { decodePublish } from "./packet/publish.js";
import { decodeSuback, decodeUnsuback } from "./packet/suback.js";
import { decodeSubscribe } from "./packet/subscribe.js";
import { decodeUnsubscribe } from "./packet/unsubscribe.js";
import type { AckPacket, Packet } from "./packets.js";
import type { Reader } from "./reader.js";

/** The fixed header flags each packet type must carry; PUBLISH (-1) has its own rules. */
const REQUIRED_FLAGS = [0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

/** Decodes the body the reader points at, for a packet whose first byte is `first`. */
export function decodeBody(r: Reader, first: number): Packet {
  const type = first >> 4;
  const flags = first & 0x0f;
  if (type === 0 || (type === PacketType.AUTH && r.version < 5)) {
    r.malformed("INVALID_PACKET_TYPE", `packet type ${type} is reserved [MQTT-2.1.3-1]`);
  }
  if (type !== PacketType.PUBLISH) {
    const required = REQUIRED_FLAGS[type]!;
    // MQTT 3.1 set DUP when it resent PUBREL, SUBSCRIBE or UNSUBSCRIBE.
    if (flags !== required && !(r.version === 3 && required === 2 && flags === 0x0a)) {
      r.malformed(
        "RESERVED_FLAGS",
        `fixed header flags 0x${flags.toString(16)} are reserved for this packet type [MQTT-2.1.3-1]`,
      );
    }
  }
  switch (type) {
    case PacketType.PUBLISH:
      return decodePublish(r, flags);
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      return decodeAck(r, type as AckPacket["type"]);
    case PacketType.CONNECT:
      return decodeConnect(r);
    case PacketType.CONNACK:
      return decodeConnack(r);
    case PacketType.SUBSCRIBE:
      return decodeSubscribe(r);
    case PacketType.SUBACK:
      return decodeSuback(r);
    case PacketType.UNSUBSCRIBE:
      return decodeUnsubscribe(r);
    case PacketType.UNSUBACK:
      return decodeUnsuback(r);
    case PacketType.PINGREQ:
      r.done();
      return { type: PacketType.PINGREQ };
    case PacketType.PINGRESP:
      r.done();
      return { type: PacketType.PINGRESP };
    case PacketType.DISCONNECT:
      return decodeDisconnect(r);
    default:
      return decodeAuth(r);
  }
}
