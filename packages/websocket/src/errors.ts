import { MqttError } from "@myqtt/codec";

/** The server answered the WebSocket upgrade with something other than 101 (wrong path, 426...). */
export class WebSocketUpgradeError extends MqttError {
  /** The HTTP status of the answer. */
  readonly statusCode: number;

  constructor(url: string, statusCode: number, statusMessage: string | undefined) {
    super(
      "CONNECTION_FAILED",
      `the WebSocket upgrade of ${url} was refused: HTTP ${statusCode}${statusMessage ? ` ${statusMessage}` : ""}`,
    );
    this.name = "WebSocketUpgradeError";
    this.statusCode = statusCode;
  }
}

/** The WebSocket connection could not be opened (network, TLS, handshake, timeout). */
export class WebSocketConnectError extends MqttError {
  constructor(message: string, cause?: unknown) {
    super("CONNECTION_FAILED", message, cause === undefined ? {} : { cause });
    this.name = "WebSocketConnectError";
  }
}

/**
 * The WebSocket closed abnormally: a close code other than a normal end (1000, 1001, 1005, 1006),
 * or a protocol error such as a message over maxPayload (`cause` is ws's error then).
 */
export class WebSocketClosedError extends MqttError {
  /** The WebSocket close code (RFC 6455 §7.4), e.g. 1009 for a message too big. */
  readonly closeCode: number;

  constructor(closeCode: number, reason: string, cause?: unknown) {
    super(
      "CONNECTION_CLOSED",
      `the WebSocket closed with ${closeCode}${reason ? ` (${reason})` : ""}`,
      cause === undefined ? {} : { cause },
    );
    this.name = "WebSocketClosedError";
    this.closeCode = closeCode;
  }
}
