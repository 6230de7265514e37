import { PacketType, type ProtocolVersion } from "../constants.js";
import { InvalidPacketError } from "../errors.js";
import { checkByte } from "../fields.js";
import type { ConnackPacket, ConnackProperties } from "../packets.js";
import { propertiesSize, readProperties, writeProperties } from "../properties.js";
import type { Reader } from "../reader.js";
import { isValidReasonCode } from "../reason-codes.js";
import { varintSize } from "../varint.js";

const OPTIONS = { packetType: PacketType.CONNACK };

export function decodeConnack(r: Reader): ConnackPacket {
  const flags = r.u8();
  if ((flags & 0xfe) !== 0) {
    r.malformed("RESERVED_FLAGS", "CONNACK acknowledge flags reserved bits are set [MQTT-3.2.2-1]");
  }
  const reasonCode = r.u8();
  // A 3.1.1 server refusing a 5.0 client answers with a 2-byte CONNACK (return code 1, with no
  // property length): a 5.0 decoder reads such a CONNACK as a 3.1.1 return code.
  const legacy = r.version === 5 && r.left === 0;
  if (!isValidReasonCode(PacketType.CONNACK, reasonCode, legacy ? 4 : r.version)) {
    r.protocolError(
      "INVALID_REASON_CODE",
      `CONNACK code 0x${reasonCode.toString(16)} is not defined`,
    );
  }
  const sessionPresent = (flags & 1) === 1;
  if (sessionPresent && reasonCode !== 0) {
    r.protocolError("INVALID_SESSION_PRESENT", "session present with a refusal [MQTT-3.2.2-6]");
  }
  const packet: ConnackPacket = { type: PacketType.CONNACK, sessionPresent, reasonCode };
  if (r.version === 5 && !legacy) {
    const props = readProperties(r, PacketType.CONNACK);
    if (props) packet.properties = props as ConnackProperties;
  }
  r.done();
  return packet;
}

let propsLen = 0;

export function connackSize(p: ConnackPacket, v: ProtocolVersion): number {
  const code = checkByte("reasonCode", p.reasonCode, OPTIONS);
  if (!isValidReasonCode(PacketType.CONNACK, code, v)) {
    throw new InvalidPacketError(`CONNACK code 0x${code.toString(16)} is not defined`, OPTIONS);
  }
  if (p.sessionPresent && code !== 0) {
    throw new InvalidPacketError("session present with a refusal [MQTT-3.2.2-6]", OPTIONS);
  }
  if (v < 5) return 2;
  propsLen = propertiesSize(p.properties, PacketType.CONNACK);
  return 2 + varintSize(propsLen) + propsLen;
}

export function writeConnack(
  buf: Uint8Array,
  pos: number,
  p: ConnackPacket,
  v: ProtocolVersion,
): number {
  buf[pos++] = p.sessionPresent ? 1 : 0;
  buf[pos++] = p.reasonCode;
  if (v === 5) pos = writeProperties(buf, pos, p.properties, propsLen);
  return pos;
}
