import { readFileSync } from "node:fs";
import { createListener, type Listener } from "@myqtt/broker";
import type { Ctx } from "@myqtt/core";
import type { DaemonConfig } from "./config.js";

/** A listener beside the plain one, and the scheme it serves. */
export interface ExtraListener {
  scheme: "mqtts" | "ws" | "wss";
  listener: Listener;
}

/**
 * Starts the TLS, WebSocket and secure WebSocket listeners the config asks for, on the same
 * host and broker as the plain one. Throws with the reason when one cannot listen.
 */
export async function startExtraListeners(
  ctx: Ctx,
  config: DaemonConfig,
): Promise<ExtraListener[]> {
  const out: ExtraListener[] = [];
  const add = async (
    scheme: ExtraListener["scheme"],
    port: number,
    options: Parameters<typeof createListener>[3],
  ): Promise<void> => {
    const listener = await createListener(ctx, config.host, port, options);
    if (!listener.isOk())
      throw new Error(`${scheme} listener: ${listener.errorMsg ?? "cannot listen"}`);
    out.push({ scheme, listener });
  };
  // Each transport is loaded only when a listener asks for it.
  if (config.tlsPort !== null) {
    const { listenTls } = await import("@myqtt/tls");
    await add("mqtts", config.tlsPort, {
      transport: listenTls,
      transportOptions: {
        cert: config.cert!,
        key: config.key!,
        ...(config.ca !== null ? { ca: config.ca } : {}),
        requireClientCert: config.requireClientCert,
        ctx,
      },
    });
  }
  if (config.wsPort !== null) {
    const { listenWebSocket } = await import("@myqtt/websocket");
    await add("ws", config.wsPort, { transport: listenWebSocket, transportOptions: {} });
  }
  if (config.wssPort !== null) {
    const { listenWebSocket } = await import("@myqtt/websocket");
    const read = (file: string): Buffer => readFileSync(file);
    await add("wss", config.wssPort, {
      transport: listenWebSocket,
      transportOptions: {
        tls: {
          cert: read(config.cert!),
          key: read(config.key!),
          ...(config.ca !== null ? { ca: read(config.ca) } : {}),
          requestCert: config.requireClientCert,
        },
      },
    });
  }
  return out;
}
