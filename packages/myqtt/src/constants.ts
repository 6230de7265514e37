// MyQtt's constants under their PyMyQtt / C names (reference §2.1), beside the typed `as const`
// objects of the packages (ConnackCode, PublishCode, LogLevel, PacketType).
import { PacketType } from "@myqtt/codec";
import { ConnackCode, LogLevel, PublishCode, QOS_DENIED } from "@myqtt/core";

/** QoS levels (MyQttQos). */
export const qos0 = 0;
export const qos1 = 1;
export const qos2 = 2;
/** An on_subscribe hook's refusal (SUBACK 0x80). */
export const QOS_DENIED_CODE = QOS_DENIED;

/** What an on_publish hook returns (MyQttPublishCodes). */
export const PUBLISH_OK = PublishCode.OK;
export const PUBLISH_DISCARD = PublishCode.DISCARD;
export const PUBLISH_CONN_CLOSE = PublishCode.CONN_CLOSE;
export const PUBLISH_DUNNO = PublishCode.DUNNO;

/** CONNACK codes, local failures and DEFERRED (MyQttConnAckTypes). */
export const CONNACK_UNKNOWN_ERR = ConnackCode.UNKNOWN_ERR;
export const CONNACK_CONNECT_TIMEOUT = ConnackCode.CONNECT_TIMEOUT;
export const CONNACK_UNABLE_TO_CONNECT = ConnackCode.UNABLE_TO_CONNECT;
export const CONNACK_DEFERRED = ConnackCode.DEFERRED;
export const CONNACK_ACCEPTED = ConnackCode.ACCEPTED;
export const CONNACK_REFUSED = ConnackCode.REFUSED;
export const CONNACK_IDENTIFIER_REJECTED = ConnackCode.IDENTIFIER_REJECTED;
export const CONNACK_SERVER_UNAVAILABLE = ConnackCode.SERVER_UNAVAILABLE;
export const CONNACK_BAD_USERNAME_OR_PASSWORD = ConnackCode.BAD_USERNAME_OR_PASSWORD;
export const CONNACK_NOT_AUTHORIZED = ConnackCode.NOT_AUTHORIZED;

/** Packet types (MyQttMsgType). PyMyQtt spells PINGREQ "PINGREG": both names are here. */
export const CONNECT = PacketType.CONNECT;
export const CONNACK = PacketType.CONNACK;
export const PUBLISH = PacketType.PUBLISH;
export const PUBACK = PacketType.PUBACK;
export const PUBREC = PacketType.PUBREC;
export const PUBREL = PacketType.PUBREL;
export const PUBCOMP = PacketType.PUBCOMP;
export const SUBSCRIBE = PacketType.SUBSCRIBE;
export const SUBACK = PacketType.SUBACK;
export const UNSUBSCRIBE = PacketType.UNSUBSCRIBE;
export const UNSUBACK = PacketType.UNSUBACK;
export const PINGREQ = PacketType.PINGREQ;
export const PINGREG = PacketType.PINGREQ;
export const PINGRESP = PacketType.PINGRESP;
export const DISCONNECT = PacketType.DISCONNECT;

/** Log levels (MyQttDebugLevel; Python's level_debug...). */
export const level_debug = LogLevel.DEBUG;
export const level_warning = LogLevel.WARNING;
export const level_critical = LogLevel.CRITICAL;

/** The largest remaining length of an MQTT packet (MYQTT_MAX_MSG_SIZE). */
export const MAX_MSG_SIZE = 268_435_455;
