// The MyQtt-shaped Conn: every call of its surface with the semantics of MyQtt (reference
// §2.3-2.5): connect never throws, boolean results, seconds for waits (milliseconds for
// getNext), handlers with (ctx, conn, msg, data), on_close handles, automatic reconnect.
import { randomBytes } from "node:crypto";
import { createServer, connect as netConnect, type Socket } from "node:net";
import { type ConnectProperties, PacketType, type ProtocolVersion, ReasonCode } from "@myqtt/codec";
import {
  ConnackCode,
  type Connector,
  type Ctx,
  type Msg,
  PublishCode,
  QOS_DENIED,
  SocketTransport,
} from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { Conn, ConnOpts, ConnStatus, MqttClient } from "../src/index.js";
import { clientCtx, closedPort, muteServer, settledWithin, silentServer } from "./api-helpers.js";
import { client, onCleanup, sleep, startBroker, type TestServer, until } from "./helpers.js";
import { rawServer } from "./resilience-helpers.js";

/** A broker that checks aspl/test when credentials are given (the manual's on_connect). */
function authBroker() {
  return startBroker({}, (ctx) =>
    ctx.setOnConnect((_ctx, conn) =>
      conn.username !== null && (conn.username !== "aspl" || conn.password !== "test")
        ? ConnackCode.BAD_USERNAME_OR_PASSWORD
        : ConnackCode.ACCEPTED,
    ),
  );
}

async function connected(
  ctx: Ctx,
  server: TestServer,
  clientId: string | null = null,
  opts?: ConnOpts,
): Promise<Conn> {
  const conn = await Conn.connect(ctx, "127.0.0.1", server.port, clientId, false, 0, opts);
  if (!conn.isOk()) throw new Error(`connect failed: ${conn.errorMsg}`);
  return conn;
}

describe("Conn.connect never throws", () => {
  it("an invalid port: not ok, an error message, lastErr -2", async () => {
    const ctx = await clientCtx();
    for (const port of ["not-a-port", "70000", 0]) {
      const conn = await Conn.connect(ctx, "127.0.0.1", port);
      expect(conn.isOk()).toBe(false);
      expect(conn.lastErr).toBe(ConnackCode.UNABLE_TO_CONNECT);
      expect(conn.errorMsg).toBeTruthy();
      expect(conn.status).toBe(ConnStatus.CONNECTION_ERROR);
      expect(conn.client).toBeNull();
    }
  });

  it("a closed port: lastErr -2", async () => {
    const ctx = await clientCtx();
    const conn = await Conn.connect(ctx, "127.0.0.1", String(await closedPort()));
    expect(conn.isOk()).toBe(false);
    expect(conn.lastErr).toBe(ConnackCode.UNABLE_TO_CONNECT);
    expect(conn.errorMsg).toMatch(/./);
  });

  it("a server that never answers: lastErr -3 after the connect timeout", async () => {
    const ctx = await clientCtx();
    const silent = await silentServer();
    const opts = new ConnOpts();
    opts.connectTimeoutMs = 300;
    const started = Date.now();
    const conn = await Conn.connect(ctx, "127.0.0.1", silent.port, null, false, 0, opts);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(conn.isOk()).toBe(false);
    expect(conn.lastErr).toBe(ConnackCode.CONNECT_TIMEOUT);
    expect(conn.errorMsg).toBeTruthy();
  });

  it("refused credentials: lastErr 4 (3.1.1) or 0x86 (5.0); right ones connect", async () => {
    const ctx = await clientCtx();
    const server = await authBroker();
    const bad = new ConnOpts();
    bad.setAuth("aspl", "wrong");
    const v4 = await Conn.connect(ctx, "127.0.0.1", server.port, "c-bad4", false, 0, bad);
    expect(v4.isOk()).toBe(false);
    expect(v4.lastErr).toBe(ConnackCode.BAD_USERNAME_OR_PASSWORD);
    expect(v4.errorMsg).toBeTruthy();

    const bad5 = new ConnOpts();
    bad5.setAuth("aspl", "wrong");
    bad5.setProtocolVersion(5);
    const v5 = await Conn.connect(ctx, "127.0.0.1", server.port, "c-bad5", false, 0, bad5);
    expect(v5.isOk()).toBe(false);
    expect(v5.lastErr).toBe(ReasonCode.BAD_USER_NAME_OR_PASSWORD);

    const good = new ConnOpts();
    good.setAuth("aspl", "test");
    const ok = await Conn.connect(ctx, "127.0.0.1", server.port, "c-good", false, 0, good);
    expect(ok.isOk()).toBe(true);
    expect(ok.lastErr).toBe(ConnackCode.ACCEPTED);
    expect(ok.errorMsg).toBeNull();
    expect(ok.status).toBe(ConnStatus.OK);
    expect(ok.username).toBe("aspl");
  });
});

/** A TCP server that reads the CONNECT and closes the connection without a CONNACK. */
async function closingServer(): Promise<{ port: number; connects: () => number }> {
  const sockets = new Set<Socket>();
  let connects = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("data", (d: Buffer) => {
      if (d[0] === 0x10) connects++;
      socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onCleanup(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { port: address.port, connects: () => connects };
}

/** A connector that fails as a system call would, with this message and code. */
function failingConnector(message: string, code: string): Connector {
  return async () => {
    throw Object.assign(new Error(message), { code });
  };
}

describe("Conn.lastErr: each local code, and the server's", () => {
  it("1 (REFUSED): the server closed the connection before any CONNACK (as MyQtt)", async () => {
    const ctx = await clientCtx();
    const server = await closingServer();
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "no-connack");
    expect(server.connects()).toBe(1);
    expect(conn.isOk()).toBe(false);
    expect(conn.lastErr).toBe(ConnackCode.REFUSED);
    expect(conn.errorMsg).toMatch(/before CONNACK/);
    expect(conn.status).toBe(ConnStatus.CONNECTION_ERROR);
  });

  it("-2 (UNABLE_TO_CONNECT) for a failed name lookup, whatever the host is called", async () => {
    // The host's name is in the error message: "within" or "timed out" in it is no timeout.
    const ctx = await clientCtx();
    for (const host of ["timed-out-within.example", "within.example"]) {
      const opts = new ConnOpts();
      opts.connector = failingConnector(`getaddrinfo ENOTFOUND ${host}`, "ENOTFOUND");
      const conn = await Conn.connect(ctx, host, 1883, "dns", false, 0, opts);
      expect(conn.isOk()).toBe(false);
      expect(conn.errorMsg).toContain(host);
      expect(conn.lastErr, host).toBe(ConnackCode.UNABLE_TO_CONNECT);
    }
  });

  it("-3 (CONNECT_TIMEOUT) for the connect timeout, and for the system's TCP connect timeout", async () => {
    const ctx = await clientCtx();
    const silent = await silentServer();
    const opts = new ConnOpts();
    opts.connectTimeoutMs = 200;
    const timedOut = await Conn.connect(ctx, "127.0.0.1", silent.port, "slow", false, 0, opts);
    expect(timedOut.lastErr).toBe(ConnackCode.CONNECT_TIMEOUT);

    const sys = new ConnOpts();
    sys.connector = failingConnector("connect ETIMEDOUT 10.0.0.1:1883", "ETIMEDOUT");
    const tcp = await Conn.connect(ctx, "10.0.0.1", 1883, "tcp-timeout", false, 0, sys);
    expect(tcp.isOk()).toBe(false);
    expect(tcp.lastErr).toBe(ConnackCode.CONNECT_TIMEOUT);
  });

  it("-4 (UNKNOWN_ERR) for a failure that is neither the network nor the server", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    // A keep alive MQTT cannot carry (16 bits).
    const badOption = await Conn.connect(ctx, "127.0.0.1", server.port, "ka", false, 70_000);
    expect(badOption.isOk()).toBe(false);
    expect(badOption.lastErr).toBe(ConnackCode.UNKNOWN_ERR);
    expect(badOption.errorMsg).toMatch(/keepAlive/);
    // An in-flight store that cannot be read.
    const opts = new ConnOpts();
    opts.inflightStore = {
      load: () => Promise.reject(new Error("disk on fire")),
      put: () => {},
      delete: () => {},
      clear: () => {},
    };
    const badStore = await Conn.connect(ctx, "127.0.0.1", server.port, "store", false, 0, opts);
    expect(badStore.lastErr).toBe(ConnackCode.UNKNOWN_ERR);
    expect(badStore.errorMsg).toMatch(/disk on fire/);
  });

  it("the server's CONNACK code: 2, 3, 5 (3.1.1) and 0x85, 0x87 (5.0)", async () => {
    const ctx = await clientCtx();
    const codes: Record<string, number> = {
      "id-2": ConnackCode.IDENTIFIER_REJECTED,
      "id-3": ConnackCode.SERVER_UNAVAILABLE,
      "id-5": ConnackCode.NOT_AUTHORIZED,
    };
    const server = await startBroker({}, (bctx) =>
      bctx.setOnConnect((_ctx, conn) => codes[conn.clientId] ?? ConnackCode.ACCEPTED),
    );
    for (const [id, code] of Object.entries(codes)) {
      const conn = await Conn.connect(ctx, "127.0.0.1", server.port, id);
      expect(conn.isOk()).toBe(false);
      expect(conn.lastErr, id).toBe(code);
      expect(conn.errorMsg).toBeTruthy();
    }
    // 5.0: the hook's 3.1.1 code is sent as its 5.0 reason code.
    const v5 = new ConnOpts();
    v5.setProtocolVersion(5);
    const refused = await Conn.connect(ctx, "127.0.0.1", server.port, "id-2", false, 0, v5);
    expect(refused.lastErr).toBe(ReasonCode.CLIENT_IDENTIFIER_NOT_VALID);
    const denied = await Conn.connect(ctx, "127.0.0.1", server.port, "id-5", false, 0, v5);
    expect(denied.lastErr).toBe(ReasonCode.NOT_AUTHORIZED);
  });
});

describe("ConnOpts.setProperties (MQTT 5.0 CONNECT properties)", () => {
  it("the properties reach the broker's on_connect, and setting them selects MQTT 5.0", async () => {
    const ctx = await clientCtx();
    const seen: { version: ProtocolVersion; properties: ConnectProperties }[] = [];
    const server = await startBroker({}, (bctx) =>
      bctx.setOnConnect((_ctx, conn) => {
        seen.push({ version: conn.protocolVersion, properties: conn.connectProperties });
        return ConnackCode.ACCEPTED;
      }),
    );
    const opts = new ConnOpts();
    expect(opts.protocolVersion).toBe(4);
    opts.setProperties({
      sessionExpiryInterval: 120,
      receiveMaximum: 7,
      userProperties: [["origin", "conn-test"]],
    });
    expect(opts.protocolVersion).toBe(5);
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, "with-props", false, 0, opts);
    expect(conn.isOk()).toBe(true);
    expect(conn.client?.options.protocolVersion).toBe(5);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.version).toBe(5);
    expect(seen[0]?.properties).toMatchObject({
      sessionExpiryInterval: 120,
      receiveMaximum: 7,
      userProperties: [["origin", "conn-test"]],
    });
    expect(await conn.sub("props/#", 1)).toEqual([true, 1]);
  });
});

describe("Conn attributes", () => {
  it("host, port, hostIp, localAddr, localPort, role, ctx, id, clientId", async () => {
    const ctx = await clientCtx();
    const seen: { clientId: string; clean: boolean; port: number }[] = [];
    const server = await startBroker({}, (bctx) =>
      bctx.setOnConnect((_ctx, conn) => {
        seen.push({ clientId: conn.clientId, clean: conn.cleanSession, port: conn.port });
        return 0;
      }),
    );
    const a = await Conn.connect(ctx, "127.0.0.1", String(server.port), "conn-attr", false);
    expect(a.isOk()).toBe(true);
    expect(a.host).toBe("127.0.0.1");
    expect(a.port).toBe(server.port);
    expect(a.hostIp).toBe("127.0.0.1");
    expect(a.localAddr).toBe("127.0.0.1");
    expect(a.localPort).toBe(seen[0]?.port);
    expect(a.role).toBe("initiator");
    expect(a.ctx).toBe(ctx);
    expect(a.clientId).toBe("conn-attr");
    expect(a.client).toBeInstanceOf(MqttClient);
    expect(seen[0]).toMatchObject({ clientId: "conn-attr", clean: false });

    // A null client id: one is generated, and the session is forced clean.
    const b = await Conn.connect(ctx, "127.0.0.1", server.port, null, false);
    expect(b.isOk()).toBe(true);
    expect(b.clientId).not.toBe("");
    expect(seen[1]).toMatchObject({ clientId: b.clientId, clean: true });
    expect(b.id).not.toBe(a.id);
  });

  it("password: the one sent (undefined without one)", async () => {
    const ctx = await clientCtx();
    const server = await authBroker();
    const opts = new ConnOpts();
    opts.setAuth("aspl", "test");
    const conn = await connected(ctx, server, "with-password", opts);
    expect(conn.username).toBe("aspl");
    expect(conn.password).toBe("test");
    const anonymous = await connected(ctx, server, "no-password");
    expect(anonymous.username).toBeUndefined();
    expect(anonymous.password).toBeUndefined();
  });

  it("serverName: the SNI name of the transport, kept after close; null on plain TCP", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    expect((await connected(ctx, server)).serverName).toBeNull();
    // A transport that names the server (what the TLS connector does with SNI).
    const opts = new ConnOpts();
    opts.connector = (host, port) =>
      new Promise((resolve, reject) => {
        const socket = netConnect(port, host, () => {
          socket.off("error", reject);
          socket.setNoDelay(true);
          resolve(new SocketTransport(socket, { serverName: "broker.example" }));
        });
        socket.once("error", reject);
      });
    const named = await connected(ctx, server, "named", opts);
    expect(named.serverName).toBe("broker.example");
    await named.close();
    expect(named.serverName).toBe("broker.example");
  });

  it("setData / getData keep per-connection values", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const value = { n: 1 };
    conn.setData("key", value);
    expect(conn.getData("key")).toBe(value);
    expect(conn.getData("other")).toBeUndefined();
    conn.setData("key", null);
    expect(conn.getData("key")).toBeUndefined();
  });
});

describe("Conn sub / unsub / pub / ping / getNext", () => {
  // Every call against our broker and Mosquitto, at 3.1.1 and 5.0: conn-servers.test.ts.
  it("getNext(timeoutMs) returns null on timeout, after about that many milliseconds", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const started = Date.now();
    expect(await conn.getNext(200)).toBeNull();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(180);
    expect(elapsed).toBeLessThan(1000);
  });

  it("getNext waits for a message that comes later", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const other = await connected(ctx, server);
    await conn.sub("later/#", 1);
    const waiting = conn.getNext(3000);
    await sleep(50);
    expect(await other.pub("later/1", "one", 1, false, 10)).toBe(true);
    expect((await waiting)?.content).toBe("one");
  });

  it("getNext(0) waits without limit: concurrent calls take messages in order; close gives null", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const other = await connected(ctx, server);
    await conn.sub("order/#", 1);
    const first = conn.getNext(0);
    const second = conn.getNext(0);
    await other.pub("order/1", "one", 1, false, 10);
    await other.pub("order/2", "two", 1, false, 10);
    expect((await first)?.content).toBe("one");
    expect((await second)?.content).toBe("two");
    const forever = conn.getNext(0);
    expect(await settledWithin(forever, 200)).toBe("pending");
    await conn.close();
    expect(await forever).toBeNull();
    // A closed connection answers at once.
    expect(await conn.getNext(0)).toBeNull();
  });

  it("sub refused by the server: [false, 0x80]; a lower grant is reported", async () => {
    const ctx = await clientCtx();
    const server = await startBroker({}, (bctx) =>
      bctx.setOnSubscribe((_ctx, _conn, filter, qos) =>
        filter === "forbidden" ? QOS_DENIED : filter === "downgraded" ? 0 : qos,
      ),
    );
    const conn = await connected(ctx, server);
    expect(await conn.sub("forbidden", 1, 10)).toEqual([false, 0x80]);
    expect(await conn.sub("downgraded", 2, 10)).toEqual([true, 0]);
    expect(await conn.sub("allowed", 1, 10)).toEqual([true, 1]);
    expect(conn.isOk()).toBe(true);
  });

  it("pub wait 0 returns at once; pub wait N is false when the server discards (no ack in N s)", async () => {
    const ctx = await clientCtx();
    const server = await startBroker({}, (bctx) =>
      bctx.setOnPublish((_ctx, _conn, msg) =>
        msg.topic === "discard/this/topic" ? PublishCode.DISCARD : PublishCode.OK,
      ),
    );
    const conn = await connected(ctx, server);
    // wait 0: handed over, done, whatever the server does.
    let started = Date.now();
    expect(await conn.pub("discard/this/topic", "x", 1, false, 0)).toBe(true);
    expect(Date.now() - started).toBeLessThan(200);
    // wait 1: nothing acknowledges it within 1 s, at QoS 1 and at QoS 2.
    started = Date.now();
    const [q1, q2, ok] = await Promise.all([
      conn.pub("discard/this/topic", "x", 1, false, 1),
      conn.pub("discard/this/topic", "x", 2, false, 1),
      conn.pub("kept/topic", "x", 2, false, 1),
    ]);
    const elapsed = Date.now() - started;
    expect([q1, q2, ok]).toEqual([false, false, true]);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(2500);
    // QoS 0 is done once sent.
    expect(await conn.pub("discard/this/topic", "x", 0, false, 1)).toBe(true);
    expect(conn.isOk()).toBe(true);
  });

  it("waits are in seconds: sub and unsub give up after N s; wait 0 does not wait", async () => {
    const ctx = await clientCtx();
    const server = await startBroker({}, (bctx) => {
      // The server answers SUBSCRIBE and UNSUBSCRIBE of slow/... after 1.5 s.
      bctx.setOnSubscribe(async (_ctx, _conn, filter, qos) => {
        if (filter.startsWith("slow/")) await sleep(1500);
        return qos;
      });
      bctx.setOnUnsubscribe(async (_ctx, _conn, filter) => {
        if (filter.startsWith("slow/")) await sleep(1500);
        return true;
      });
    });
    const a = await connected(ctx, server);
    const b = await connected(ctx, server);
    const c = await connected(ctx, server);
    const d = await connected(ctx, server);
    const timed = async <T>(p: Promise<T>): Promise<[T, number]> => {
      const started = Date.now();
      const value = await p;
      return [value, Date.now() - started];
    };
    const [[sub1, subMs], [unsub1, unsubMs], [sub0, sub0Ms], [unsub0, unsub0Ms]] =
      await Promise.all([
        timed(a.sub("slow/a", 1, 1)),
        timed(b.unsub("slow/b", 1)),
        timed(c.sub("slow/c", 1, 0)),
        timed(d.unsub("slow/d", 0)),
      ]);
    expect(sub1[0]).toBe(false);
    expect(subMs).toBeGreaterThanOrEqual(900);
    expect(subMs).toBeLessThan(1450);
    expect(unsub1).toBe(false);
    expect(unsubMs).toBeGreaterThanOrEqual(900);
    expect(unsubMs).toBeLessThan(1450);
    // wait 0: handed over, not waited for.
    expect(sub0).toEqual([true, 1]);
    expect(sub0Ms).toBeLessThan(300);
    expect(unsub0).toBe(true);
    expect(unsub0Ms).toBeLessThan(300);
  });

  it("ping(N) is false when no PINGRESP comes within N s; ping(0) does not wait", async () => {
    const ctx = await clientCtx();
    const mute = await muteServer();
    const conn = await Conn.connect(ctx, "127.0.0.1", mute.port, "pinger", true);
    expect(conn.isOk()).toBe(true);
    const started = Date.now();
    const waiting = conn.ping(1);
    // wait 0: the PINGREQ is sent, nothing is waited for.
    expect(await settledWithin(conn.ping(0), 500)).toEqual({ status: "fulfilled", value: true });
    expect(await waiting).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("5.0: a publish the server refuses makes pub return false", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const opts = new ConnOpts();
    opts.setProtocolVersion(5);
    const conn = await connected(ctx, server, "conn-v5", opts);
    expect(conn.client?.options.protocolVersion).toBe(5);
    expect(await conn.pub("$SYS/x", "no", 1, false, 10)).toBe(false);
    expect(await conn.pub("fine/x", "yes", 1, false, 10)).toBe(true);
  });
});

describe("Conn handlers", () => {
  it("setOnMsg(handler(ctx, conn, msg, data), data); null stops it", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const calls: [Ctx, Conn, string, string][] = [];
    conn.setOnMsg((hctx, hconn, msg, data) => calls.push([hctx, hconn, msg.content, data]), "ud");
    await conn.sub("h/#", 1);
    await conn.pub("h/1", "one", 1, false, 10);
    await until(() => calls.length === 1);
    expect(calls[0]?.[0]).toBe(ctx);
    expect(calls[0]?.[1]).toBe(conn);
    expect(calls[0]?.slice(2)).toEqual(["one", "ud"]);
    conn.setOnMsg(null);
    await conn.pub("h/2", "two", 1, false, 10);
    await sleep(100);
    expect(calls.length).toBe(1);
  });

  it("a handler that throws is logged; the connection and later messages are fine", async () => {
    const ctx = await clientCtx();
    const logged: string[] = [];
    ctx.setLogHandler((_ctx, _file, _line, _level, message) => logged.push(message));
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const got: string[] = [];
    conn.setOnMsg((_ctx, _conn, msg) => {
      got.push(msg.content);
      if (msg.content === "boom") throw new Error("handler exploded");
    });
    await conn.sub("t/#", 2);
    await conn.pub("t/1", "boom", 2, false, 10);
    await conn.pub("t/2", "fine", 2, false, 10);
    await until(() => got.length === 2);
    expect(got).toEqual(["boom", "fine"]);
    expect(conn.isOk()).toBe(true);
    expect(logged.some((line) => line.includes("handler exploded"))).toBe(true);
  });

  it("a message arriving while no handler is set is dropped", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    await conn.sub("drop/#", 1);
    expect(await conn.pub("drop/1", "nobody listens", 1, false, 10)).toBe(true);
    await sleep(100);
    const got: string[] = [];
    conn.setOnMsg((_ctx, _conn, msg) => got.push(msg.content));
    await conn.pub("drop/2", "handled", 1, false, 10);
    await until(() => got.length === 1);
    conn.setOnMsg(null);
    expect(got).toEqual(["handled"]);
    // Not kept for getNext either.
    expect(await conn.getNext(150)).toBeNull();
  });

  it("getNext takes a message before the on_msg handler", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const handled: string[] = [];
    conn.setOnMsg((_ctx, _conn, msg) => handled.push(msg.content));
    await conn.sub("gn/#", 1);
    const next = conn.getNext(2000);
    await conn.pub("gn/1", "to getNext", 1, false, 10);
    expect((await next)?.content).toBe("to getNext");
    await conn.pub("gn/2", "to handler", 1, false, 10);
    await until(() => handled.length === 1);
    expect(handled).toEqual(["to handler"]);
  });

  it("setOnClose returns a handle; removeOnClose removes that handler only", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const calls: string[] = [];
    const h1 = conn.setOnClose((c, data) => calls.push(`first ${data} ${c === conn}`), "a");
    const h2 = conn.setOnClose((c, data) => calls.push(`second ${data} ${c === conn}`), "b");
    expect(h1).not.toBe(h2);
    expect(conn.removeOnClose(h1)).toBe(true);
    expect(conn.removeOnClose(h1)).toBe(false);
    await conn.close();
    await until(() => calls.length > 0);
    await sleep(20);
    expect(calls).toEqual(["second b true"]);
  });

  it("setOnClose(handler, data, insertLast): false puts the handler first", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const order: string[] = [];
    conn.setOnClose((_c, data) => order.push(data), "a");
    conn.setOnClose((_c, data) => order.push(data), "b", false);
    conn.setOnClose((_c, data) => order.push(data), "c", true);
    const d = conn.setOnClose((_c, data) => order.push(data), "d", false);
    conn.setOnClose((_c, data) => order.push(data), "e");
    expect(conn.removeOnClose(d)).toBe(true);
    await conn.close();
    await until(() => order.length === 4);
    await sleep(20);
    expect(order).toEqual(["b", "a", "c", "e"]);
  });

  it("block() stops reading from the server; block(false) reads again; isBlocked() tells", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    const other = await connected(ctx, server);
    expect(await conn.sub("blk/#", 1)).toEqual([true, 1]);
    expect(conn.isBlocked()).toBe(false);
    conn.block();
    expect(conn.isBlocked()).toBe(true);
    const got: string[] = [];
    conn.setOnMsg((_ctx, _conn, msg) => got.push(msg.content));
    expect(await other.pub("blk/1", "one", 1, false, 10)).toBe(true);
    expect(await other.pub("blk/2", "two", 0, false, 10)).toBe(true);
    // Nothing read: no message, no PINGRESP.
    expect(await conn.ping(1)).toBe(false);
    expect(got).toEqual([]);
    expect(conn.isOk()).toBe(true);
    conn.block(false);
    expect(conn.isBlocked()).toBe(false);
    await until(() => got.length === 2, 3000, "the messages held while blocked");
    expect(got).toEqual(["one", "two"]);
    expect(await conn.ping(5)).toBe(true);
  });

  it("setOnClose fires when the server drops the connection", async () => {
    const ctx = await clientCtx();
    const server = await startBroker({}, (bctx) =>
      bctx.setOnPublish((_ctx, _conn, msg) =>
        msg.topic === "kick/me" ? PublishCode.CONN_CLOSE : PublishCode.OK,
      ),
    );
    const conn = await connected(ctx, server);
    const closed: number[] = [];
    conn.setOnClose((c) => closed.push(c.id));
    await conn.pub("kick/me", "bye", 0, false, 0);
    await until(() => closed.length === 1);
    expect(closed).toEqual([conn.id]);
    expect(conn.isOk()).toBe(false);
    expect(conn.status).toBe(ConnStatus.CONNECTION_ERROR);
    // Calls on a broken connection fail instead of hanging.
    expect(await conn.pub("x", "y", 1, false, 10)).toBe(false);
    expect(await conn.sub("x", 0, 10)).toEqual([false, -1]);
    expect(await conn.unsub("x", 10)).toBe(false);
    expect(await conn.ping(10)).toBe(false);
    expect(await conn.getNext(100)).toBeNull();
  });

  it("setOnReconnect: with setReconnect the same Conn comes back after the server drops it", async () => {
    const ctx = await clientCtx();
    const server = await startBroker({}, (bctx) =>
      bctx.setOnPublish((_ctx, _conn, msg) =>
        msg.topic === "kick/me" ? PublishCode.CONN_CLOSE : PublishCode.OK,
      ),
    );
    const opts = new ConnOpts();
    opts.setReconnect();
    const conn = await connected(ctx, server, null, opts);
    const clientId = conn.clientId;
    conn.setData("kept", "yes");
    await conn.sub("re/#", 1);
    const got: string[] = [];
    conn.setOnMsg((_ctx, _conn, msg) => got.push(msg.content));
    const reconnects: [Conn, string][] = [];
    conn.setOnReconnect((c, data) => reconnects.push([c, data]), "rd");
    await conn.pub("kick/me", "bye", 0, false, 0);
    await until(() => !conn.isOk(), 2000, "the drop");
    await until(() => reconnects.length === 1, 3000, "on_reconnect");
    expect(reconnects[0]?.[0]).toBe(conn);
    expect(reconnects[0]?.[1]).toBe("rd");
    expect(conn.isOk()).toBe(true);
    expect(conn.status).toBe(ConnStatus.OK);
    expect(conn.clientId).toBe(clientId);
    expect(conn.getData("kept")).toBe("yes");
    // Subscriptions are back and the handler still runs.
    expect(await conn.ping(10)).toBe(true);
    expect(await conn.pub("re/1", "after reconnect", 1, false, 10)).toBe(true);
    await until(() => got.includes("after reconnect"));
  });
});

describe("Conn close and shutdown", () => {
  it("close() sends DISCONNECT (no will); shutdown() drops the connection (the will fires)", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const watcher = await connected(ctx, server, "watcher");
    expect(await watcher.sub("will/#", 1)).toEqual([true, 1]);

    const closing = new ConnOpts();
    closing.setWill(1, "will/closed", "closed normally", false);
    const a = await connected(ctx, server, "closer", closing);
    const noWill = watcher.getNext(300);
    await a.close();
    expect(a.isOk()).toBe(false);
    expect(a.status).toBe(ConnStatus.CONNECTION_CLOSE_CALLED);
    expect(await noWill).toBeNull();

    const dying = new ConnOpts();
    dying.setWill(1, "will/shutdown", "dropped", false);
    const b = await connected(ctx, server, "dropper", dying);
    const nextWill = watcher.getNext(3000);
    b.shutdown();
    expect(b.status).toBe(ConnStatus.CONNECTION_FORCED_CLOSE);
    const will = await nextWill;
    expect(will?.topic).toBe("will/shutdown");
    expect(will?.content).toBe("dropped");
    expect(b.isOk()).toBe(false);
  });

  it("close() does not hang on publishes the server never acknowledges (wait 0, or timed out)", async () => {
    // MyQtt: with wait 0 the packet id and stored copy are released at once, and a pub that
    // timed out is over; close() waits only for acknowledgements still being waited for.
    const ctx = await clientCtx();
    const server = await startBroker({}, (bctx) =>
      bctx.setOnPublish((_ctx, _conn, msg) =>
        msg.topic === "discard/this/topic" ? PublishCode.DISCARD : PublishCode.OK,
      ),
    );
    const a = await connected(ctx, server);
    const b = await connected(ctx, server);
    expect(await a.pub("discard/this/topic", "x", 1, false, 0)).toBe(true);
    expect(await b.pub("discard/this/topic", "x", 1, false, 1)).toBe(false);
    const [closedA, closedB] = await Promise.all([
      settledWithin(a.close(), 1500),
      settledWithin(b.close(), 1500),
    ]);
    expect(closedA, "close after a wait-0 pub").not.toBe("pending");
    expect(closedB, "close after a timed-out pub").not.toBe("pending");
    expect(a.isOk()).toBe(false);
    expect(b.isOk()).toBe(false);
  });

  it("close() waits for the pub() calls still waiting for their acknowledgement", async () => {
    const ctx = await clientCtx();
    const seen: string[] = [];
    const server = await startBroker({}, (bctx) =>
      bctx.setOnPublish(async (_ctx, _conn, msg) => {
        await sleep(150);
        seen.push(msg.content);
        return PublishCode.OK;
      }),
    );
    const conn = await connected(ctx, server);
    const waiting = conn.pub("slow/1", "in flight", 1, false, 10);
    await sleep(10);
    await conn.close();
    expect(seen).toEqual(["in flight"]);
    expect(await waiting).toBe(true);
  });
});

describe("Msg fields", () => {
  it("id, type, topic, payload, content, size, qos, dup, retain, packetId, properties", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const publisher = await connected(ctx, server);
    const text = "ñandú — 鳥";
    expect(await publisher.pub("msg/retained", text, 1, true, 10)).toBe(true);
    const conn = await connected(ctx, server);
    // Retained messages follow the SUBACK at once: getNext waits before the subscribe.
    const next = conn.getNext(2000);
    expect(await conn.sub("msg/#", 2)).toEqual([true, 2]);
    const retained = await next;
    expect(retained).not.toBeNull();
    const m = retained as Msg;
    expect(m.type).toBe("PUBLISH");
    expect(m.topic).toBe("msg/retained");
    expect(m.content).toBe(text);
    expect(Buffer.from(m.payload).equals(Buffer.from(text))).toBe(true);
    expect(m.size).toBe(Buffer.byteLength(text));
    expect(m.size).not.toBe(text.length);
    expect(m.qos).toBe(1);
    expect(m.retain).toBe(true);
    expect(m.dup).toBe(false);
    expect(m.packetId).toBeGreaterThan(0);
    expect(m.properties).toEqual({});

    const nextLive = conn.getNext(2000);
    expect(await publisher.pub("msg/live", new Uint8Array([0, 255, 1]), 0, false, 10)).toBe(true);
    const live = (await nextLive) as Msg;
    expect(live.retain).toBe(false);
    expect(live.qos).toBe(0);
    expect(live.packetId).toBe(0);
    expect([...live.payload]).toEqual([0, 255, 1]);
    expect(live.size).toBe(3);
    expect(live.id).not.toBe(m.id);
    expect(Number.isInteger(live.id)).toBe(true);
  });

  it("5.0: properties of the message are on msg.properties", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const opts = new ConnOpts();
    opts.setProtocolVersion(5);
    const conn = await connected(ctx, server, "props-conn", opts);
    await conn.sub("p/#", 1);
    const sender = await client(server, { protocolVersion: 5 });
    const next = conn.getNext(2000);
    await sender.publish("p/1", "x", {
      qos: 1,
      properties: { contentType: "text/plain", userProperties: [["a", "b"]] },
    });
    const msg = await next;
    expect(msg?.properties.contentType).toBe("text/plain");
    expect(msg?.properties.userProperties).toEqual([["a", "b"]]);
  });
});

describe("publishing from inside a message handler (MyQtt test_17d)", () => {
  it("a handler replies with 21 KB at QoS 2 to the reply topic; the requester gets it byte-exact", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    // A text file of the size of message-test-17-d.txt (21,439 bytes).
    const content = Buffer.from(randomBytes(16_080).toString("base64").slice(0, 21_439));
    expect(content.length).toBe(21_439);
    const replyTopic = `my/product/reply/${randomBytes(8).toString("hex")}`;

    const test01 = await connected(ctx, server);
    const test02 = await connected(ctx, server);
    const test03 = await connected(ctx, server);
    expect(await test01.sub(replyTopic, 2, 10)).toEqual([true, 2]);
    expect(await test02.sub("get/my/products", 2, 10)).toEqual([true, 2]);
    const replied: boolean[] = [];
    test02.setOnMsg(async (_ctx, conn, msg) => {
      // The reply goes out from inside the handler, which waits for its QoS 2 flow.
      replied.push(await conn.pub(msg.content, content, 2, false, 10));
    });
    const next = test01.getNext(4000);
    expect(await test03.pub("get/my/products", replyTopic, 2, false, 10)).toBe(true);
    const reply = await next;
    expect(reply).not.toBeNull();
    expect(reply?.topic).toBe(replyTopic);
    expect(reply?.qos).toBe(2);
    expect(reply?.size).toBe(21_439);
    expect(Buffer.from(reply!.payload).equals(content)).toBe(true);
    await until(() => replied.length === 1);
    expect(replied).toEqual([true]);
  });
});

describe("a resumed session's queue, sent right behind the CONNACK", () => {
  /** Leaves `count` QoS 1 messages queued on the broker for persistent client `id`. */
  async function queueFor(server: TestServer, id: string, count: number): Promise<void> {
    const ctx = await clientCtx();
    const sub = await connected(ctx, server, id);
    expect((await sub.sub("resume/#", 1, 5))[0]).toBe(true);
    await sub.close();
    const pub = await connected(ctx, server, `${id}-pub`);
    for (let i = 0; i < count; i++)
      expect(await pub.pub(`resume/${i}`, `m${i}`, 1, false, 5)).toBe(true);
    await pub.close();
  }

  it("reaches the handler set right after connect, every message, in order", async () => {
    const server = await startBroker();
    await queueFor(server, "resume-conn", 5);
    const ctx = await clientCtx();
    const conn = await connected(ctx, server, "resume-conn");
    const got: string[] = [];
    conn.setOnMsg((_ctx, _conn, msg) => got.push(msg.content));
    await until(() => got.length === 5, 3000, "the queued messages");
    expect(got).toEqual(["m0", "m1", "m2", "m3", "m4"]);
  });

  it("reaches the context's handler (ctx.setOnMsg) when the connection has none", async () => {
    const server = await startBroker();
    await queueFor(server, "resume-ctx", 3);
    const ctx = await clientCtx();
    const got: string[] = [];
    ctx.setOnMsg((_ctx, conn, msg) => {
      expect(conn).toBeInstanceOf(Conn);
      got.push(msg.content);
    });
    await connected(ctx, server, "resume-ctx");
    await until(() => got.length === 3, 3000, "the queued messages");
    expect(got).toEqual(["m0", "m1", "m2"]);
  });
});

describe("Conn: what an audit of the MyQtt surface found", () => {
  it("sub with a QoS outside 0..2 says false and leaves the connection alone", async () => {
    const ctx = await clientCtx();
    const server = await startBroker();
    const conn = await connected(ctx, server);
    let closes = 0;
    conn.setOnClose(() => closes++, null);
    expect((await conn.sub("bad/qos", 3 as 0, 5))[0]).toBe(false);
    expect((await conn.sub("bad/qos", -1 as 0, 0))[0]).toBe(false);
    expect(await conn.unsub("bad/#/filter", 0)).toBe(false);
    expect(conn.isOk()).toBe(true);
    expect(closes).toBe(0);
    expect(await conn.sub("good/qos", 1, 5)).toEqual([true, 1]);
  });

  it("waits of -1 (forever) and of more than 24.8 days wait, instead of giving up after 1 ms", async () => {
    const ctx = await clientCtx();
    // Acknowledgements 100 ms late: a wait that gave up at once would say false.
    const server = await rawServer({
      onPacket(conn, packet) {
        const later = (p: Parameters<typeof conn.send>[0]) => setTimeout(() => conn.send(p), 100);
        if (packet.type === PacketType.PUBLISH && packet.qos === 1)
          later({ type: PacketType.PUBACK, packetId: packet.packetId! });
        else if (packet.type === PacketType.PINGREQ) later({ type: PacketType.PINGRESP });
      },
    });
    const conn = await Conn.connect(ctx, "127.0.0.1", server.port, null, true, 0);
    expect(await conn.pub("w/t", "x", 1, false, -1)).toBe(true);
    expect(await conn.pub("w/t", "x", 1, false, 3e6)).toBe(true);
    expect(await conn.ping(-1)).toBe(true);
    expect(await conn.ping(3e6)).toBe(true);
    setTimeout(
      () =>
        server.conns[0]!.send({
          type: PacketType.PUBLISH,
          topic: "w/in",
          payload: new TextEncoder().encode("late"),
          qos: 0,
          retain: false,
          dup: false,
        }),
      100,
    );
    expect((await conn.getNext(3e9))?.content).toBe("late");
  });

  it("two close() calls at once both settle", async () => {
    const ctx = await clientCtx();
    const conn = await connected(ctx, await startBroker());
    const both = Promise.all([conn.close(), conn.close()]).then(() => "closed");
    expect(await Promise.race([both, sleep(3000).then(() => "hung")])).toBe("closed");
  });

  it("a closed Conn is let go by its ctx: exit() does not reach it", async () => {
    const ctx = await clientCtx();
    const conn = await connected(ctx, await startBroker());
    await conn.close();
    expect(conn.status).toBe(ConnStatus.CONNECTION_CLOSE_CALLED);
    await ctx.exit();
    // Kept by the ctx, its exit hook ran shutdown() on it (and held it until then).
    expect(conn.status).toBe(ConnStatus.CONNECTION_CLOSE_CALLED);
  });

  it("an async handler that rejects is logged like one that throws, not left unhandled", async () => {
    const ctx = await clientCtx();
    const logs: string[] = [];
    ctx.setLogHandler((_c, _file, _line, _level, message) => logs.push(message));
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    onCleanup(() => process.off("unhandledRejection", onUnhandled));
    const server = await startBroker();
    const conn = await connected(ctx, server);
    conn.setOnMsg(async () => {
      throw new Error("async handler failed");
    }, null);
    expect(await conn.sub("async/h", 0, 5)).toEqual([true, 0]);
    expect(await conn.pub("async/h", "x", 0, false, 5)).toBe(true);
    await until(() => logs.some((l) => l.includes("async handler failed")), 3000, "the log line");
    await sleep(20);
    expect(unhandled).toEqual([]);
  });
});
