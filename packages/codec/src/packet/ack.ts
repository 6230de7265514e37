import type { ProtocolVersion } from "../constants.js";
import { InvalidPacketError } from "../errors.js";
import { checkByte, checkPacketId, writeU16 } from "../fields.js";
import type { AckPacket, AckProperties } from "../packets.js";
import { propertiesSize, readProperties, writeProperties } from "../properties.js";
import type { Reader } from "../reader.js";
import { isValidReasonCode } from "../reason-codes.js";
import { varintSize } from "../varint.js";

// PUBACK, PUBREC, PUBREL and PUBCOMP: a packet id, and in 5.0 a reason code and properties that
// may be left out when they are 0 and empty (v5 3.4.2.1).

export function decodeAck(r: Reader, type: AckPacket["type"]): AckPacket {
  const packetId = r.packetId();
  if (r.version < 5) {
    r.done();
    return { type, packetId } as AckPacket;
  }
  let reasonCode = 0;
  let properties: AckProperties | undefined;
  if (r.left > 0) {
    reasonCode = r.u8();
    if (!isValidReasonCode(type, reasonCode)) {
      r.protocolError(
        "INVALID_REASON_CODE",
        `reason code 0x${reasonCode.toString(16)} is not allowed here`,
      );
    }
    if (r.left > 0) properties = readProperties(r, type) as AckProperties | undefined;
  }
  r.done();
  const packet = { type, packetId, reasonCode } as AckPacket;
  if (properties) packet.properties = properties;
  return packet;
}

let propsLen = 0;

export function ackSize(p: AckPacket, v: ProtocolVersion): number {
  const options = { packetType: p.type };
  checkPacketId(p.packetId, options);
  if (v < 5) return 2;
  const code = checkByte("reasonCode", p.reasonCode ?? 0, options);
  if (!isValidReasonCode(p.type, code)) {
    throw new InvalidPacketError(`reason code 0x${code.toString(16)} is not allowed here`, options);
  }
  propsLen = propertiesSize(p.properties, p.type);
  if (propsLen > 0) return 3 + varintSize(propsLen) + propsLen;
  return code === 0 ? 2 : 3;
}

export function writeAck(
  buf: Uint8Array,
  pos: number,
  p: AckPacket,
  v: ProtocolVersion,
  size: number,
): number {
  pos = writeU16(buf, pos, p.packetId);
  if (v < 5 || size === 2) return pos;
  buf[pos++] = p.reasonCode ?? 0;
  if (size > 3) pos = writeProperties(buf, pos, p.properties, propsLen);
  return pos;
}
