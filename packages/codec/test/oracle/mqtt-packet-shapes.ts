// The mapping between our packet shapes and mqtt-packet's, and mqtt-packet's known differences.
// Each difference is handled here, with the reason, rather than by skipping packets.
//
// Differences that need no handling:
// - generate writes a 5.0 DISCONNECT and AUTH with reason code and property length always,
//   never the short forms (v5 3.14.2.1, 3.15.2.1); both forms decode to the same packet.
// - The parser rejects an AUTH of Remaining Length 0 ("Invalid auth reason code"), which our
//   encoder writes for reason 0 without properties; the arbitraries never make one, as an AUTH
//   must carry its Authentication Method (v5 3.15.2.2.2).

import { Buffer } from "node:buffer";
import type {
  IAuthPacket,
  IConnackPacket,
  IConnectPacket,
  IDisconnectPacket,
  IPubackPacket,
  IPublishPacket,
  ISubackPacket,
  ISubscribePacket,
  IUnsubackPacket,
  IUnsubscribePacket,
  Packet as MqttPacket,
} from "mqtt-packet";
import mqtt from "mqtt-packet";
import {
  type AckPacket,
  type ConnectPacket,
  type Packet,
  PacketType,
  type ProtocolVersion,
  type Subscription,
  type UserProperties,
  type Will,
} from "../../src/index.js";
import type { Constraints, Version } from "./arbitraries.js";

/** Packets for our encode → mqtt-packet's parser. */
export const FOR_MQTT_PARSER: Constraints = {
  // The parser tests `if (userProperties[name])` before appending a repeated name, so a first
  // value "" is overwritten by the next one: ["a",""],["a","x"] parses as { a: "x" }.
  noEmptyFirstValueOfRepeatedName: true,
  passwordNeedsUsername: false,
  emptyClientIdNeedsClean: false,
  noBridgeInV5: false,
};

/** Packets for mqtt-packet's generate → our decodePacket. */
export const FOR_MQTT_GENERATE: Constraints = {
  noEmptyFirstValueOfRepeatedName: false,
  // generate refuses a password without a username ("Username is required to use password")
  // at every level; 5.0 allows it (v5 3.1.2.9).
  passwordNeedsUsername: true,
  // generate applies the 3.1.1 rule [MQTT-3.1.3-7] to 5.0 too ("clientId must be given if
  // cleanSession set to 0"); 5.0 has no such rule (v5 3.1.3.1).
  emptyClientIdNeedsClean: true,
  // generate knows bridge levels 131 and 132 only; 5 + 128 is written as level 3.
  noBridgeInV5: true,
};

// ---- running mqtt-packet ------------------------------------------------------------------------

const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Parses exactly one packet with mqtt-packet; throws its error. */
export function mqttParse(bytes: Uint8Array, version: Version): MqttPacket {
  const parser = mqtt.parser({ protocolVersion: version });
  const packets: MqttPacket[] = [];
  const errors: unknown[] = [];
  parser.on("packet", (p) => packets.push(p));
  parser.on("error", (e) => errors.push(e));
  const left = parser.parse(toBuffer(bytes));
  if (errors.length > 0) throw errors[0];
  if (packets.length !== 1 || left !== 0) {
    throw new Error(`mqtt-packet parsed ${packets.length} packets, ${left} bytes left`);
  }
  return packets[0]!;
}

/** mqtt.generate; it throws on most invalid input (an 'error' event without a listener). */
export function mqttGenerate(packet: MqttPacket, version: Version): Buffer {
  return mqtt.generate(packet, { protocolVersion: version });
}

// ---- user properties --------------------------------------------------------------------------

type MqttUserProperties = Record<string, string | string[]>;

/**
 * mqtt-packet holds user properties as an object: one key per name, a repeated name's values as
 * an array in wire order. Names come out grouped, in JS key order (integer-like names first),
 * so the order between different names is not kept. A null prototype keeps "__proto__" a key.
 */
export function userPropertiesToMqtt(pairs: UserProperties): MqttUserProperties {
  const out: MqttUserProperties = Object.create(null);
  for (const [name, value] of pairs) {
    const current = out[name];
    if (current === undefined) out[name] = value;
    else if (Array.isArray(current)) current.push(value);
    else out[name] = [current, value];
  }
  return out;
}

export function userPropertiesFromMqtt(props: MqttUserProperties): UserProperties {
  const pairs: UserProperties = [];
  for (const name of Object.getOwnPropertyNames(props)) {
    const value = props[name]!;
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([name, v]);
  }
  return pairs;
}

/** Our packet as it can survive mqtt-packet: user properties regrouped as its object does. */
export function seenThroughMqttPacket(packet: Packet): Packet {
  const regroup = <T extends { userProperties?: UserProperties }>(p: T): T =>
    p.userProperties === undefined
      ? p
      : { ...p, userProperties: userPropertiesFromMqtt(userPropertiesToMqtt(p.userProperties)) };
  let out = packet;
  if ("properties" in out && out.properties !== undefined) {
    out = { ...out, properties: regroup(out.properties) } as Packet;
  }
  if (out.type === PacketType.CONNECT && out.will?.properties !== undefined) {
    out = { ...out, will: { ...out.will, properties: regroup(out.will.properties) } };
  }
  return out;
}

// ---- properties -------------------------------------------------------------------------------

type Dict = Record<string, unknown>;

function propertiesToMqtt(props: object | undefined): Dict | undefined {
  if (props === undefined) return undefined;
  const out: Dict = {};
  for (const [name, value] of Object.entries(props) as [string, unknown][]) {
    switch (name) {
      case "userProperties":
        out[name] = userPropertiesToMqtt(value as UserProperties);
        break;
      case "payloadFormatIndicator":
        // mqtt-packet types it as a boolean (its 'byte' kind); ours is the byte, 0 or 1.
        out[name] = value === 1;
        break;
      case "subscriptionIdentifierAvailable":
        // mqtt-packet spells property 0x29 in the plural.
        out.subscriptionIdentifiersAvailable = value;
        break;
      case "subscriptionIdentifiers":
        // PUBLISH: mqtt-packet keeps the singular name and writes an array as repeated 0x0B.
        out.subscriptionIdentifier = value;
        break;
      default:
        out[name] = value instanceof Uint8Array ? toBuffer(value) : value;
    }
  }
  return out;
}

function propertiesFromMqtt(props: object | undefined, context: number): Dict | undefined {
  if (props === undefined) return undefined;
  const out: Dict = {};
  for (const [name, value] of Object.entries(props) as [string, unknown][]) {
    switch (name) {
      case "userProperties":
        out[name] = userPropertiesFromMqtt(value as MqttUserProperties);
        break;
      case "payloadFormatIndicator":
        out[name] = value === true ? 1 : 0;
        break;
      case "subscriptionIdentifiersAvailable":
        out.subscriptionIdentifierAvailable = value;
        break;
      case "subscriptionIdentifier":
        // mqtt-packet gives a number for one 0x0B and an array for several; PUBLISH holds a list.
        if (context === PacketType.PUBLISH) {
          out.subscriptionIdentifiers = Array.isArray(value) ? value : [value];
        } else {
          out[name] = value;
        }
        break;
      default:
        out[name] = value instanceof Uint8Array ? new Uint8Array(value) : value;
    }
  }
  return out;
}

/** `{ properties }` when there is a block, else nothing (exactOptionalPropertyTypes). */
function withProps<T>(props: Dict | undefined): { properties?: NonNullable<T> } {
  return props === undefined ? {} : { properties: props as NonNullable<T> };
}

// ---- packets ----------------------------------------------------------------------------------

const ACK_CMDS = {
  [PacketType.PUBACK]: "puback",
  [PacketType.PUBREC]: "pubrec",
  [PacketType.PUBREL]: "pubrel",
  [PacketType.PUBCOMP]: "pubcomp",
} as const;
const ACK_TYPES = { puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7 } as const;

function connectToMqtt(p: ConnectPacket): IConnectPacket {
  const out: IConnectPacket = {
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: p.protocolVersion,
    clean: p.clean,
    keepalive: p.keepAlive,
    clientId: p.clientId,
    ...withProps<IConnectPacket["properties"]>(propertiesToMqtt(p.properties)),
  };
  if (p.will !== undefined) {
    out.will = {
      topic: p.will.topic,
      payload: toBuffer(p.will.payload),
      qos: p.will.qos,
      retain: p.will.retain,
      ...withProps<NonNullable<IConnectPacket["will"]>["properties"]>(
        propertiesToMqtt(p.will.properties),
      ),
    };
  }
  if (p.username !== undefined) out.username = p.username;
  if (p.password !== undefined) out.password = toBuffer(p.password);
  // Not in mqtt-packet's types, but read by generate and set by the parser.
  if (p.bridge === true) Object.assign(out, { bridgeMode: true });
  return out;
}

/** Our packet in mqtt-packet's shape, for mqtt.generate at level `v`. */
export function toMqtt(packet: Packet, v: Version): MqttPacket {
  switch (packet.type) {
    case PacketType.CONNECT:
      return connectToMqtt(packet);
    case PacketType.CONNACK: {
      const out: IConnackPacket = {
        cmd: "connack",
        sessionPresent: packet.sessionPresent,
        ...withProps<IConnackPacket["properties"]>(propertiesToMqtt(packet.properties)),
      };
      // mqtt-packet names the byte returnCode before 5.0 and reasonCode in 5.0.
      if (v === 5) out.reasonCode = packet.reasonCode;
      else out.returnCode = packet.reasonCode;
      return out;
    }
    case PacketType.PUBLISH: {
      const out: IPublishPacket = {
        cmd: "publish",
        topic: packet.topic,
        payload: toBuffer(packet.payload),
        qos: packet.qos,
        dup: packet.dup,
        retain: packet.retain,
        ...withProps<IPublishPacket["properties"]>(propertiesToMqtt(packet.properties)),
      };
      if (packet.packetId !== undefined) out.messageId = packet.packetId;
      return out;
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP: {
      const out = {
        cmd: ACK_CMDS[packet.type],
        messageId: packet.packetId,
        ...withProps<IPubackPacket["properties"]>(propertiesToMqtt(packet.properties)),
      } as IPubackPacket;
      if (packet.reasonCode !== undefined) out.reasonCode = packet.reasonCode;
      return out;
    }
    case PacketType.SUBSCRIBE: {
      const out: ISubscribePacket = {
        cmd: "subscribe",
        messageId: packet.packetId,
        subscriptions: packet.subscriptions.map((s) => {
          const sub: ISubscribePacket["subscriptions"][number] = {
            topic: s.topicFilter,
            qos: s.qos,
          };
          if (s.noLocal !== undefined) sub.nl = s.noLocal;
          if (s.retainAsPublished !== undefined) sub.rap = s.retainAsPublished;
          if (s.retainHandling !== undefined) sub.rh = s.retainHandling;
          return sub;
        }),
        ...withProps<ISubscribePacket["properties"]>(propertiesToMqtt(packet.properties)),
      };
      return out;
    }
    case PacketType.SUBACK:
      return {
        cmd: "suback",
        messageId: packet.packetId,
        granted: packet.reasonCodes,
        ...withProps<ISubackPacket["properties"]>(propertiesToMqtt(packet.properties)),
      };
    case PacketType.UNSUBSCRIBE:
      return {
        cmd: "unsubscribe",
        messageId: packet.packetId,
        unsubscriptions: packet.topicFilters,
        ...withProps<IUnsubscribePacket["properties"]>(propertiesToMqtt(packet.properties)),
      };
    case PacketType.UNSUBACK:
      return {
        cmd: "unsuback",
        messageId: packet.packetId,
        // Required by the type; generate writes it in 5.0 only.
        granted: packet.reasonCodes ?? [],
        ...withProps<IUnsubackPacket["properties"]>(propertiesToMqtt(packet.properties)),
      };
    case PacketType.PINGREQ:
      return { cmd: "pingreq" };
    case PacketType.PINGRESP:
      return { cmd: "pingresp" };
    case PacketType.DISCONNECT: {
      const out: IDisconnectPacket = {
        cmd: "disconnect",
        ...withProps<IDisconnectPacket["properties"]>(propertiesToMqtt(packet.properties)),
      };
      if (packet.reasonCode !== undefined) out.reasonCode = packet.reasonCode;
      return out;
    }
    case PacketType.AUTH:
      return {
        cmd: "auth",
        reasonCode: packet.reasonCode,
        ...withProps<IAuthPacket["properties"]>(propertiesToMqtt(packet.properties)),
      };
  }
}

function bytesFrom(b: Buffer | string): Uint8Array {
  return typeof b === "string" ? new TextEncoder().encode(b) : new Uint8Array(b);
}

/** `{ properties }` from a parsed mqtt-packet block, in our shape. */
function propsFrom(props: object | undefined, context: number): { properties?: never } {
  const out = propertiesFromMqtt(props, context);
  return out === undefined ? {} : { properties: out as never };
}

function connectFromMqtt(p: IConnectPacket): ConnectPacket {
  if (p.protocolVersion === undefined) throw new Error("mqtt-packet gave no protocolVersion");
  const out: ConnectPacket = {
    type: PacketType.CONNECT,
    protocolVersion: p.protocolVersion as ProtocolVersion,
    clean: p.clean === true,
    keepAlive: p.keepalive ?? -1,
    clientId: p.clientId,
    ...propsFrom(p.properties, PacketType.CONNECT),
  };
  if (p.protocolId !== undefined) out.protocolName = p.protocolId;
  if ((p as { bridgeMode?: boolean }).bridgeMode === true) out.bridge = true;
  if (p.will !== undefined) {
    const will: Will = {
      topic: p.will.topic,
      payload: bytesFrom(p.will.payload),
      qos: p.will.qos ?? 0,
      retain: p.will.retain === true,
      ...propsFrom(p.will.properties, 16),
    };
    out.will = will;
  }
  if (p.username !== undefined) out.username = p.username;
  if (p.password !== undefined) out.password = bytesFrom(p.password);
  return out;
}

/** A packet parsed by mqtt-packet at level `v`, in our shape; its extra fields are dropped. */
export function fromMqtt(p: MqttPacket, v: Version): Packet {
  switch (p.cmd) {
    case "connect":
      return connectFromMqtt(p);
    case "connack":
      return {
        type: PacketType.CONNACK,
        sessionPresent: p.sessionPresent,
        reasonCode: (v === 5 ? p.reasonCode : p.returnCode) ?? -1,
        ...propsFrom(p.properties, PacketType.CONNACK),
      };
    case "publish": {
      const out: Packet = {
        type: PacketType.PUBLISH,
        topic: p.topic,
        payload: bytesFrom(p.payload),
        qos: p.qos,
        retain: p.retain,
        dup: p.dup,
        ...propsFrom(p.properties, PacketType.PUBLISH),
      };
      if (p.messageId !== undefined) out.packetId = p.messageId;
      return out;
    }
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp": {
      const type = ACK_TYPES[p.cmd];
      const out = {
        type,
        packetId: p.messageId ?? -1,
        ...propsFrom(p.properties, type),
      } as AckPacket;
      // The 5.0 parser reports 0 for a reason code left out; the 3.1.1 one reports none.
      if (p.reasonCode !== undefined) out.reasonCode = p.reasonCode;
      return out;
    }
    case "subscribe":
      return {
        type: PacketType.SUBSCRIBE,
        packetId: p.messageId ?? -1,
        subscriptions: p.subscriptions.map((s) => {
          const sub: Subscription = { topicFilter: s.topic, qos: s.qos };
          if (s.nl !== undefined) sub.noLocal = s.nl;
          if (s.rap !== undefined) sub.retainAsPublished = s.rap;
          if (s.rh !== undefined) sub.retainHandling = s.rh as 0 | 1 | 2;
          return sub;
        }),
        ...propsFrom(p.properties, PacketType.SUBSCRIBE),
      };
    case "suback":
      return {
        type: PacketType.SUBACK,
        packetId: p.messageId ?? -1,
        reasonCodes: p.granted as number[],
        ...propsFrom(p.properties, PacketType.SUBACK),
      };
    case "unsubscribe":
      return {
        type: PacketType.UNSUBSCRIBE,
        packetId: p.messageId ?? -1,
        topicFilters: p.unsubscriptions,
        ...propsFrom(p.properties, PacketType.UNSUBSCRIBE),
      };
    case "unsuback": {
      const out: Packet = {
        type: PacketType.UNSUBACK,
        packetId: p.messageId ?? -1,
        ...propsFrom(p.properties, PacketType.UNSUBACK),
      };
      // The 3.1.1 parser sets no `granted`: that UNSUBACK has no reason codes.
      if (p.granted !== undefined) out.reasonCodes = p.granted;
      return out;
    }
    case "pingreq":
      return { type: PacketType.PINGREQ };
    case "pingresp":
      return { type: PacketType.PINGRESP };
    case "disconnect": {
      const out: Packet = {
        type: PacketType.DISCONNECT,
        ...propsFrom(p.properties, PacketType.DISCONNECT),
      };
      if (p.reasonCode !== undefined) out.reasonCode = p.reasonCode;
      return out;
    }
    case "auth":
      return {
        type: PacketType.AUTH,
        reasonCode: p.reasonCode,
        ...propsFrom(p.properties, PacketType.AUTH),
      };
  }
}

/**
 * A deep copy for comparison: byte arrays (Buffers too) become `{ bytes: "<hex>" }`, which
 * compares much faster than element by element, and objects become plain objects.
 */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: toBuffer(value).toString("hex") };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out: Dict = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}
