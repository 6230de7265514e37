// @myqtt/codec: MQTT 3.1, 3.1.1 and 5.0 packets, encoded and decoded; topic names and filters.
// Zero runtime dependencies and no node:* import: Uint8Array in and out (a Buffer is one).

export {
  MAX_PACKET_ID,
  MAX_PACKET_SIZE,
  MAX_REMAINING_LENGTH,
  MAX_STRING_LENGTH,
  PacketType,
  ProtocolVersion,
  packetTypeName,
  QoS,
  RetainHandling,
} from "./constants.js";
export { Decoder, type DecoderOptions, decodePacket, type PacketHandler } from "./decoder.js";
export {
  type EncodeOptions,
  encode,
  encodedLength,
  PacketWriter,
  type PacketWriterOptions,
} from "./encoder.js";
export {
  InvalidPacketError,
  InvalidTopicError,
  MalformedPacketError,
  MqttError,
  type MqttErrorCode,
  type MqttErrorOptions,
  PacketTooLargeError,
  ProtocolError,
  UnsupportedProtocolError,
} from "./errors.js";
export type {
  AckPacket,
  AckProperties,
  AuthPacket,
  AuthProperties,
  ConnackPacket,
  ConnackProperties,
  ConnectPacket,
  ConnectProperties,
  DisconnectPacket,
  DisconnectProperties,
  Packet,
  PingreqPacket,
  PingrespPacket,
  PubackPacket,
  PubcompPacket,
  PublishPacket,
  PublishProperties,
  PubrecPacket,
  PubrelPacket,
  SubackPacket,
  SubscribePacket,
  SubscribeProperties,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
  UnsubscribeProperties,
  UserProperties,
  Will,
  WillProperties,
} from "./packets.js";
export {
  ConnectReturnCode,
  isValidReasonCode,
  ReasonCode,
  reasonCodeName,
} from "./reason-codes.js";
export { SubscriptionTrie } from "./topic-trie.js";
export {
  hasWildcard,
  isSharedSubscription,
  isValidTopicFilter,
  isValidTopicName,
  match,
  parseSharedSubscription,
  type SharedSubscription,
  validateTopicFilter,
  validateTopicName,
} from "./topics.js";
export { decodeUtf8, encodeUtf8, isValidUtf8, validateUtf8 } from "./utf8.js";
export { type DecodedVarint, decodeRemainingLength, encodeRemainingLength } from "./varint.js";
