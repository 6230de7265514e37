// Shared by the TLS tests: certificates, our broker on a TLS listener, clients, cleanup.
import { createListener, type Listener } from "@myqtt/broker";
import { type ClientOptions, connect, type MqttClient } from "@myqtt/client";
import { ConnackCode, Ctx, type ServerConnection } from "@myqtt/core";
import { afterAll, test } from "vitest";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import {
  connectTls,
  listenTls,
  type TlsConnectOptions,
  TlsError,
  type TlsListenOptions,
} from "../src/index.js";
import { generateCertificates, opensslUnavailable, type TestCertificates } from "./certs.js";

/** Why the TLS tests are skipped here, or null (throws when MYQTT_REQUIRE_SERVICES=1). */
export const skipReason = opensslUnavailable();
// A skipped file says why in the report (this module is loaded once per test file).
if (skipReason !== null) test.skip(`TLS tests skipped: ${skipReason}`, () => {});

let shared: TestCertificates | null = null;

/** The certificates of this test file, generated once. */
export function certs(): TestCertificates {
  if (shared === null) shared = generateCertificates();
  return shared;
}

afterAll(() => {
  shared?.remove();
  shared = null;
});

export { onCleanup } from "../../../tooling/testing/cleanup.mjs";
export { sleep, until } from "../../../tooling/testing/wait.mjs";

/** A MyQtt context, exited after the test. */
export async function newCtx(): Promise<Ctx> {
  const ctx = new Ctx();
  if (!(await ctx.init())) throw new Error("ctx.init() failed");
  onCleanup(() => ctx.exit());
  return ctx;
}

export interface TlsBroker {
  ctx: Ctx;
  listener: Listener;
  port: number;
  /** Every connection the CONNECT hook saw, in order. */
  conns: ServerConnection[];
  /** Every log line of the broker's context. */
  logs: string[];
}

/**
 * Our broker with a TLS listener on 127.0.0.1 (free port). `tls` defaults to the localhost
 * certificate; `setup` runs on the context before the listener starts.
 */
export async function tlsBroker(
  tls: TlsListenOptions = {},
  setup?: (ctx: Ctx) => void,
): Promise<TlsBroker> {
  const ctx = await newCtx();
  const conns: ServerConnection[] = [];
  const logs: string[] = [];
  ctx.setLogHandler((_ctx, file, _line, _level, message) => logs.push(`${file}: ${message}`));
  ctx.setOnConnect((_ctx, conn) => {
    conns.push(conn);
    return ConnackCode.ACCEPTED;
  });
  setup?.(ctx);
  const c = certs();
  const transportOptions: TlsListenOptions = {
    ...(tls.context === undefined ? { cert: c.server.cert, key: c.server.key } : {}),
    ctx,
    ...tls,
  };
  const listener = await createListener(ctx, "127.0.0.1", 0, {
    transport: listenTls,
    transportOptions,
  });
  if (!listener.isOk()) throw new Error(`TLS listener did not start: ${listener.errorMsg}`);
  return { ctx, listener, port: listener.port, conns, logs };
}

/** Our client over TLS to 127.0.0.1:`port`, destroyed after the test. */
export async function tlsClient(
  port: number,
  tls: TlsConnectOptions = {},
  options: ClientOptions = {},
): Promise<MqttClient> {
  const client = await connect({
    host: "127.0.0.1",
    port,
    reconnect: false,
    connectTimeoutMs: 5000,
    connector: connectTls,
    connectorOptions: { ca: certs().ca.cert, ...tls },
    ...options,
  });
  onCleanup(() => client.destroy());
  return client;
}

/** The TlsError in an error's cause chain (the client wraps transport errors), or null. */
export function tlsErrorIn(error: unknown): TlsError | null {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (TlsError.is(e)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/** What a promise rejected with (fails when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    const value = await promise;
    (value as { destroy?: () => void } | null)?.destroy?.();
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection, got a value");
}

/** Subscribes `sub` to `topic` (QoS 1), publishes from `pub`, resolves with the payload. */
export async function roundTrip(
  sub: MqttClient,
  pub: MqttClient,
  topic: string,
  payload: string,
): Promise<string> {
  const subscription = await sub.subscribe(topic, { qos: 1 });
  const received = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message on ${topic}`)), 5000);
    sub.once("message", (_topic, bytes) => {
      clearTimeout(timer);
      resolve(Buffer.from(bytes).toString());
    });
  });
  await pub.publish(topic, payload, { qos: 1 });
  const text = await received;
  await subscription.unsubscribe();
  return text;
}
