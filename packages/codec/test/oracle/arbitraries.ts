// fast-check arbitraries of valid MQTT 3.1.1 (level 4) and 5.0 (level 5) packets, in our shapes.
// The rules come from the specifications, not from the codec, so the codec's own tables are
// checked too. `Constraints` narrows them further where an oracle cannot express a valid packet.

import fc from "fast-check";
import {
  type AckPacket,
  type AckProperties,
  type AuthProperties,
  type ConnackProperties,
  type ConnectPacket,
  type ConnectProperties,
  type DisconnectProperties,
  type Packet,
  PacketType,
  type PublishPacket,
  type PublishProperties,
  type SubscribeProperties,
  type Subscription,
  type UnsubscribeProperties,
  type UserProperties,
  type Will,
  type WillProperties,
} from "../../src/index.js";

export type Version = 4 | 5;

/** Extra limits on otherwise valid packets, for an oracle that cannot handle them. */
export interface Constraints {
  /** No repeated user property name whose first value is "". */
  noEmptyFirstValueOfRepeatedName: boolean;
  /** In 5.0 too, a password only with a username. */
  passwordNeedsUsername: boolean;
  /** In 5.0 too, an empty client id only with clean start. */
  emptyClientIdNeedsClean: boolean;
  /** No bridge bit on a 5.0 CONNECT. */
  noBridgeInV5: boolean;
}

/** Only what the specifications require. */
export const SPEC_ONLY: Constraints = {
  noEmptyFirstValueOfRepeatedName: false,
  passwordNeedsUsername: false,
  emptyClientIdNeedsClean: false,
  noBridgeInV5: false,
};

// Reason codes each packet may carry (v5 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3,
// 3.11.3, 3.14.2.1, 3.15.2.1) and the 3.1.1 return codes (3.1.1 3.2.2.3, 3.9.3).
const V5_CODES = {
  connack: [
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97,
    0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f,
  ],
  puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrel: [0x00, 0x92],
  pubcomp: [0x00, 0x92],
  suback: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  unsuback: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  disconnect: [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
  ],
  auth: [0x00, 0x18, 0x19],
} as const;
const V4_CONNACK_CODES = [0, 1, 2, 3, 4, 5] as const;
const V4_SUBACK_CODES = [0x00, 0x01, 0x02, 0x80] as const;

/** A code from `codes`, 0 (the short forms) more often. */
function code(codes: readonly number[]): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(codes[0]!) },
    { weight: 2, arbitrary: fc.constantFrom(...codes) },
  );
}

// ---- strings ----------------------------------------------------------------------------------

const notNul = (c: string): boolean => c !== "\u0000";
const asciiChar = fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 1 }).filter(notNul);
/** Any code point but U+0000, astral ones as surrogate pairs (never a lone surrogate). */
const anyChar = fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter(notNul);
/** Boundaries of the UTF-8 lengths, noncharacters, a BOM, controls ("SHOULD NOT", still valid). */
const edgeChar = fc.constantFrom(
  "/",
  "\u007f",
  "\u0080",
  "\u07ff",
  "\u0800",
  "\ufeff",
  "\uffff",
  "\u{10000}",
  "\u{10ffff}",
  "é",
  "€",
  "😀",
);
const char = fc.oneof(
  { weight: 4, arbitrary: asciiChar },
  { weight: 2, arbitrary: anyChar },
  { weight: 1, arbitrary: edgeChar },
);

/** A UTF-8 string field: no U+0000 and no lone surrogate [MQTT-1.5.4-1] [MQTT-1.5.4-2]. */
export function mqttString(maxLength = 12, unit = char): fc.Arbitrary<string> {
  const s = fc.string({ unit, maxLength });
  // A leading U+FEFF must reach the application unchanged [MQTT-1.5.4-3].
  return fc.oneof(
    { weight: 8, arbitrary: s },
    { weight: 1, arbitrary: s.map((x) => `\ufeff${x}`) },
  );
}

const noWildcard = (c: string): boolean => c !== "+" && c !== "#";
const topicChar = fc.oneof(char, fc.constant("/")).filter(noWildcard);
const levelChar = char.filter((c) => noWildcard(c) && c !== "/");

/** A topic name: at least one character, no wildcards [MQTT-4.7.3-1] [MQTT-3.3.2-2]. */
export const topicName: fc.Arbitrary<string> = fc
  .tuple(mqttString(20, topicChar), topicChar)
  .map(([s, c]) => (s.length > 0 ? s : c));

const level = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: levelChar, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constant("+") },
);
const plainFilter = fc
  .tuple(fc.array(level, { maxLength: 4 }), fc.boolean())
  .map(([levels, multi]) => (multi ? [...levels, "#"] : levels).join("/"))
  .filter((f) => f.length > 0);
const sharedFilter = fc
  .tuple(fc.string({ unit: levelChar, minLength: 1, maxLength: 6 }), plainFilter)
  .map(([group, filter]) => `$share/${group}/${filter}`);

/** A topic filter: '+' and '#' on whole levels, '#' last, or `$share/<group>/<filter>` (4.7, 4.8.2). */
export const topicFilter: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: plainFilter },
  { weight: 1, arbitrary: sharedFilter },
);

// ---- numbers and bytes ------------------------------------------------------------------------

const qos = fc.constantFrom(0 as const, 1 as const, 2 as const);
const packetId = fc.integer({ min: 1, max: 0xffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u16NonZero = fc.integer({ min: 1, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u32NonZero = fc.integer({ min: 1, max: 0xffffffff });
/** A subscription identifier: a variable byte integer 1..268,435,455 (v5 3.3.2.3.8). */
const subscriptionId = fc.integer({ min: 1, max: 268_435_455 });
const bytes = (maxLength = 16): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });

/** Payloads: mostly small, some past the 1- and 2-byte remaining length limits (127, 16,383). */
const binaryPayload: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 12, arbitrary: bytes(64) },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 100, maxLength: 400 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 16_300, max: 20_000 }), fc.integer({ min: 0, max: 255 }))
      .map(([n, s]) => Uint8Array.from({ length: n }, (_, i) => (s + i * 31) & 0xff)),
  },
);
const utf8Payload = mqttString(40).map((s) => new TextEncoder().encode(s));

/** A payload that is UTF-8 when the Payload Format Indicator says so (v5 3.3.2.3.2). */
function payloadFor(formatIndicator: 0 | 1 | undefined): fc.Arbitrary<Uint8Array> {
  return formatIndicator === 1 ? utf8Payload : binaryPayload;
}

// ---- properties -------------------------------------------------------------------------------

/** Repeated names first value "" would be lost by an object-based oracle. */
function firstValueOfRepeatedNameIsEmpty(pairs: UserProperties): boolean {
  const seen = new Map<string, string>();
  for (const [name, value] of pairs) {
    if (seen.get(name) === "") return true;
    if (!seen.has(name)) seen.set(name, value);
  }
  return false;
}

/** User properties in wire order; names repeat often (v5 3.1.2.11.8). */
function userProperties(c: Constraints): fc.Arbitrary<UserProperties> {
  const name = fc.oneof(
    fc.constantFrom("a", "b", "1", "__proto__", "content-type", ""),
    mqttString(8),
  );
  const pairs = fc.array(fc.tuple(name, mqttString(12)), { minLength: 1, maxLength: 6 });
  return c.noEmptyFirstValueOfRepeatedName
    ? pairs.filter((p) => !firstValueOfRepeatedNameIsEmpty(p))
    : pairs;
}

/** An optional property block: absent or with at least one property, as a decoder yields it. */
function block<T extends object>(props: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(
    props.filter((p) => Object.keys(p).length > 0),
    { nil: undefined, freq: 3 },
  );
}

/** Authentication Data without an Authentication Method is a Protocol Error (v5 3.1.2.11.10). */
function dataNeedsMethod<
  T extends { authenticationMethod?: string; authenticationData?: Uint8Array },
>(p: T): T {
  if (p.authenticationMethod !== undefined || p.authenticationData === undefined) return p;
  const { authenticationData: _, ...rest } = p;
  return rest as T;
}

const formatIndicator = fc.constantFrom(0 as const, 1 as const);

function connectProperties(c: Constraints): fc.Arbitrary<ConnectProperties> {
  return fc
    .record(
      {
        sessionExpiryInterval: u32,
        receiveMaximum: u16NonZero,
        maximumPacketSize: u32NonZero,
        topicAliasMaximum: u16,
        requestResponseInformation: fc.boolean(),
        requestProblemInformation: fc.boolean(),
        userProperties: userProperties(c),
        authenticationMethod: mqttString(),
        authenticationData: bytes(),
      },
      { requiredKeys: [] },
    )
    .map(dataNeedsMethod);
}

function willProperties(c: Constraints): fc.Arbitrary<WillProperties> {
  return fc.record(
    {
      willDelayInterval: u32,
      payloadFormatIndicator: formatIndicator,
      messageExpiryInterval: u32,
      contentType: mqttString(),
      responseTopic: topicName,
      correlationData: bytes(),
      userProperties: userProperties(c),
    },
    { requiredKeys: [] },
  );
}

function connackProperties(c: Constraints): fc.Arbitrary<ConnackProperties> {
  return fc
    .record(
      {
        sessionExpiryInterval: u32,
        receiveMaximum: u16NonZero,
        maximumQoS: fc.constantFrom(0 as const, 1 as const),
        retainAvailable: fc.boolean(),
        maximumPacketSize: u32NonZero,
        assignedClientIdentifier: mqttString(),
        topicAliasMaximum: u16,
        reasonString: mqttString(),
        userProperties: userProperties(c),
        wildcardSubscriptionAvailable: fc.boolean(),
        subscriptionIdentifierAvailable: fc.boolean(),
        sharedSubscriptionAvailable: fc.boolean(),
        serverKeepAlive: u16,
        responseInformation: mqttString(),
        serverReference: mqttString(),
        authenticationMethod: mqttString(),
        authenticationData: bytes(),
      },
      { requiredKeys: [] },
    )
    .map(dataNeedsMethod);
}

function publishProperties(c: Constraints): fc.Arbitrary<PublishProperties> {
  return fc.record(
    {
      payloadFormatIndicator: formatIndicator,
      messageExpiryInterval: u32,
      topicAlias: u16NonZero,
      responseTopic: topicName,
      correlationData: bytes(),
      userProperties: userProperties(c),
      // Several when a server delivers a message matched by several subscriptions (3.3.4).
      subscriptionIdentifiers: fc.array(subscriptionId, { minLength: 1, maxLength: 3 }),
      contentType: mqttString(),
    },
    { requiredKeys: [] },
  );
}

function ackProperties(c: Constraints): fc.Arbitrary<AckProperties> {
  return fc.record(
    { reasonString: mqttString(), userProperties: userProperties(c) },
    { requiredKeys: [] },
  );
}

function subscribeProperties(c: Constraints): fc.Arbitrary<SubscribeProperties> {
  return fc.record(
    { subscriptionIdentifier: subscriptionId, userProperties: userProperties(c) },
    { requiredKeys: [] },
  );
}

function unsubscribeProperties(c: Constraints): fc.Arbitrary<UnsubscribeProperties> {
  return fc.record({ userProperties: userProperties(c) }, { requiredKeys: [] });
}

function disconnectProperties(c: Constraints): fc.Arbitrary<DisconnectProperties> {
  return fc.record(
    {
      sessionExpiryInterval: u32,
      reasonString: mqttString(),
      userProperties: userProperties(c),
      serverReference: mqttString(),
    },
    { requiredKeys: [] },
  );
}

/** AUTH always names its method: omitting it is a Protocol Error (v5 3.15.2.2.2). */
function authProperties(c: Constraints): fc.Arbitrary<AuthProperties> {
  return fc.record(
    {
      authenticationMethod: mqttString(),
      authenticationData: bytes(),
      reasonString: mqttString(),
      userProperties: userProperties(c),
    },
    { requiredKeys: ["authenticationMethod"] },
  );
}

/** `{ properties }` in 5.0 when the block is not empty, else nothing. */
function propsField<T extends object>(
  v: Version,
  props: fc.Arbitrary<T>,
): fc.Arbitrary<{ properties?: T }> {
  if (v < 5) return fc.constant({});
  return block(props).map((p) => (p === undefined ? {} : { properties: p }));
}

// ---- packets ----------------------------------------------------------------------------------

function will(v: Version, c: Constraints): fc.Arbitrary<Will> {
  return fc
    .record({
      topic: topicName,
      qos,
      retain: fc.boolean(),
      props: propsField(v, willProperties(c)),
    })
    .chain(({ props, ...w }) =>
      payloadFor(props.properties?.payloadFormatIndicator).map(
        (payload): Will => ({ ...w, payload, ...props }),
      ),
    );
}

function connect(v: Version, c: Constraints): fc.Arbitrary<ConnectPacket> {
  return fc
    .record({
      clean: fc.boolean(),
      keepAlive: u16,
      clientId: mqttString(23),
      lastWill: fc.option(will(v, c), { nil: undefined }),
      username: fc.option(mqttString(), { nil: undefined }),
      password: fc.option(bytes(20), { nil: undefined }),
      bridge: fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, fc.constant(true)),
      props: propsField(v, connectProperties(c)),
    })
    .map(({ clean, clientId, lastWill, username, password, bridge, props, keepAlive }) => {
      // 3.1.1: a zero-byte client id needs CleanSession 1 [MQTT-3.1.3-7].
      const cleanNeeded = clientId === "" && (v < 5 || c.emptyClientIdNeedsClean);
      const packet: ConnectPacket = {
        type: PacketType.CONNECT,
        protocolName: "MQTT",
        protocolVersion: v,
        clean: clean || cleanNeeded,
        keepAlive,
        clientId,
        ...props,
      };
      if (bridge && !(v === 5 && c.noBridgeInV5)) packet.bridge = true;
      if (lastWill !== undefined) packet.will = lastWill;
      if (username !== undefined) packet.username = username;
      // 3.1.1: a password needs a user name [MQTT-3.1.2-22]; 5.0 lifts that (v5 3.1.2.9).
      const passwordAllowed = username !== undefined || (v === 5 && !c.passwordNeedsUsername);
      if (password !== undefined && passwordAllowed) packet.password = password;
      return packet;
    });
}

function connack(v: Version, c: Constraints): fc.Arbitrary<Packet> {
  return fc
    .record({
      reasonCode: code(v === 5 ? V5_CODES.connack : V4_CONNACK_CODES),
      sessionPresent: fc.boolean(),
      props: propsField(v, connackProperties(c)),
    })
    .map(({ reasonCode, sessionPresent, props }) => ({
      type: PacketType.CONNACK,
      // Session Present is 0 with a refusal [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (5.0).
      sessionPresent: sessionPresent && reasonCode === 0,
      reasonCode,
      ...props,
    }));
}

function publish(v: Version, c: Constraints): fc.Arbitrary<PublishPacket> {
  const topic =
    v === 5
      ? fc.oneof({ weight: 6, arbitrary: topicName }, { weight: 1, arbitrary: fc.constant("") })
      : topicName;
  return fc
    .record({
      topic,
      qos,
      dup: fc.boolean(),
      retain: fc.boolean(),
      packetId,
      alias: u16NonZero,
      props: propsField(v, publishProperties(c)),
    })
    .chain(({ topic, qos, dup, retain, packetId, alias, props }) => {
      let properties = props.properties;
      // An empty topic name stands for a Topic Alias, which must then be present (v5 3.3.2.1).
      if (topic === "" && properties?.topicAlias === undefined) {
        properties = { ...properties, topicAlias: alias };
      }
      return payloadFor(properties?.payloadFormatIndicator).map((payload): PublishPacket => {
        const packet: PublishPacket = {
          type: PacketType.PUBLISH,
          topic,
          payload,
          qos,
          retain,
          // DUP is 0 for QoS 0 [MQTT-3.3.1-2]; a packet id exactly when QoS > 0 [MQTT-2.2.1-2].
          dup: qos > 0 && dup,
        };
        if (qos > 0) packet.packetId = packetId;
        if (properties !== undefined) packet.properties = properties;
        return packet;
      });
    });
}

const ACK_NAMES = {
  [PacketType.PUBACK]: "puback",
  [PacketType.PUBREC]: "pubrec",
  [PacketType.PUBREL]: "pubrel",
  [PacketType.PUBCOMP]: "pubcomp",
} as const;

function ack(type: AckPacket["type"], v: Version, c: Constraints): fc.Arbitrary<AckPacket> {
  if (v < 5) return packetId.map((id) => ({ type, packetId: id }) as AckPacket);
  return fc
    .record({
      id: packetId,
      reasonCode: code(V5_CODES[ACK_NAMES[type]]),
      props: propsField(v, ackProperties(c)),
    })
    .map(
      ({ id, reasonCode, props }) => ({ type, packetId: id, reasonCode, ...props }) as AckPacket,
    );
}

function subscription(v: Version): fc.Arbitrary<Subscription> {
  if (v < 5) return fc.record({ topicFilter, qos });
  return fc
    .record({
      topicFilter,
      qos,
      noLocal: fc.boolean(),
      retainAsPublished: fc.boolean(),
      retainHandling: fc.constantFrom(0 as const, 1 as const, 2 as const),
    })
    .map((s) => ({
      ...s,
      // No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4].
      noLocal: s.noLocal && !s.topicFilter.startsWith("$share/"),
    }));
}

function subscribe(v: Version, c: Constraints): fc.Arbitrary<Packet> {
  return fc
    .record({
      id: packetId,
      subscriptions: fc.array(subscription(v), { minLength: 1, maxLength: 5 }),
      props: propsField(v, subscribeProperties(c)),
    })
    .map(({ id, subscriptions, props }) => ({
      type: PacketType.SUBSCRIBE,
      packetId: id,
      subscriptions,
      ...props,
    }));
}

function suback(v: Version, c: Constraints): fc.Arbitrary<Packet> {
  const codes = v === 5 ? V5_CODES.suback : V4_SUBACK_CODES;
  return fc
    .record({
      id: packetId,
      reasonCodes: fc.array(fc.constantFrom(...codes), { minLength: 1, maxLength: 5 }),
      props: propsField(v, ackProperties(c)),
    })
    .map(({ id, reasonCodes, props }) => ({
      type: PacketType.SUBACK,
      packetId: id,
      reasonCodes,
      ...props,
    }));
}

function unsubscribe(v: Version, c: Constraints): fc.Arbitrary<Packet> {
  return fc
    .record({
      id: packetId,
      topicFilters: fc.array(topicFilter, { minLength: 1, maxLength: 5 }),
      props: propsField(v, unsubscribeProperties(c)),
    })
    .map(({ id, topicFilters, props }) => ({
      type: PacketType.UNSUBSCRIBE,
      packetId: id,
      topicFilters,
      ...props,
    }));
}

function unsuback(v: Version, c: Constraints): fc.Arbitrary<Packet> {
  // A 3.1.1 UNSUBACK is the packet id alone (3.1.1 3.11).
  if (v < 5) return packetId.map((id) => ({ type: PacketType.UNSUBACK, packetId: id }));
  return fc
    .record({
      id: packetId,
      reasonCodes: fc.array(fc.constantFrom(...V5_CODES.unsuback), { minLength: 1, maxLength: 5 }),
      props: propsField(v, ackProperties(c)),
    })
    .map(({ id, reasonCodes, props }) => ({
      type: PacketType.UNSUBACK,
      packetId: id,
      reasonCodes,
      ...props,
    }));
}

function disconnect(v: Version, c: Constraints): fc.Arbitrary<Packet> {
  if (v < 5) return fc.constant({ type: PacketType.DISCONNECT });
  return fc
    .record({
      reasonCode: code(V5_CODES.disconnect),
      props: propsField(v, disconnectProperties(c)),
    })
    .map(({ reasonCode, props }) => ({ type: PacketType.DISCONNECT, reasonCode, ...props }));
}

function auth(c: Constraints): fc.Arbitrary<Packet> {
  return fc
    .record({ reasonCode: code(V5_CODES.auth), properties: authProperties(c) })
    .map(({ reasonCode, properties }) => ({ type: PacketType.AUTH, reasonCode, properties }));
}

/** One arbitrary per packet type of protocol level `v`, keyed by the type's name. */
export function packetArbitraries(
  v: Version,
  c: Constraints = SPEC_ONLY,
): Record<string, fc.Arbitrary<Packet>> {
  const all: Record<string, fc.Arbitrary<Packet>> = {
    CONNECT: connect(v, c),
    CONNACK: connack(v, c),
    PUBLISH: publish(v, c),
    PUBACK: ack(PacketType.PUBACK, v, c),
    PUBREC: ack(PacketType.PUBREC, v, c),
    PUBREL: ack(PacketType.PUBREL, v, c),
    PUBCOMP: ack(PacketType.PUBCOMP, v, c),
    SUBSCRIBE: subscribe(v, c),
    SUBACK: suback(v, c),
    UNSUBSCRIBE: unsubscribe(v, c),
    UNSUBACK: unsuback(v, c),
    PINGREQ: fc.constant({ type: PacketType.PINGREQ }),
    PINGRESP: fc.constant({ type: PacketType.PINGRESP }),
    DISCONNECT: disconnect(v, c),
  };
  // AUTH exists only in 5.0 (v5 3.15).
  if (v === 5) all.AUTH = auth(c);
  return all;
}

/** Any packet of protocol level `v`. */
export function anyPacket(v: Version, c: Constraints = SPEC_ONLY): fc.Arbitrary<Packet> {
  return fc.oneof(...Object.values(packetArbitraries(v, c)));
}
