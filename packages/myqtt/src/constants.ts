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

/** Connection status (MyQttStatus); `Conn.status` reports the ones a TypeScript client can reach. */
export const MyQttStatus = {
  Error: 1,
  Ok: 2,
  BindError: 3,
  WrongReference: 4,
  NameResolvFailure: 5,
  SocketCreationError: 6,
  SocketSanityError: 7,
  ConnectionError: 8,
  ConnectionTimeoutError: 9,
  GreetingsFailure: 10,
  XmlValidationError: 11,
  ConnectionCloseCalled: 12,
  ConnectionForcedClose: 13,
  ProtocolError: 14,
  ConnectionFiltered: 15,
  MemoryFail: 16,
  UnnotifiedConnectionClose: 17,
} as const;

/**
 * MyQtt's QoS flags for storage (MyQttQos 127 and 126). Accepted for compatibility and without
 * effect: 127 has the bits of QoS 1 and 2 set, which broke QoS 2 detection in MyQtt.
 */
export const SKIP_STORAGE = 127;
export const SKIP_STOREAGE_NOTIFY = 126;

/** Storage init/clear flags (MyQttStorage). */
export const STORAGE_PKGIDS = 1;
export const STORAGE_MSGS = 2;
export const STORAGE_ALL = 7;

/** Peer certificate digests (MyQttDigestMethod): pass "sha1" or "md5" to tls.peerCertificateDigest. */
export const DIGEST_SHA1 = "sha1";
export const DIGEST_MD5 = "md5";

/** Configuration items (MyQttConfItem); sockets and backlog are Node's, so these are names only. */
export const SOFT_SOCK_LIMIT = 1;
export const HARD_SOCK_LIMIT = 2;
export const LISTENER_BACKLOG = 3;
export const SKIP_THREAD_POOL_WAIT = 6;

/** Address families (MyQttNetTransport). */
export const IPv4 = 1;
export const IPv6 = 2;
