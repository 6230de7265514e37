// Every call of the MyQtt Conn against our broker and a real Mosquitto, at MQTT 3.1.1 and 5.0:
// sub, unsub, pub at QoS 0/1/2 (waiting and not), ping, getNext, setOnMsg, setOnClose /
// removeOnClose, setOnReconnect with setReconnect across a server restart, close() (flushes,
// then DISCONNECT: no will) and shutdown() (abrupt: the will fires). Mosquitto is started by the
// test (and fails it when missing: never skipped).
import type { ProtocolVersion, QoS } from "@myqtt/codec";
import type { Ctx } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { startMosquittoOn } from "../../../tooling/services/mosquitto.mjs";
import { Conn, ConnOpts, ConnStatus } from "../src/index.js";
import { clientCtx } from "./api-helpers.js";
import { onCleanup, sleep, until } from "./helpers.js";
import { brokerAt, freePort } from "./resilience-helpers.js";

/** A server on a fixed port that the test can stop and start again. */
interface RestartableServer {
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function ourBroker(): Promise<RestartableServer> {
  const port = await freePort();
  let broker = await brokerAt(port);
  return {
    port,
    stop: () => broker.ctx.exit(),
    start: async () => {
      broker = await brokerAt(port);
    },
  };
}

async function mosquittoServer(): Promise<RestartableServer> {
  const port = await freePort();
  const run = async () => {
    const m = await startMosquittoOn(port);
    onCleanup(() => m.stop());
    return m;
  };
  let mosquitto = await run();
  return {
    port,
    // SIGTERM: Mosquitto closes its clients' connections and exits.
    stop: () => mosquitto.stop(),
    start: async () => {
      mosquitto = await run();
    },
  };
}

const SERVERS = [
  ["our broker", ourBroker],
  ["Mosquitto", mosquittoServer],
] as const;

let ids = 0;

describe.each(SERVERS)("Conn against %s", (name, startServer) => {
  describe.each([4, 5] as const)("MQTT level %i", (version: ProtocolVersion) => {
    /** A unique client id for this server and level. */
    const idFor = (what: string): string =>
      `${name === "Mosquitto" ? "mq" : "our"}-${version}-${what}-${++ids}`;

    async function open(
      ctx: Ctx,
      server: RestartableServer,
      what: string,
      setup?: (opts: ConnOpts) => void,
    ): Promise<Conn> {
      const opts = new ConnOpts();
      opts.setProtocolVersion(version);
      setup?.(opts);
      const conn = await Conn.connect(ctx, "127.0.0.1", server.port, idFor(what), true, 0, opts);
      if (!conn.isOk()) throw new Error(`connect failed: ${conn.errorMsg}`);
      expect(conn.client?.options.protocolVersion).toBe(version);
      return conn;
    }

    it("sub, pub at QoS 0/1/2 (wait N and wait 0), getNext, ping, unsub", async () => {
      const ctx = await clientCtx();
      const server = await startServer();
      const conn = await open(ctx, server, "calls");
      expect(await conn.sub("m/#", 2, 10)).toEqual([true, 2]);
      for (const qos of [0, 1, 2] as QoS[]) {
        for (const wait of [10, 0]) {
          const topic = `m/${qos}/${wait}`;
          const next = conn.getNext(3000);
          expect(await conn.pub(topic, `q${qos} w${wait}`, qos, false, wait), topic).toBe(true);
          const msg = await next;
          expect(msg?.topic).toBe(topic);
          expect(msg?.content).toBe(`q${qos} w${wait}`);
          expect(msg?.qos).toBe(qos);
        }
      }
      // sub with a wait of 0: sent, not waited for; then a lower QoS is granted as asked.
      expect(await conn.sub("n/#", 1, 0)).toEqual([true, 1]);
      expect(await conn.ping(10)).toBe(true);
      expect(await conn.ping(0)).toBe(true);
      const onN = conn.getNext(3000);
      expect(await conn.pub("n/1", "one", 2, false, 10)).toBe(true);
      expect((await onN)?.qos).toBe(1); // downgraded to the subscription's QoS
      expect(await conn.unsub("m/#", 10)).toBe(true);
      expect(await conn.unsub("n/#", 0)).toBe(true);
      await sleep(50); // the UNSUBSCRIBE not waited for reaches the server first
      const none = conn.getNext(300);
      expect(await conn.pub("m/after", "unsubscribed", 1, false, 10)).toBe(true);
      expect(await conn.pub("n/after", "unsubscribed", 1, false, 10)).toBe(true);
      expect(await none).toBeNull();
      expect(conn.isOk()).toBe(true);
      await conn.close();
    });

    it("setOnMsg(handler(ctx, conn, msg, data), data); another Conn publishes; null stops it", async () => {
      const ctx = await clientCtx();
      const server = await startServer();
      const conn = await open(ctx, server, "onmsg-sub");
      const other = await open(ctx, server, "onmsg-pub");
      const calls: [boolean, boolean, string, number, string][] = [];
      conn.setOnMsg(
        (hctx, hconn, msg, data) =>
          calls.push([hctx === ctx, hconn === conn, msg.topic, msg.qos, data]),
        "ud",
      );
      expect(await conn.sub("h/#", 2)).toEqual([true, 2]);
      for (const qos of [0, 1, 2] as QoS[])
        expect(await other.pub(`h/${qos}`, "x", qos, false, 10)).toBe(true);
      await until(() => calls.length === 3, 3000, "three messages");
      expect(calls.sort((a, b) => a[3] - b[3])).toEqual([
        [true, true, "h/0", 0, "ud"],
        [true, true, "h/1", 1, "ud"],
        [true, true, "h/2", 2, "ud"],
      ]);
      conn.setOnMsg(null);
      const viaNext = conn.getNext(3000);
      expect(await other.pub("h/3", "to getNext", 1, false, 10)).toBe(true);
      expect((await viaNext)?.content).toBe("to getNext");
      expect(calls.length).toBe(3);
    });

    it("setOnClose / removeOnClose: the server drops the connection (its id taken over); close() too", async () => {
      const ctx = await clientCtx();
      const server = await startServer();
      const id = idFor("takeover");
      const opts = new ConnOpts();
      opts.setProtocolVersion(version);
      const first = await Conn.connect(ctx, "127.0.0.1", server.port, id, true, 0, opts);
      expect(first.isOk()).toBe(true);
      const calls: string[] = [];
      first.setOnClose((c, data) => calls.push(`${data} ${c === first}`), "kept");
      const removed = first.setOnClose(() => calls.push("removed"), "x");
      expect(first.removeOnClose(removed)).toBe(true);
      // Same client id: the server closes the first connection [MQTT-3.1.4-3].
      const second = await Conn.connect(ctx, "127.0.0.1", server.port, id, true, 0, opts);
      expect(second.isOk()).toBe(true);
      await until(() => calls.length === 1, 3000, "on_close of the dropped connection");
      await sleep(20);
      expect(calls).toEqual(["kept true"]);
      expect(first.isOk()).toBe(false);
      expect(first.status).toBe(ConnStatus.CONNECTION_ERROR);
      expect(await first.pub("x", "y", 1, false, 10)).toBe(false);

      const closed: number[] = [];
      second.setOnClose((c) => closed.push(c.id));
      await second.close();
      await until(() => closed.length === 1, 3000, "on_close after close()");
      expect(closed).toEqual([second.id]);
      expect(second.status).toBe(ConnStatus.CONNECTION_CLOSE_CALLED);
    });

    it("setOnReconnect with setReconnect: the server restarts; on_close, then on_reconnect; the subscription is back", async () => {
      const ctx = await clientCtx();
      const server = await startServer();
      const conn = await open(ctx, server, "restart", (opts) => opts.setReconnect());
      const id = conn.clientId;
      conn.setData("kept", 1);
      expect(await conn.sub("r/#", 1)).toEqual([true, 1]);
      const events: string[] = [];
      conn.setOnClose((c) => events.push(`close ${c === conn}`));
      conn.setOnReconnect((c, data) => events.push(`reconnect ${c === conn} ${data}`), "rd");
      await server.stop();
      await until(() => events.length === 1, 5000, "on_close when the server went away");
      expect(conn.isOk()).toBe(false);
      await server.start();
      const restarted = Date.now();
      await until(() => events.length === 2, 5000, "on_reconnect");
      // MyQtt's cadence: an attempt every second.
      expect(Date.now() - restarted).toBeLessThan(2500);
      expect(events).toEqual(["close true", "reconnect true rd"]);
      expect(conn.isOk()).toBe(true);
      expect(conn.status).toBe(ConnStatus.OK);
      expect(conn.clientId).toBe(id);
      expect(conn.getData("kept")).toBe(1);
      // The restarted server kept no session: the client subscribed again.
      const next = conn.getNext(3000);
      expect(await conn.pub("r/1", "after restart", 1, false, 10)).toBe(true);
      expect((await next)?.content).toBe("after restart");
      await conn.close();
      expect(events.at(-1)).toBe("close true");
    });

    it("close() flushes what was published, then DISCONNECT: no will; shutdown(): the will fires", async () => {
      const ctx = await clientCtx();
      const server = await startServer();
      const watcher = await open(ctx, server, "watcher");
      expect(await watcher.sub("will/#", 1)).toEqual([true, 1]);
      expect(await watcher.sub("flush/#", 1)).toEqual([true, 1]);
      const got: string[] = [];
      watcher.setOnMsg((_ctx, _conn, msg) => got.push(`${msg.topic} ${msg.content}`));

      const closer = await open(ctx, server, "closer", (opts) =>
        opts.setWill(1, "will/closer", "closer died", false),
      );
      // Nobody waits for these: close() sends them before the DISCONNECT.
      expect(await closer.pub("flush/0", "qos 0", 0, false, 0)).toBe(true);
      expect(await closer.pub("flush/1", "qos 1", 1, false, 0)).toBe(true);
      expect(await closer.pub("flush/2", "qos 2", 2, false, 0)).toBe(true);
      await closer.close();
      expect(closer.isOk()).toBe(false);
      expect(closer.status).toBe(ConnStatus.CONNECTION_CLOSE_CALLED);
      await until(() => got.length >= 3, 3000, "the flushed messages");
      await sleep(300); // a will would have come by now
      expect(got.sort()).toEqual(["flush/0 qos 0", "flush/1 qos 1", "flush/2 qos 2"]);

      const dropper = await open(ctx, server, "dropper", (opts) =>
        opts.setWill(1, "will/dropper", "dropper died", false),
      );
      dropper.shutdown();
      expect(dropper.status).toBe(ConnStatus.CONNECTION_FORCED_CLOSE);
      await until(() => got.length === 4, 3000, "the will");
      expect(got[3]).toBe("will/dropper dropper died");
      expect(dropper.isOk()).toBe(false);
    });
  });
});
