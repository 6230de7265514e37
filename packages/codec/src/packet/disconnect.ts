import { PacketType, type ProtocolVersion } from "../constants.js";
import { InvalidPacketError } from "../errors.js";
import { checkByte } from "../fields.js";
import type {
  AuthPacket,
  AuthProperties,
  DisconnectPacket,
  DisconnectProperties,
} from "../packets.js";
import { propertiesSize, readProperties, writeProperties } from "../properties.js";
import type { Reader } from "../reader.js";
import { isValidReasonCode } from "../reason-codes.js";
import { varintSize } from "../varint.js";

// DISCONNECT and AUTH: in 5.0 a reason code and properties, both left out when 0 and empty
// (v5 3.14.2.1, 3.15.2.1). A 3.1/3.1.1 DISCONNECT is empty; AUTH exists only in 5.0.

export function decodeDisconnect(r: Reader): DisconnectPacket {
  if (r.version < 5) {
    r.done();
    return { type: PacketType.DISCONNECT };
  }
  const packet: DisconnectPacket = { type: PacketType.DISCONNECT, reasonCode: readCode(r) };
  if (r.left > 0) {
    const props = readProperties(r, PacketType.DISCONNECT);
    if (props) packet.properties = props as DisconnectProperties;
  }
  r.done();
  return packet;
}

export function decodeAuth(r: Reader): AuthPacket {
  const packet: AuthPacket = { type: PacketType.AUTH, reasonCode: readCode(r) };
  if (r.left > 0) {
    const props = readProperties(r, PacketType.AUTH);
    if (props) packet.properties = props as AuthProperties;
  }
  r.done();
  return packet;
}

function readCode(r: Reader): number {
  if (r.left === 0) return 0;
  const code = r.u8();
  if (!isValidReasonCode(r.type, code)) {
    r.protocolError(
      "INVALID_REASON_CODE",
      `reason code 0x${code.toString(16)} is not allowed here`,
    );
  }
  return code;
}

let propsLen = 0;

export function disconnectSize(p: DisconnectPacket | AuthPacket, v: ProtocolVersion): number {
  const options = { packetType: p.type };
  if (v < 5) {
    if (p.type === PacketType.AUTH)
      throw new InvalidPacketError("AUTH exists only in MQTT 5", options);
    return 0;
  }
  const code = checkByte("reasonCode", p.reasonCode ?? 0, options);
  if (!isValidReasonCode(p.type, code)) {
    throw new InvalidPacketError(`reason code 0x${code.toString(16)} is not allowed here`, options);
  }
  propsLen = propertiesSize(p.properties, p.type);
  if (propsLen > 0) return 1 + varintSize(propsLen) + propsLen;
  if (code === 0) return 0;
  // DISCONNECT may stop after its reason code (v5 3.14.2.2.1); AUTH leaves out the property
  // length only together with the reason code (v5 3.15.2.1).
  return p.type === PacketType.AUTH ? 2 : 1;
}

export function writeDisconnect(
  buf: Uint8Array,
  pos: number,
  p: DisconnectPacket | AuthPacket,
  size: number,
): number {
  if (size === 0) return pos;
  buf[pos++] = p.reasonCode ?? 0;
  if (size > 1) pos = writeProperties(buf, pos, p.properties, propsLen);
  return pos;
}
