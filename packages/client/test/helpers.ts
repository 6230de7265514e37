// Shared by the client's tests: our broker in a fresh context, a real Mosquitto, cleanup.
import { type BrokerOptions, createListener, type Listener } from "@myqtt/broker";
import { Ctx } from "@myqtt/core";
import { type RunningMosquitto, startMosquitto } from "../../../tooling/services/mosquitto.mjs";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import { type ClientOptions, connect, type MqttClient } from "../src/index.js";

export { onCleanup } from "../../../tooling/testing/cleanup.mjs";
export { sleep, until } from "../../../tooling/testing/wait.mjs";

export interface TestServer {
  url: string;
  port: number;
  ctx?: Ctx;
  listener?: Listener;
}

/** Our broker on a free port, stopped after the test. */
export async function startBroker(
  options: BrokerOptions = {},
  setup?: (ctx: Ctx) => void,
): Promise<TestServer & { ctx: Ctx; listener: Listener }> {
  const ctx = new Ctx();
  await ctx.init();
  setup?.(ctx);
  const listener = await createListener(ctx, "127.0.0.1", "0", options);
  if (!listener.isOk()) throw new Error(`broker did not start: ${listener.errorMsg}`);
  onCleanup(() => ctx.exit());
  return { ctx, listener, port: listener.port, url: `mqtt://127.0.0.1:${listener.port}` };
}

/** A real Mosquitto on a free port, stopped after the test (fails clearly when not installed). */
export async function mosquitto(extraConfig: string[] = []): Promise<RunningMosquitto> {
  const m = await startMosquitto(extraConfig);
  onCleanup(() => m.stop());
  return m;
}

/** A connected client, ended (abruptly) after the test. */
export async function client(server: TestServer, options: ClientOptions = {}): Promise<MqttClient> {
  const c = await connect(server.url, { reconnect: false, ...options });
  onCleanup(() => c.destroy());
  return c;
}
