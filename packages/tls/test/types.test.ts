// The TLS factories plug into the client's and the broker's option types without casts.
import type { ListenerOptions } from "@myqtt/broker";
import { type ClientOptions, ConnOpts } from "@myqtt/client";
import type { Connector, ListenerFactory } from "@myqtt/core";
import { expect, expectTypeOf, test } from "vitest";
import {
  connectTls,
  listenTls,
  setServerName,
  type TlsConnectOptions,
  type TlsListenOptions,
} from "../src/index.js";

test("connectTls and listenTls fit the typed and the unknown (client, broker) forms", () => {
  const typedConnector: Connector<TlsConnectOptions> = connectTls;
  const anyConnector: Connector<unknown> = connectTls;
  const typedFactory: ListenerFactory<TlsListenOptions> = listenTls;
  const anyFactory: ListenerFactory<unknown> = listenTls;
  const client: ClientOptions = { connector: connectTls, connectorOptions: { verifyPeer: true } };
  const listener: ListenerOptions = { transport: listenTls, transportOptions: {} };
  expect([typedConnector, anyConnector, typedFactory, anyFactory]).toHaveLength(4);
  expect(client.connector).toBe(connectTls);
  expect(listener.transport).toBe(listenTls);
});

test("the MyQtt helpers take the client's ConnOpts", () => {
  const opts = new ConnOpts();
  setServerName(opts, "broker.example");
  expect(opts.connector).toBe(connectTls);
  expectTypeOf(setServerName).parameter(0).toMatchTypeOf<{ connector?: unknown }>();
});

test("options must be objects", async () => {
  await expect(connectTls("127.0.0.1", 1, null as never)).rejects.toThrow(TypeError);
  await expect(listenTls("127.0.0.1", 0, () => {}, 5 as never)).rejects.toThrow(TypeError);
  await expect(connectTls("127.0.0.1", 1, { cert: "-----BEGIN CERTIFICATE-----" })).rejects.toThrow(
    /go together/,
  );
});
