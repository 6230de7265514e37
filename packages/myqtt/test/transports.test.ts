// myqtt.tls and myqtt.websocket as the PyMyQtt manual uses them: createListener and createConn
// on a Ctx, verification on by default, certificates from files made by openssl for the test.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as myqtt from "../src/index.js";

const hasOpenssl = !spawnSync("openssl", ["version"]).error;
if (!hasOpenssl && process.env.MYQTT_REQUIRE_SERVICES === "1")
  throw new Error("MYQTT_REQUIRE_SERVICES=1 but openssl is missing: apt-get install openssl");

let dir = "";
/** A self-signed certificate for localhost: [cert path, key path]. */
function selfSigned(name: string): [string, string] {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2"]
      .concat(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
      .concat(["-keyout", key, "-out", cert]),
    { stdio: "ignore" },
  );
  return [cert, key];
}

const contexts: myqtt.Ctx[] = [];
async function newCtx(): Promise<myqtt.Ctx> {
  const ctx = new myqtt.Ctx();
  expect(await ctx.init()).toBe(true);
  contexts.push(ctx);
  return ctx;
}
afterEach(async () => {
  for (const ctx of contexts.splice(0)) await ctx.exit();
});

describe.skipIf(!hasOpenssl)("myqtt.tls", () => {
  let first: [string, string];
  let second: [string, string];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "myqtt-umbrella-"));
    first = selfSigned("first");
    second = selfSigned("second");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("createListener and createConn: a verified TLS connection that publishes and receives", async () => {
    const server = await newCtx();
    const listener = await myqtt.tls.createListener(server, "127.0.0.1", 0, {
      cert: first[0],
      key: first[1],
    });
    expect(listener.isOk()).toBe(true);
    const ctx = await newCtx();
    const opts = new myqtt.ConnOpts();
    myqtt.tls.setSslCerts(opts, null, null, null, first[0]);
    const conn = await myqtt.tls.createConn(
      ctx,
      "localhost",
      listener.port,
      "tls-1",
      true,
      30,
      opts,
    );
    expect(conn.errorMsg).toBeNull();
    expect(conn.isOk()).toBe(true);
    expect(myqtt.tls.isOn(conn)).toBe(true);
    expect(myqtt.tls.verifyCert(conn)).toBe(true);
    const [ok] = await conn.sub("tls/topic", 1, 5);
    expect(ok).toBe(true);
    // getNext() waits for a message that arrives after it is called (MyQtt's get_next).
    const next = conn.getNext(5000);
    expect(await conn.pub("tls/topic", "over tls", 1, false, 5)).toBe(true);
    expect((await next)?.content).toBe("over tls");
  });

  it("verifies the server by default: an untrusted certificate fails the connection", async () => {
    const server = await newCtx();
    const listener = await myqtt.tls.createListener(server, "127.0.0.1", 0, {
      cert: first[0],
      key: first[1],
    });
    const ctx = await newCtx();
    const conn = await myqtt.tls.createConn(ctx, "localhost", listener.port, "tls-2", true, 30);
    expect(conn.isOk()).toBe(false);
    expect(conn.errorMsg).toMatch(/UNTRUSTED|self[- ]signed/i);
    const off = new myqtt.ConnOpts();
    myqtt.tls.sslPeerVerify(off, false);
    const unverified = await myqtt.tls.createConn(
      ctx,
      "localhost",
      listener.port,
      "tls-3",
      true,
      30,
      off,
    );
    expect(unverified.isOk()).toBe(true);
    expect(myqtt.tls.verifyCert(unverified)).toBe(false);
  });

  it("setCertificate on the listener's tlsContext: the next connection gets the new certificate", async () => {
    const server = await newCtx();
    const listener = await myqtt.tls.createListener(server, "127.0.0.1", 0, {
      cert: first[0],
      key: first[1],
    });
    const ctx = await newCtx();
    const connect = async (id: string): Promise<string | null> => {
      const opts = new myqtt.ConnOpts();
      myqtt.tls.sslPeerVerify(opts, false);
      const conn = await myqtt.tls.createConn(ctx, "localhost", listener.port, id, true, 30, opts);
      expect(conn.isOk()).toBe(true);
      return myqtt.tls.peerCertificateDigest(conn, "sha256");
    };
    const before = await connect("tls-4");
    myqtt.tls.setCertificate(listener.tlsContext, second[0], second[1]);
    const after = await connect("tls-5");
    expect(before).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(after).not.toBe(before);
  });
});

describe("myqtt.websocket", () => {
  it("createListener and createConn over WebSocket", async () => {
    const server = await newCtx();
    const listener = await myqtt.websocket.createListener(server, "127.0.0.1", 0);
    expect(listener.isOk()).toBe(true);
    const ctx = await newCtx();
    const conn = await myqtt.websocket.createConn(
      ctx,
      "127.0.0.1",
      listener.port,
      "ws-1",
      true,
      30,
    );
    expect(conn.isOk()).toBe(true);
    await conn.sub("ws/topic", 0, 5);
    expect(await conn.pub("ws/topic", "over websocket", 0, false, 5)).toBe(true);
    expect((await conn.getNext(5000))?.content).toBe("over websocket");
  });
});
