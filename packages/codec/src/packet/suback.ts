import { PacketType, type ProtocolVersion } from "../constants.js";
import { InvalidPacketError } from "../errors.js";
import { checkByte, checkPacketId, writeU16 } from "../fields.js";
import type { AckProperties, SubackPacket, UnsubackPacket } from "../packets.js";
import { propertiesSize, readProperties, writeProperties } from "../properties.js";
import type { Reader } from "../reader.js";
import { isValidReasonCode } from "../reason-codes.js";
import { varintSize } from "../varint.js";

// SUBACK and UNSUBACK: a packet id, 5.0 properties and one reason code per filter. A 3.1/3.1.1
// UNSUBACK carries the packet id alone.

function readCodes(r: Reader, type: number): number[] {
  const codes: number[] = [];
  while (r.left > 0) {
    const code = r.u8();
    if (!isValidReasonCode(type, code, r.version)) {
      r.protocolError(
        "INVALID_REASON_CODE",
        `reason code 0x${code.toString(16)} is not allowed here`,
      );
    }
    codes.push(code);
  }
  if (codes.length === 0) r.malformed("INVALID_LENGTH", "acknowledgement without reason codes");
  return codes;
}

export function decodeSuback(r: Reader): SubackPacket {
  const packet: SubackPacket = { type: PacketType.SUBACK, packetId: r.packetId(), reasonCodes: [] };
  if (r.version === 5) {
    const props = readProperties(r, PacketType.SUBACK);
    if (props) packet.properties = props as AckProperties;
  }
  packet.reasonCodes = readCodes(r, PacketType.SUBACK);
  return packet;
}

export function decodeUnsuback(r: Reader): UnsubackPacket {
  const packet: UnsubackPacket = { type: PacketType.UNSUBACK, packetId: r.packetId() };
  if (r.version < 5) {
    r.done();
    return packet;
  }
  const props = readProperties(r, PacketType.UNSUBACK);
  if (props) packet.properties = props as AckProperties;
  packet.reasonCodes = readCodes(r, PacketType.UNSUBACK);
  return packet;
}

let propsLen = 0;

function codesSize(type: number, codes: unknown, v: ProtocolVersion): number {
  const options = { packetType: type };
  if (!Array.isArray(codes) || codes.length === 0) {
    throw new InvalidPacketError("reasonCodes needs one code per topic filter", options);
  }
  for (const c of codes) {
    if (!isValidReasonCode(type, checkByte("reason code", c, options), v)) {
      throw new InvalidPacketError(
        `reason code 0x${(c as number).toString(16)} is not allowed here`,
        options,
      );
    }
  }
  return codes.length;
}

export function subackSize(p: SubackPacket | UnsubackPacket, v: ProtocolVersion): number {
  checkPacketId(p.packetId, { packetType: p.type });
  if (p.type === PacketType.UNSUBACK && v < 5) return 2;
  let size = 2 + codesSize(p.type, p.reasonCodes, v);
  if (v === 5) {
    propsLen = propertiesSize(p.properties, p.type);
    size += varintSize(propsLen) + propsLen;
  }
  return size;
}

export function writeSuback(
  buf: Uint8Array,
  pos: number,
  p: SubackPacket | UnsubackPacket,
  v: ProtocolVersion,
): number {
  pos = writeU16(buf, pos, p.packetId);
  if (p.type === PacketType.UNSUBACK && v < 5) return pos;
  if (v === 5) pos = writeProperties(buf, pos, p.properties, propsLen);
  for (const c of p.reasonCodes!) buf[pos++] = c;
  return pos;
}
