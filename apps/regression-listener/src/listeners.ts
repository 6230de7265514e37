// The five listeners of the C regression listener (reference §5.1), all on one broker.
import { readFileSync } from "node:fs";
import * as myqtt from "myqtt";
import type { CertPaths } from "./certificates.js";
import type { ListenerConfig } from "./options.js";

/** A started listener, named as in the "listening on" line. */
export interface StartedListener {
  name: "plain" | "tls" | "mtls" | "ws" | "wss";
  scheme: "mqtt" | "mqtts" | "ws" | "wss";
  listener: myqtt.Listener;
}

/** MyQtt's behaviour the regression suite relies on (architecture.md, quirk policy). */
export const BROKER_OPTIONS: myqtt.BrokerOptions = { duplicateClientId: "reject" };

/**
 * Starts the plain, TLS, mutual TLS, WebSocket and secure WebSocket listeners, in that order
 * (the first one opens the storage). Throws saying which one could not listen; the ones
 * already started are closed by ctx.exit().
 */
export async function startListeners(
  ctx: myqtt.Ctx,
  config: ListenerConfig,
  certs: CertPaths,
): Promise<StartedListener[]> {
  const { host } = config;
  const file = myqtt.tls.pemFile;
  const started: StartedListener[] = [];
  const add = async (
    name: StartedListener["name"],
    scheme: StartedListener["scheme"],
    open: () => Promise<myqtt.Listener>,
  ): Promise<void> => {
    const listener = await open();
    if (!listener.isOk())
      throw new Error(`${name} listener: ${listener.errorMsg ?? "cannot listen"}`);
    started.push({ name, scheme, listener });
  };

  await add("plain", "mqtt", () => myqtt.createListener(ctx, host, config.port, BROKER_OPTIONS));
  // The SNI handlers installed on ctx pick other certificates by name.
  await add("tls", "mqtts", () =>
    myqtt.tls.createListener(
      ctx,
      host,
      config.tlsPort,
      { cert: file(certs.defaultCert), key: file(certs.defaultKey) },
      BROKER_OPTIONS,
    ),
  );
  await add("mtls", "mqtts", () =>
    myqtt.tls.createListener(
      ctx,
      host,
      config.mtlsPort,
      {
        cert: file(certs.serverCert),
        key: file(certs.serverKey),
        ca: file(certs.rootCert),
        requireClientCert: true,
      },
      BROKER_OPTIONS,
    ),
  );
  // noPoll listeners took any path; MQTT.js asks for /mqtt, MyQtt's client for /.
  await add("ws", "ws", () =>
    myqtt.websocket.createListener(ctx, host, config.wsPort, { anyPath: true }, BROKER_OPTIONS),
  );
  await add("wss", "wss", () =>
    myqtt.websocket.createListener(
      ctx,
      host,
      config.wssPort,
      {
        anyPath: true,
        tls: { cert: readFileSync(certs.defaultCert), key: readFileSync(certs.defaultKey) },
      },
      BROKER_OPTIONS,
    ),
  );
  return started;
}
