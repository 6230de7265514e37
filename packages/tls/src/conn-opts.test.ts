import { describe, expect, test } from "vitest";
import { type ConnectorHolder, setServerName, setSslCerts, sslPeerVerify } from "./conn-opts.js";
import { connectTls } from "./connector.js";

describe("MyQtt ConnOpts helpers", () => {
  test("each one switches to TLS and merges its options", () => {
    const opts: ConnectorHolder = {};
    sslPeerVerify(opts, false);
    expect(opts.connector).toBe(connectTls);
    expect(opts.connectorOptions).toEqual({ verifyPeer: false });
    setSslCerts(opts, "client.crt", "client.key", null, "root.crt");
    setServerName(opts, "broker.example");
    expect(opts.connectorOptions).toEqual({
      verifyPeer: false,
      cert: { path: "client.crt" },
      key: { path: "client.key" },
      ca: { path: "root.crt" },
      serverName: "broker.example",
    });
    sslPeerVerify(opts, true);
    expect((opts.connectorOptions as { verifyPeer: boolean }).verifyPeer).toBe(true);
  });

  test("options of another connector are not merged into TLS ones", () => {
    const other = async () => {
      throw new Error("unused");
    };
    const opts: ConnectorHolder = { connector: other, connectorOptions: { path: "/mqtt" } };
    setServerName(opts, "x.test");
    expect(opts.connector).toBe(connectTls);
    expect(opts.connectorOptions).toEqual({ serverName: "x.test" });
  });

  test("the options object is replaced, never mutated (it may be shared)", () => {
    const shared = { verifyPeer: true };
    const opts: ConnectorHolder = { connector: connectTls, connectorOptions: shared };
    setServerName(opts, "y.test");
    expect(shared).toEqual({ verifyPeer: true });
  });
});
