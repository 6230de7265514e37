// Our client over WebSocket against a real Mosquitto with a websockets listener (Debian's
// mosquitto 2.0 is built with libwebsockets). Without Mosquitto the test fails, as every
// Mosquitto test of the repository does; a Mosquitto built without websockets skips it with the
// reason, or fails it when MYQTT_REQUIRE_SERVICES=1.
import { connect, type MqttClient } from "@myqtt/client";
import { describe, expect, it } from "vitest";
import {
  freePort,
  type RunningMosquitto,
  startMosquitto,
} from "../../../tooling/services/mosquitto.mjs";
import { useWebSocket, WebSocketTransport } from "../src/index.js";
import { onCleanup, servicesRequired, sleep } from "./helpers.js";

/** Mosquitto with a websockets listener on a free port, or why there is none. */
async function mosquittoWithWebSockets(): Promise<
  { mosquitto: RunningMosquitto; wsPort: number } | string
> {
  for (let attempt = 1; ; attempt++) {
    const wsPort = await freePort();
    try {
      const mosquitto = await startMosquitto([
        `listener ${wsPort} 127.0.0.1`,
        "protocol websockets",
      ]);
      onCleanup(() => mosquitto.stop());
      return { mosquitto, wsPort };
    } catch (error) {
      const text = String(error);
      // A build without libwebsockets refuses the "protocol websockets" line.
      if (/websockets/i.test(text) && !/address already in use/i.test(text)) {
        return `this Mosquitto has no websockets support: ${text}`;
      }
      if (attempt === 3) throw error;
    }
  }
}

/** Our client over ws to Mosquitto; the listener may take a moment after the TCP one. */
async function wsClientTo(wsPort: number, options: Record<string, unknown>): Promise<MqttClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      const c = await connect(
        useWebSocket(
          { host: "127.0.0.1", port: wsPort, reconnect: false, connectTimeoutMs: 5000, ...options },
          { connectTimeoutMs: 5000 },
        ),
      );
      onCleanup(() => c.destroy());
      return c;
    } catch (error) {
      if (attempt === 20) throw error;
      await sleep(50);
    }
  }
}

describe("our client over ws against Mosquitto", () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`v${protocolVersion}: publishes and receives at QoS 0, 1 and 2 through Mosquitto's websockets listener`, async (t) => {
      const started = await mosquittoWithWebSockets();
      if (typeof started === "string") {
        if (servicesRequired) throw new Error(`MYQTT_REQUIRE_SERVICES=1 and ${started}`);
        t.skip(started);
        return;
      }
      const sub = await wsClientTo(started.wsPort, {
        protocolVersion,
        clientId: `mosq-sub-${protocolVersion}`,
      });
      const pub = await wsClientTo(started.wsPort, {
        protocolVersion,
        clientId: `mosq-pub-${protocolVersion}`,
      });
      expect(sub.transport).toBeInstanceOf(WebSocketTransport);
      expect((sub.transport as WebSocketTransport).ws.protocol).toBe("mqtt");
      const subscription = await sub.subscribe("mosq/ws/#", { qos: 2 });
      for (const qos of [0, 1, 2] as const) {
        await pub.publish(`mosq/ws/${qos}`, `via mosquitto ${qos}`, { qos });
        const r = await Promise.race([subscription.next(), sleep(5000).then(() => null)]);
        expect(r !== null && !r.done && r.value.content).toBe(`via mosquitto ${qos}`);
      }
      // A message larger than libwebsockets' 4 KiB buffers arrives intact. Not a large one:
      // Mosquitto 2.0.11 sends to WebSocket clients at about 40 KB/s (MQTT.js sees the same:
      // 300 kB take 7 s), so a big one would only measure Mosquitto.
      const big = new Uint8Array(20_000).map((_, i) => (i * 7) & 0xff);
      await pub.publish("mosq/ws/big", big, { qos: 1 });
      const r = await Promise.race([subscription.next(), sleep(5000).then(() => null)]);
      expect(
        r !== null && !r.done && Buffer.compare(Buffer.from(r.value.payload), Buffer.from(big)),
      ).toBe(0);
    });
  }
});
