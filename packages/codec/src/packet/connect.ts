import { PacketType, type ProtocolVersion } from "../constants.js";
import { InvalidPacketError, UnsupportedProtocolError } from "../errors.js";
import {
  binaryFieldSize,
  checkQoS,
  stringFieldSize,
  writeBinary,
  writeString,
  writeU16,
} from "../fields.js";
import type { ConnectPacket, ConnectProperties, Will, WillProperties } from "../packets.js";
import { propertiesSize, readProperties, WILL_PROPERTIES, writeProperties } from "../properties.js";
import type { Reader } from "../reader.js";
import { validateTopicName } from "../topics.js";
import { varintSize } from "../varint.js";

const OPTIONS = { packetType: PacketType.CONNECT };

const USERNAME = 0x80;
const PASSWORD = 0x40;
const WILL_RETAIN = 0x20;
const WILL_FLAG = 0x04;
const CLEAN = 0x02;

/** Decodes a CONNECT body; sets `r.version` to the level it announces. */
export function decodeConnect(r: Reader): ConnectPacket {
  const protocolName = r.utf8();
  const level = r.u8();
  const version = level & 0x7f;
  if (protocolName === "MQTT") {
    if (version !== 4 && version !== 5) {
      throw new UnsupportedProtocolError("UNSUPPORTED_PROTOCOL_VERSION", protocolName, level);
    }
  } else if (protocolName === "MQIsdp") {
    if (version !== 3) {
      throw new UnsupportedProtocolError("UNSUPPORTED_PROTOCOL_VERSION", protocolName, level);
    }
  } else {
    // [MQTT-3.1.2-1]: another protocol name is not this protocol at all.
    throw new UnsupportedProtocolError("UNSUPPORTED_PROTOCOL_NAME", protocolName, level);
  }
  r.version = version as ProtocolVersion;

  const flags = r.u8();
  if ((flags & 0x01) !== 0) {
    r.malformed("RESERVED_FLAGS", "CONNECT flags reserved bit is set [MQTT-3.1.2-3]");
  }
  const hasWill = (flags & WILL_FLAG) !== 0;
  const willQoS = (flags >> 3) & 0x03;
  const willRetain = (flags & WILL_RETAIN) !== 0;
  if (!hasWill && (willQoS !== 0 || willRetain)) {
    r.malformed(
      "INVALID_CONNECT_FLAGS",
      "will QoS or will retain set without a will [MQTT-3.1.2-11] [MQTT-3.1.2-13]",
    );
  }
  if (willQoS === 3) r.malformed("INVALID_QOS", "will QoS 3 [MQTT-3.1.2-12]");
  const hasUsername = (flags & USERNAME) !== 0;
  const hasPassword = (flags & PASSWORD) !== 0;
  if (version < 5 && hasPassword && !hasUsername) {
    r.malformed("INVALID_CONNECT_FLAGS", "password flag without user name flag [MQTT-3.1.2-22]");
  }

  const packet: ConnectPacket = {
    type: PacketType.CONNECT,
    protocolName,
    protocolVersion: version as ProtocolVersion,
    clean: (flags & CLEAN) !== 0,
    keepAlive: r.u16(),
    clientId: "",
  };
  if (level !== version) packet.bridge = true;
  if (version === 5) {
    const props = readProperties(r, PacketType.CONNECT) as ConnectProperties | undefined;
    if (props) {
      if (props.authenticationData !== undefined && props.authenticationMethod === undefined) {
        r.protocolError(
          "INVALID_PROPERTY_VALUE",
          "authentication data without an authentication method (v5 3.1.2.11.10)",
        );
      }
      packet.properties = props;
    }
  }
  packet.clientId = r.utf8();
  if (hasWill) {
    const willProps = version === 5 ? readProperties(r, WILL_PROPERTIES) : undefined;
    const topic = r.utf8();
    validateTopicName(topic, OPTIONS);
    const will: Will = {
      topic,
      payload: r.binary(),
      qos: willQoS as 0 | 1 | 2,
      retain: willRetain,
    };
    if (willProps) will.properties = willProps as WillProperties;
    packet.will = will;
  }
  if (hasUsername) packet.username = r.utf8();
  if (hasPassword) packet.password = r.binary();
  r.done();
  return packet;
}

function protocolNameFor(p: ConnectPacket): "MQTT" | "MQIsdp" {
  const name = p.protocolVersion === 3 ? "MQIsdp" : "MQTT";
  if (p.protocolName !== undefined && p.protocolName !== name) {
    throw new InvalidPacketError(
      `protocol name ${p.protocolName} does not go with level ${p.protocolVersion}`,
      OPTIONS,
    );
  }
  return name;
}

// Sizes computed by connectSize for the writeConnect call that immediately follows it.
let propsLen = 0;
let willPropsLen = 0;

/** The remaining length of a CONNECT; checks every field. */
export function connectSize(p: ConnectPacket): number {
  const v = p.protocolVersion;
  if (v !== 3 && v !== 4 && v !== 5) {
    throw new InvalidPacketError(`protocolVersion must be 3, 4 or 5, got ${String(v)}`, OPTIONS);
  }
  const name = protocolNameFor(p);
  if (!Number.isInteger(p.keepAlive) || p.keepAlive < 0 || p.keepAlive > 0xffff) {
    throw new InvalidPacketError(`keepAlive must be an integer in 0..65535`, OPTIONS);
  }
  let size = 2 + name.length + 1 + 1 + 2;
  if (v === 5) {
    propsLen = propertiesSize(p.properties, PacketType.CONNECT);
    size += varintSize(propsLen) + propsLen;
  }
  size += stringFieldSize("clientId", p.clientId, OPTIONS);
  const will = p.will;
  if (will !== undefined) {
    checkQoS(will.qos, OPTIONS);
    validateTopicName(will.topic, OPTIONS);
    if (v === 5) {
      willPropsLen = propertiesSize(will.properties, WILL_PROPERTIES);
      size += varintSize(willPropsLen) + willPropsLen;
    }
    size += stringFieldSize("will topic", will.topic, OPTIONS);
    size += binaryFieldSize("will payload", will.payload, OPTIONS);
  }
  if (p.username !== undefined) size += stringFieldSize("username", p.username, OPTIONS);
  if (p.password !== undefined) {
    if (v < 5 && p.username === undefined) {
      throw new InvalidPacketError(
        "a password needs a username before MQTT 5 [MQTT-3.1.2-22]",
        OPTIONS,
      );
    }
    size += binaryFieldSize("password", p.password, OPTIONS);
  }
  return size;
}

/** Writes a CONNECT body measured by connectSize. */
export function writeConnect(buf: Uint8Array, pos: number, p: ConnectPacket): number {
  const v = p.protocolVersion;
  pos = writeString(buf, pos, v === 3 ? "MQIsdp" : "MQTT");
  buf[pos++] = p.bridge ? v | 0x80 : v;
  const will = p.will;
  let flags = p.clean ? CLEAN : 0;
  if (will !== undefined) flags |= WILL_FLAG | (will.qos << 3) | (will.retain ? WILL_RETAIN : 0);
  if (p.username !== undefined) flags |= USERNAME;
  if (p.password !== undefined) flags |= PASSWORD;
  buf[pos++] = flags;
  pos = writeU16(buf, pos, p.keepAlive);
  if (v === 5) pos = writeProperties(buf, pos, p.properties, propsLen);
  pos = writeString(buf, pos, p.clientId);
  if (will !== undefined) {
    if (v === 5) pos = writeProperties(buf, pos, will.properties, willPropsLen);
    pos = writeString(buf, pos, will.topic);
    pos = writeBinary(buf, pos, will.payload);
  }
  if (p.username !== undefined) pos = writeString(buf, pos, p.username);
  if (p.password !== undefined) pos = writeBinary(buf, pos, p.password);
  return pos;
}
