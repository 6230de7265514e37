import type { PacketType, ProtocolVersion, QoS, RetainHandling } from "./constants.js";

/** User properties in wire order; a name may appear more than once (v5 3.1.2.11.8). */
export type UserProperties = Array<[name: string, value: string]>;

/** CONNECT properties (v5 3.1.2.11). */
export interface ConnectProperties {
  sessionExpiryInterval?: number;
  receiveMaximum?: number;
  maximumPacketSize?: number;
  topicAliasMaximum?: number;
  requestResponseInformation?: boolean;
  requestProblemInformation?: boolean;
  userProperties?: UserProperties;
  authenticationMethod?: string;
  authenticationData?: Uint8Array;
}

/** Will properties, carried in the CONNECT payload (v5 3.1.3.2). */
export interface WillProperties {
  willDelayInterval?: number;
  payloadFormatIndicator?: 0 | 1;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Uint8Array;
  userProperties?: UserProperties;
}

/** CONNACK properties (v5 3.2.2.3). */
export interface ConnackProperties {
  sessionExpiryInterval?: number;
  receiveMaximum?: number;
  maximumQoS?: 0 | 1;
  retainAvailable?: boolean;
  maximumPacketSize?: number;
  assignedClientIdentifier?: string;
  topicAliasMaximum?: number;
  reasonString?: string;
  userProperties?: UserProperties;
  wildcardSubscriptionAvailable?: boolean;
  subscriptionIdentifierAvailable?: boolean;
  sharedSubscriptionAvailable?: boolean;
  serverKeepAlive?: number;
  responseInformation?: string;
  serverReference?: string;
  authenticationMethod?: string;
  authenticationData?: Uint8Array;
}

/** PUBLISH properties (v5 3.3.2.3). */
export interface PublishProperties {
  payloadFormatIndicator?: 0 | 1;
  messageExpiryInterval?: number;
  topicAlias?: number;
  responseTopic?: string;
  correlationData?: Uint8Array;
  userProperties?: UserProperties;
  /** Every subscription identifier that matched, when the server delivers (v5 3.3.2.3.8). */
  subscriptionIdentifiers?: number[];
  contentType?: string;
}

/** Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK. */
export interface AckProperties {
  reasonString?: string;
  userProperties?: UserProperties;
}

/** SUBSCRIBE properties (v5 3.8.2.1). */
export interface SubscribeProperties {
  subscriptionIdentifier?: number;
  userProperties?: UserProperties;
}

/** UNSUBSCRIBE properties (v5 3.10.2.1). */
export interface UnsubscribeProperties {
  userProperties?: UserProperties;
}

/** DISCONNECT properties (v5 3.14.2.2). */
export interface DisconnectProperties {
  sessionExpiryInterval?: number;
  reasonString?: string;
  userProperties?: UserProperties;
  serverReference?: string;
}

/** AUTH properties (v5 3.15.2.2). */
export interface AuthProperties {
  authenticationMethod?: string;
  authenticationData?: Uint8Array;
  reasonString?: string;
  userProperties?: UserProperties;
}

/** The will message of a CONNECT. */
export interface Will {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** MQTT 5.0 only. */
  properties?: WillProperties;
}

export interface ConnectPacket {
  type: typeof PacketType.CONNECT;
  /** "MQTT" for 3.1.1 and 5.0, "MQIsdp" for 3.1. Derived from the version when encoding. */
  protocolName?: "MQTT" | "MQIsdp";
  protocolVersion: ProtocolVersion;
  /** Set when the level byte had its top bit on (a bridge, as Mosquitto's `try_private`). */
  bridge?: boolean;
  /** Clean Session (3.1, 3.1.1) or Clean Start (5.0). */
  clean: boolean;
  /** Seconds; 0 turns the keep alive off. */
  keepAlive: number;
  /** May be empty; the server then assigns one (or refuses, in 3.1.1 with clean false). */
  clientId: string;
  will?: Will;
  username?: string;
  password?: Uint8Array;
  properties?: ConnectProperties;
}

export interface ConnackPacket {
  type: typeof PacketType.CONNACK;
  sessionPresent: boolean;
  /** The v5 reason code, or the 3.1/3.1.1 return code (0 to 5). */
  reasonCode: number;
  properties?: ConnackProperties;
}

export interface PublishPacket {
  type: typeof PacketType.PUBLISH;
  /** May be "" in 5.0 when `properties.topicAlias` names the topic. */
  topic: string;
  /** Decoded payloads are views into the received bytes where the frame lay in one chunk. */
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** Present exactly when qos > 0. */
  packetId?: number;
  properties?: PublishProperties;
}

/** PUBACK (4), PUBREC (5), PUBREL (6) and PUBCOMP (7) share one shape. */
export interface PubackPacket {
  type: typeof PacketType.PUBACK;
  packetId: number;
  /** 5.0 only; 0 (success) when absent on the wire. */
  reasonCode?: number;
  properties?: AckProperties;
}
export interface PubrecPacket extends Omit<PubackPacket, "type"> {
  type: typeof PacketType.PUBREC;
}
export interface PubrelPacket extends Omit<PubackPacket, "type"> {
  type: typeof PacketType.PUBREL;
}
export interface PubcompPacket extends Omit<PubackPacket, "type"> {
  type: typeof PacketType.PUBCOMP;
}

/** One topic filter of a SUBSCRIBE with its options. */
export interface Subscription {
  topicFilter: string;
  /** The maximum QoS requested. */
  qos: QoS;
  /** 5.0 only: do not send this client its own publications. */
  noLocal?: boolean;
  /** 5.0 only: keep the RETAIN flag of forwarded messages. */
  retainAsPublished?: boolean;
  /** 5.0 only: 0 send retained on subscribe, 1 only if new, 2 never. */
  retainHandling?: RetainHandling;
}

export interface SubscribePacket {
  type: typeof PacketType.SUBSCRIBE;
  packetId: number;
  subscriptions: Subscription[];
  properties?: SubscribeProperties;
}

export interface SubackPacket {
  type: typeof PacketType.SUBACK;
  packetId: number;
  /** One per requested filter: the granted QoS or a failure code (0x80 and up). */
  reasonCodes: number[];
  properties?: AckProperties;
}

export interface UnsubscribePacket {
  type: typeof PacketType.UNSUBSCRIBE;
  packetId: number;
  topicFilters: string[];
  properties?: UnsubscribeProperties;
}

export interface UnsubackPacket {
  type: typeof PacketType.UNSUBACK;
  packetId: number;
  /** 5.0 only: one per filter. */
  reasonCodes?: number[];
  properties?: AckProperties;
}

export interface PingreqPacket {
  type: typeof PacketType.PINGREQ;
}

export interface PingrespPacket {
  type: typeof PacketType.PINGRESP;
}

export interface DisconnectPacket {
  type: typeof PacketType.DISCONNECT;
  /** 5.0 only; 0 (normal disconnection) when absent on the wire. */
  reasonCode?: number;
  properties?: DisconnectProperties;
}

/** MQTT 5.0 only. */
export interface AuthPacket {
  type: typeof PacketType.AUTH;
  /** 0 success, 0x18 continue authentication, 0x19 re-authenticate. */
  reasonCode: number;
  properties?: AuthProperties;
}

/** Any MQTT control packet, discriminated by `type`. */
export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;

/** The acknowledgement packets that carry only a packet id, a reason code and properties. */
export type AckPacket = PubackPacket | PubrecPacket | PubrelPacket | PubcompPacket;
