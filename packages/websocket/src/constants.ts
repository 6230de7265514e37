/** The path MQTT over WebSocket uses by convention (MQTT.js, Mosquitto, HiveMQ). */
export const DEFAULT_PATH = "/mqtt";

/**
 * The subprotocols a listener accepts, in the order it prefers them: "mqtt" is the name the
 * MQTT 3.1.1 and 5.0 specifications register (§6.0), "mqttv3.1" the one MQTT 3.1 clients offer.
 */
export const MQTT_SUBPROTOCOLS: readonly string[] = ["mqtt", "mqttv3.1"];

/**
 * The largest WebSocket message accepted by default: the broker's default maximum packet size
 * (16 MiB) plus room for a fixed header and the small packets a peer batches with a largest one.
 * ws's own default (100 MiB) would let one peer make us hold far more than any packet we accept.
 */
export const DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024 + 1024;

/**
 * Outgoing writes longer than this go out as several messages, so that a batch of packets never
 * exceeds what a peer with the default maxPayload accepts. MQTT allows it: receivers must not
 * assume packets are aligned on frame boundaries [MQTT-6.0.0-2].
 */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

/** write() returns false above this many buffered bytes (Node's stream default, as for TCP). */
export const DEFAULT_HIGH_WATER_MARK = 16 * 1024;

/**
 * How long a closing handshake (our close frame sent, the peer's awaited) may take before the
 * socket is cut. ws waits 30 s; an MQTT peer that does not answer is not worth holding that long.
 */
export const DEFAULT_CLOSE_TIMEOUT_MS = 2000;
