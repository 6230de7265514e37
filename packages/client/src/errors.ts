import { MqttError, type MqttErrorOptions, reasonCodeName } from "@myqtt/codec";

/** The server refused the CONNECT; `reasonCode` is the CONNACK code (3.1.1 return code or v5). */
export class ConnackError extends MqttError {
  /** A Server Reference sent with 0x9C / 0x9D (use another server, server moved). */
  readonly serverReference: string | undefined;

  constructor(reasonCode: number, protocolVersion: number, serverReference?: string) {
    super(
      "CONNACK_REFUSED",
      `connection refused: ${reasonCodeName(reasonCode, 2, protocolVersion)} (${reasonCode})`,
      {
        reasonCode,
        packetType: 2,
      },
    );
    this.name = "ConnackError";
    this.serverReference = serverReference;
  }
}

/** No MQTT connection could be made (DNS, TCP, TLS, or the connect timeout). */
export class ConnectionError extends MqttError {
  constructor(message: string, options: MqttErrorOptions = {}) {
    super("CONNECTION_FAILED", message, options);
    this.name = "ConnectionError";
  }
}

/** The connection closed while an operation waited on it. */
export class ConnectionClosedError extends MqttError {
  constructor(message = "the connection closed", options: MqttErrorOptions = {}) {
    super("CONNECTION_CLOSED", message, options);
    this.name = "ConnectionClosedError";
  }
}

/** An operation did not complete in the time it was given. */
export class TimeoutError extends MqttError {
  constructor(message: string) {
    super("TIMEOUT", message);
    this.name = "TimeoutError";
  }
}

/** An operation was cancelled through its AbortSignal. */
export class AbortedError extends MqttError {
  constructor(reason?: unknown) {
    super("ABORTED", "the operation was aborted", reason === undefined ? {} : { cause: reason });
    this.name = "AbortedError";
  }
}

/**
 * The publish queue (what waits for a connection or for room in the server's Receive Maximum)
 * is full: the message was not accepted (nothing is dropped silently).
 */
export class QueueFullError extends MqttError {
  constructor(message: string) {
    super("QUEUE_FULL", message);
    this.name = "QueueFullError";
  }
}

/**
 * The server refused a publish (v5 PUBACK / PUBREC with a failure code), or the client refused
 * it for the server, as its CONNACK announced (QoS above Maximum QoS: 0x9B; retain when Retain
 * Available is 0: 0x9A; `packetType` PUBLISH then).
 */
export class PublishError extends MqttError {
  constructor(reasonCode: number, packetType: number) {
    super(
      "PUBLISH_REFUSED",
      `publish refused: ${reasonCodeName(reasonCode, packetType)} (0x${reasonCode.toString(16)})`,
      {
        reasonCode,
        packetType,
      },
    );
    this.name = "PublishError";
  }
}

/** The server refused a subscription (SUBACK failure code). */
export class SubscribeError extends MqttError {
  readonly topicFilter: string;

  constructor(topicFilter: string, reasonCode: number) {
    super(
      "SUBSCRIBE_REFUSED",
      `subscription to ${JSON.stringify(topicFilter)} refused: ${reasonCodeName(reasonCode, 9)} (0x${reasonCode.toString(16)})`,
      {
        reasonCode,
        packetType: 9,
      },
    );
    this.name = "SubscribeError";
    this.topicFilter = topicFilter;
  }
}

/** The operation needs a connection and there is none (and none is coming). */
export class NotConnectedError extends MqttError {
  constructor(message = "the client is not connected") {
    super("NOT_CONNECTED", message);
    this.name = "NotConnectedError";
  }
}
