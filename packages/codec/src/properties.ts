import { PacketType } from "./constants.js";
import { InvalidPacketError, type MqttErrorOptions } from "./errors.js";
import { binaryFieldSize, stringFieldSize, writeBinary, writeString } from "./fields.js";
import type { Reader } from "./reader.js";
import { isValidTopicName } from "./topics.js";
import { varintSize, writeVarint } from "./varint.js";

/** Where a property may appear: a packet type, or WILL for the will properties of CONNECT. */
export const WILL_PROPERTIES = 16;

// Value kinds on the wire (v5 2.2.2.2).
const BYTE = 0; // a number 0 or 1 (payloadFormatIndicator, maximumQoS)
const BOOL = 1; // a byte 0 or 1 exposed as a boolean
const U16 = 2;
const U32 = 3;
const VARINT = 4;
const STRING = 5;
const BINARY = 6;
const PAIR = 7;

interface PropertyDef {
  readonly id: number;
  readonly name: string;
  readonly kind: number;
  /** Bit (1 << context) set for each packet type (or WILL_PROPERTIES) that allows it. */
  readonly allowed: number;
  /** A value of 0 is a Protocol Error. */
  readonly nonZero?: boolean;
}

const P = PacketType;
const at = (...contexts: number[]): number => contexts.reduce((m, c) => m | (1 << c), 0);
const ACKS = at(P.PUBACK, P.PUBREC, P.PUBREL, P.PUBCOMP, P.SUBACK, P.UNSUBACK);

/** The property table of MQTT 5.0 (v5 2.2.2.2, table 2-4). */
const DEFS: readonly PropertyDef[] = [
  { id: 0x01, name: "payloadFormatIndicator", kind: BYTE, allowed: at(P.PUBLISH, WILL_PROPERTIES) },
  { id: 0x02, name: "messageExpiryInterval", kind: U32, allowed: at(P.PUBLISH, WILL_PROPERTIES) },
  { id: 0x03, name: "contentType", kind: STRING, allowed: at(P.PUBLISH, WILL_PROPERTIES) },
  { id: 0x08, name: "responseTopic", kind: STRING, allowed: at(P.PUBLISH, WILL_PROPERTIES) },
  { id: 0x09, name: "correlationData", kind: BINARY, allowed: at(P.PUBLISH, WILL_PROPERTIES) },
  {
    id: 0x0b,
    name: "subscriptionIdentifier",
    kind: VARINT,
    allowed: at(P.PUBLISH, P.SUBSCRIBE),
    nonZero: true,
  },
  {
    id: 0x11,
    name: "sessionExpiryInterval",
    kind: U32,
    allowed: at(P.CONNECT, P.CONNACK, P.DISCONNECT),
  },
  { id: 0x12, name: "assignedClientIdentifier", kind: STRING, allowed: at(P.CONNACK) },
  { id: 0x13, name: "serverKeepAlive", kind: U16, allowed: at(P.CONNACK) },
  {
    id: 0x15,
    name: "authenticationMethod",
    kind: STRING,
    allowed: at(P.CONNECT, P.CONNACK, P.AUTH),
  },
  {
    id: 0x16,
    name: "authenticationData",
    kind: BINARY,
    allowed: at(P.CONNECT, P.CONNACK, P.AUTH),
  },
  { id: 0x17, name: "requestProblemInformation", kind: BOOL, allowed: at(P.CONNECT) },
  { id: 0x18, name: "willDelayInterval", kind: U32, allowed: at(WILL_PROPERTIES) },
  { id: 0x19, name: "requestResponseInformation", kind: BOOL, allowed: at(P.CONNECT) },
  { id: 0x1a, name: "responseInformation", kind: STRING, allowed: at(P.CONNACK) },
  { id: 0x1c, name: "serverReference", kind: STRING, allowed: at(P.CONNACK, P.DISCONNECT) },
  {
    id: 0x1f,
    name: "reasonString",
    kind: STRING,
    allowed: ACKS | at(P.CONNACK, P.DISCONNECT, P.AUTH),
  },
  {
    id: 0x21,
    name: "receiveMaximum",
    kind: U16,
    allowed: at(P.CONNECT, P.CONNACK),
    nonZero: true,
  },
  { id: 0x22, name: "topicAliasMaximum", kind: U16, allowed: at(P.CONNECT, P.CONNACK) },
  { id: 0x23, name: "topicAlias", kind: U16, allowed: at(P.PUBLISH), nonZero: true },
  { id: 0x24, name: "maximumQoS", kind: BYTE, allowed: at(P.CONNACK) },
  { id: 0x25, name: "retainAvailable", kind: BOOL, allowed: at(P.CONNACK) },
  {
    id: 0x26,
    name: "userProperties",
    kind: PAIR,
    allowed:
      ACKS |
      at(
        P.CONNECT,
        P.CONNACK,
        P.PUBLISH,
        P.SUBSCRIBE,
        P.UNSUBSCRIBE,
        P.DISCONNECT,
        P.AUTH,
        WILL_PROPERTIES,
      ),
  },
  {
    id: 0x27,
    name: "maximumPacketSize",
    kind: U32,
    allowed: at(P.CONNECT, P.CONNACK),
    nonZero: true,
  },
  { id: 0x28, name: "wildcardSubscriptionAvailable", kind: BOOL, allowed: at(P.CONNACK) },
  { id: 0x29, name: "subscriptionIdentifierAvailable", kind: BOOL, allowed: at(P.CONNACK) },
  { id: 0x2a, name: "sharedSubscriptionAvailable", kind: BOOL, allowed: at(P.CONNACK) },
];

const BY_ID: readonly (PropertyDef | undefined)[] = (() => {
  const table: (PropertyDef | undefined)[] = new Array(64).fill(undefined);
  for (const def of DEFS) table[def.id] = def;
  return table;
})();

const SUBSCRIPTION_IDS = "subscriptionIdentifiers";
const BY_NAME: Readonly<Record<string, PropertyDef>> = (() => {
  const table: Record<string, PropertyDef> = Object.create(null);
  for (const def of DEFS) table[def.name] = def;
  // PUBLISH may carry several subscription identifiers, so it names them in the plural.
  table[SUBSCRIPTION_IDS] = BY_ID[0x0b]!;
  return table;
})();

/** The numeric identifier of a property name (`userProperties` is 0x26), or undefined. */
export function propertyId(name: string): number | undefined {
  return BY_NAME[name]?.id;
}

type AnyProperties = Record<string, unknown>;

/**
 * Reads a property block for `context` (a packet type or WILL_PROPERTIES). Returns undefined
 * for an empty block.
 */
export function readProperties(r: Reader, context: number): AnyProperties | undefined {
  const length = r.varint();
  if (length === 0) return undefined;
  const end = r.pos + length;
  if (end > r.end) r.malformed("TRUNCATED_PACKET", "property length exceeds the packet");
  const outerEnd = r.end;
  r.end = end;
  const props: AnyProperties = {};
  while (r.pos < end) {
    const id = r.varint();
    const def = id < BY_ID.length ? BY_ID[id] : undefined;
    if (def === undefined) {
      r.malformed(
        "UNKNOWN_PROPERTY",
        `unknown property identifier 0x${id.toString(16)} (v5 2.2.2.2)`,
      );
    }
    if ((def.allowed & (1 << context)) === 0) {
      // v5 2.2.2.2: an identifier not valid for the packet type makes it a Malformed Packet.
      r.malformed("PROPERTY_NOT_ALLOWED", `property ${def.name} is not allowed here`);
    }
    let name = def.name;
    let value: unknown;
    switch (def.kind) {
      case BYTE:
      case BOOL: {
        const b = r.u8();
        if (b > 1)
          r.protocolError("INVALID_PROPERTY_VALUE", `property ${name} must be 0 or 1, got ${b}`);
        value = def.kind === BOOL ? b === 1 : b;
        break;
      }
      case U16:
        value = r.u16();
        break;
      case U32:
        value = r.u32();
        break;
      case VARINT:
        value = r.varint();
        break;
      case STRING:
        value = r.utf8();
        if (id === 0x08 && !isValidTopicName(value as string)) {
          r.protocolError(
            "INVALID_PROPERTY_VALUE",
            "response topic must be a topic name without wildcards [MQTT-3.3.2-14]",
          );
        }
        break;
      case BINARY:
        value = r.binary();
        break;
      default: {
        const list = props[name] as [string, string][] | undefined;
        r.checkUserPropertyCount(list === undefined ? 0 : list.length);
        const pair: [string, string] = [r.utf8(), r.utf8()];
        if (list) list.push(pair);
        else props[name] = [pair];
        continue;
      }
    }
    if (def.nonZero === true && value === 0) {
      // v5 3.3.2.3.4: a Topic Alias of 0 is answered with 0x94 (Topic Alias invalid).
      r.protocolError(
        "INVALID_PROPERTY_VALUE",
        `property ${name} must not be 0`,
        id === 0x23 ? 0x94 : undefined,
      );
    }
    if (id === 0x0b && context === P.PUBLISH) {
      name = SUBSCRIPTION_IDS;
      const list = props[name] as number[] | undefined;
      if (list) list.push(value as number);
      else props[name] = [value as number];
      continue;
    }
    if (props[name] !== undefined) {
      r.protocolError("DUPLICATE_PROPERTY", `property ${name} appears more than once (v5 2.2.2.2)`);
    }
    props[name] = value;
  }
  r.end = outerEnd;
  return props;
}

function badProperty(name: string, why: string, options: MqttErrorOptions): never {
  throw new InvalidPacketError(`property ${name}: ${why}`, options);
}

function checkInteger(
  name: string,
  value: unknown,
  max: number,
  options: MqttErrorOptions,
): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    badProperty(name, `expected an integer in 0..${max}, got ${String(value)}`, options);
  }
  return value;
}

function valueSize(
  def: PropertyDef,
  name: string,
  value: unknown,
  options: MqttErrorOptions,
): number {
  switch (def.kind) {
    case BYTE:
      if (value !== 0 && value !== 1) badProperty(name, "must be 0 or 1", options);
      return 2;
    case BOOL:
      if (typeof value !== "boolean") badProperty(name, "must be a boolean", options);
      return 2;
    case U16:
      if (checkInteger(name, value, 0xffff, options) === 0 && def.nonZero) {
        badProperty(name, "must not be 0", options);
      }
      return 3;
    case U32:
      if (checkInteger(name, value, 0xffffffff, options) === 0 && def.nonZero) {
        badProperty(name, "must not be 0", options);
      }
      return 5;
    case VARINT: {
      const v = checkInteger(name, value, 268_435_455, options);
      if (v === 0) badProperty(name, "must not be 0", options);
      return 1 + varintSize(v);
    }
    case STRING:
      if (def.id === 0x08 && !isValidTopicName(value as string)) {
        badProperty(name, "must be a topic name without wildcards [MQTT-3.3.2-14]", options);
      }
      return 1 + stringFieldSize(name, value, options);
    case BINARY:
      return 1 + binaryFieldSize(name, value, options);
    default:
      badProperty(name, "unsupported kind", options);
  }
}

/**
 * The encoded size of a property block's content (without its length prefix). Throws
 * InvalidPacketError for a property that `context` does not allow or a value out of range.
 */
export function propertiesSize(props: object | undefined, context: number): number {
  if (props === undefined) return 0;
  const options: MqttErrorOptions = {
    packetType: context === WILL_PROPERTIES ? P.CONNECT : context,
  };
  let size = 0;
  for (const name in props) {
    const value = (props as AnyProperties)[name];
    if (value === undefined) continue;
    const def = BY_NAME[name];
    if (def === undefined) badProperty(name, "unknown property", options);
    if ((def.allowed & (1 << context)) === 0)
      badProperty(name, "not allowed in this packet", options);
    if (def.kind === PAIR) {
      if (!Array.isArray(value))
        badProperty(name, "expected an array of [name, value] pairs", options);
      for (const pair of value as unknown[]) {
        if (!Array.isArray(pair) || pair.length !== 2) {
          badProperty(name, "expected [name, value] pairs", options);
        }
        size +=
          1 + stringFieldSize(name, pair[0], options) + stringFieldSize(name, pair[1], options);
      }
    } else if (def.id === 0x0b && name === SUBSCRIPTION_IDS) {
      if (context !== P.PUBLISH) badProperty(name, "only PUBLISH carries several", options);
      if (!Array.isArray(value)) badProperty(name, "expected an array of numbers", options);
      for (const id of value as unknown[]) size += valueSize(def, name, id, options);
    } else {
      if (def.id === 0x0b && context === P.PUBLISH) {
        badProperty(name, "PUBLISH names them subscriptionIdentifiers (an array)", options);
      }
      size += valueSize(def, name, value, options);
    }
  }
  return size;
}

function writeValue(buf: Uint8Array, pos: number, def: PropertyDef, value: unknown): number {
  buf[pos++] = def.id;
  switch (def.kind) {
    case BYTE:
      buf[pos++] = value as number;
      return pos;
    case BOOL:
      buf[pos++] = value ? 1 : 0;
      return pos;
    case U16: {
      const v = value as number;
      buf[pos++] = v >> 8;
      buf[pos++] = v & 0xff;
      return pos;
    }
    case U32: {
      const v = value as number;
      buf[pos++] = v >>> 24;
      buf[pos++] = (v >>> 16) & 0xff;
      buf[pos++] = (v >>> 8) & 0xff;
      buf[pos++] = v & 0xff;
      return pos;
    }
    case VARINT:
      return writeVarint(buf, pos, value as number);
    case STRING:
      return writeString(buf, pos, value as string);
    default:
      return writeBinary(buf, pos, value as Uint8Array);
  }
}

/** Writes a property block (length prefix and content, `size` from propertiesSize). */
export function writeProperties(
  buf: Uint8Array,
  pos: number,
  props: object | undefined,
  size: number,
): number {
  pos = writeVarint(buf, pos, size);
  if (props === undefined || size === 0) return pos;
  for (const name in props) {
    const value = (props as AnyProperties)[name];
    if (value === undefined) continue;
    const def = BY_NAME[name]!;
    if (def.kind === PAIR) {
      for (const [k, v] of value as [string, string][]) {
        buf[pos++] = def.id;
        pos = writeString(buf, pos, k);
        pos = writeString(buf, pos, v);
      }
    } else if (name === SUBSCRIPTION_IDS) {
      for (const id of value as number[]) pos = writeValue(buf, pos, def, id);
    } else {
      pos = writeValue(buf, pos, def, value);
    }
  }
  return pos;
}
