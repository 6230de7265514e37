// Keep alive: the client pings a connection idle in either direction and drops a dead one, on
// real and fake clocks.
import { PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { ConnectionClosedError, connect, type MqttClient, TimeoutError } from "../src/index.js";
import { recordingProxy, SERVERS } from "./api-helpers.js";
import { onCleanup, sleep } from "./helpers.js";
import { FakeTimers, type RawServer, rawServer, until } from "./resilience-helpers.js";

/**
 * A raw server that answers PINGREQ with PINGRESP, and a QoS 1 PUBLISH with PUBACK, when
 * `answer()` says so.
 */
async function pingServer(answer: () => boolean = () => true, serverKeepAlive?: number) {
  return rawServer({
    ...(serverKeepAlive !== undefined
      ? { connack: () => ({ properties: { serverKeepAlive } }) }
      : {}),
    onPacket: (conn, p) => {
      if (!answer()) return;
      if (p.type === PacketType.PINGREQ) conn.send({ type: PacketType.PINGRESP });
      if (p.type === PacketType.PUBLISH && p.qos === 1)
        conn.send({ type: PacketType.PUBACK, packetId: p.packetId! });
    },
  });
}

/** Two PINGREQs, the first about a second after `connectedAt`, the second a second later. */
function expectTwoPingsASecondApart(pings: number[], connectedAt: number): void {
  expect(pings.length).toBe(2);
  expect(pings[0]! - connectedAt).toBeGreaterThanOrEqual(900);
  expect(pings[0]! - connectedAt).toBeLessThan(1400);
  expect(pings[1]! - pings[0]!).toBeGreaterThanOrEqual(900);
  expect(pings[1]! - pings[0]!).toBeLessThan(1400);
}

function pingTimes(server: RawServer, connIndex = 0): number[] {
  const conn = server.conns[connIndex]!;
  return conn.packets.flatMap((p, i) => (p.type === PacketType.PINGREQ ? [conn.times[i]!] : []));
}

function track(c: MqttClient) {
  const events: Array<[string, number, unknown]> = [];
  const start = Date.now();
  c.on("offline", (e) => events.push(["offline", Date.now() - start, e]));
  c.on("reconnect", () => events.push(["reconnect", Date.now() - start, null]));
  c.on("close", () => events.push(["close", Date.now() - start, null]));
  c.on("error", () => {});
  return events;
}

describe("keep alive on the real clock (keepAlive 1 s)", () => {
  it("sends PINGREQ about every second while idle and stays connected", async () => {
    const server = await pingServer();
    const c = await connect(server.url, { keepAlive: 1, reconnect: false });
    onCleanup(() => c.destroy());
    const connectedAt = server.conns[0]!.times[0]!;
    await sleep(2500);
    const pings = pingTimes(server);
    expectTwoPingsASecondApart(pings, connectedAt);
    expect(c.connected).toBe(true);
    expect(server.conns.length).toBe(1);
    expect(server.conns[0]!.closed).toBe(false);
  });

  it("sends no PINGREQ while packets keep going both ways", async () => {
    const server = await pingServer();
    const c = await connect(server.url, { keepAlive: 1, reconnect: false });
    onCleanup(() => c.destroy());
    for (let i = 0; i < 8; i++) {
      await sleep(250);
      await c.publish("busy", String(i), { qos: 1 }); // the server answers with PUBACK
    }
    await until(() => server.received(PacketType.PUBLISH).length === 8, 1000, "8 PUBLISH");
    expect(pingTimes(server)).toEqual([]);
    expect(c.connected).toBe(true);
  });

  it("a client that only sends (QoS 0) pings once per keepAlive of server silence, no more", async () => {
    const server = await pingServer();
    const c = await connect(server.url, { keepAlive: 1, reconnect: false });
    onCleanup(() => c.destroy());
    const connectedAt = server.conns[0]!.times[0]!;
    for (let i = 0; i < 10; i++) {
      await sleep(250);
      await c.publish("busy", String(i));
    }
    // Nothing comes back for QoS 0: only the PINGRESP tells the server is there.
    const pings = pingTimes(server);
    expectTwoPingsASecondApart(pings, connectedAt);
    expect(c.connected).toBe(true);
  });

  it("detects a dead server (CONNACK, then silence) within about 2 × keepAlive and closes", async () => {
    const server = await pingServer(() => false);
    const c = await connect(server.url, { keepAlive: 1, reconnect: false });
    const events = track(c);
    onCleanup(() => c.destroy());
    // A QoS 1 publish the server never acknowledges: its caller hears of the loss.
    const pending = c.publish("t", "x", { qos: 1 }).catch((e: unknown) => e);
    await until(() => events.some(([e]) => e === "close"), 4000, "close");
    const closeAt = events.find(([e]) => e === "close")![1];
    expect(closeAt).toBeGreaterThanOrEqual(1800);
    expect(closeAt).toBeLessThan(2800);
    expect(events.map(([e]) => e)).toEqual(["close"]);
    expect(c.state).toBe("closed");
    await until(() => server.conns[0]!.closed, 1000, "the server to see the socket closed");
    expect(await pending).toBeInstanceOf(ConnectionClosedError);
  });

  it("detects a dead server and goes offline, then reconnects (reconnect on)", async () => {
    const server = await pingServer(() => false);
    const c = await connect(server.url, {
      keepAlive: 1,
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    const events = track(c);
    onCleanup(() => c.destroy());
    await until(() => events.some(([e]) => e === "offline"), 4000, "offline");
    const [, offlineAt, error] = events.find(([e]) => e === "offline")!;
    expect(offlineAt).toBeGreaterThanOrEqual(1800);
    expect(offlineAt).toBeLessThan(2800);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(pingTimes(server).length).toBe(1);
    await until(() => events.some(([e]) => e === "reconnect"), 2000, "reconnect");
    expect(server.conns.length).toBe(2);
    expect(server.conns[0]!.closed).toBe(true);
    expect(c.connected).toBe(true);
  });
});

describe.each(SERVERS)(
  "keep alive: a server gone silent behind a relay (%s, keepAlive 1 s)",
  (_name, start) => {
    it.each([4, 5] as const)(
      "MQTT level %i: a client that keeps sending QoS 0 declares the connection dead within 2 × keepAlive",
      async (protocolVersion) => {
        const server = await start();
        const proxy = await recordingProxy(server.port!);
        const c = await connect(proxy.url, {
          protocolVersion,
          keepAlive: 1,
          reconnect: { initialDelayMs: 60_000 },
        });
        onCleanup(() => c.destroy());
        c.on("error", () => {});
        let offline: { at: number; error: unknown } | null = null;
        c.once("offline", (error) => {
          offline = { at: Date.now(), error };
        });
        let sending = true;
        const sender = (async () => {
          for (let i = 0; sending; i++) {
            await c.publish("ka/out", String(i)).catch(() => {});
            await sleep(50);
          }
        })();
        await sleep(1200); // alive: a PINGREQ went, its PINGRESP came back
        expect(c.connected).toBe(true);
        const silentAt = Date.now();
        proxy.silence();
        await until(() => offline !== null, 3000, "offline");
        sending = false;
        await sender;
        const { at, error } = offline as unknown as { at: number; error: unknown };
        // The last packet received came at or before the silence: dead at most 2 × keepAlive later.
        expect(at - silentAt).toBeLessThanOrEqual(2300);
        expect(error).toBeInstanceOf(TimeoutError);
      },
    );
  },
);

describe("keep alive on a fake clock", () => {
  async function setup(options: {
    keepAlive: number;
    answer?: () => boolean;
    serverKeepAlive?: number;
    v5?: boolean;
  }) {
    const server = await pingServer(options.answer, options.serverKeepAlive);
    const timers = new FakeTimers();
    const c = await connect(server.url, {
      keepAlive: options.keepAlive,
      protocolVersion: options.v5 ? 5 : 4,
      reconnect: { initialDelayMs: 5000, jitter: 0 },
      timers,
    });
    onCleanup(() => c.destroy());
    const events = track(c);
    const pings = (): number => pingTimes(server, 0).length;
    /** Moves the fake clock, then lets real I/O settle. */
    const advance = async (ms: number): Promise<void> => {
      timers.advance(ms);
      await sleep(30);
    };
    return { server, timers, c, events, pings, advance };
  }

  it("pings exactly when the connection has been idle for keepAlive", async () => {
    const t = await setup({ keepAlive: 1 });
    await t.advance(999);
    expect(t.pings()).toBe(0);
    await t.advance(1);
    await until(() => t.pings() === 1, 1000, "first PINGREQ");
    for (let n = 2; n <= 5; n++) {
      await t.advance(999);
      expect(t.pings()).toBe(n - 1);
      await t.advance(1);
      await until(() => t.pings() === n, 1000, `PINGREQ ${n}`);
    }
    expect(t.c.connected).toBe(true);
    expect(t.events).toEqual([]);
  });

  it("a packet exchanged meanwhile pushes the ping back", async () => {
    const t = await setup({ keepAlive: 1 });
    await t.advance(600);
    await t.c.publish("t", "x", { qos: 1 }); // sent, and PUBACK received, at 600
    await t.advance(400); // idle only 400 ms
    expect(t.pings()).toBe(0);
    await t.advance(599);
    expect(t.pings()).toBe(0);
    await t.advance(1); // idle 1000 ms
    await until(() => t.pings() === 1, 1000, "PINGREQ");
  });

  it("a client that keeps sending to a server gone silent pings one keepAlive after the last answer, and declares it dead one keepAlive later", async () => {
    let answer = true;
    const t = await setup({ keepAlive: 1, answer: () => answer });
    await t.c.publish("t", "x", { qos: 1 }); // answered (PUBACK) at 0
    answer = false;
    /** Sends QoS 0 every 100 ms for `ms` (nothing ever idle on the client's side). */
    const busy = async (ms: number): Promise<void> => {
      for (let left = ms; left > 0; left -= 100) {
        await t.c.publish("t", "q");
        await t.advance(100);
      }
    };
    await busy(900);
    expect(t.pings()).toBe(0);
    await busy(100); // 1000 ms without a packet from the server
    await until(() => t.pings() === 1, 1000, "PINGREQ");
    await busy(900);
    expect(t.c.connected).toBe(true);
    expect(t.events).toEqual([]);
    await busy(100); // 1000 ms after the unanswered PINGREQ
    await until(() => t.events.length > 0, 1000, "offline");
    expect(t.events.map(([e]) => e)).toEqual(["offline"]);
    expect(t.events[0]![2]).toBeInstanceOf(TimeoutError);
    expect(t.pings()).toBe(1);
  });

  it("while reading is paused for a slow reader, silence is not held against the server", async () => {
    // A raw server: SUBACK, then 20 QoS 0 messages; it answers PINGREQ only when told.
    let answer = false;
    const server = await rawServer({
      onPacket: (conn, p) => {
        if (p.type === PacketType.PINGREQ && answer) conn.send({ type: PacketType.PINGRESP });
        if (p.type !== PacketType.SUBSCRIBE) return;
        conn.send({ type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: [0] });
        for (let n = 1; n <= 20; n++)
          conn.send({
            type: PacketType.PUBLISH,
            topic: "ka/t",
            payload: Buffer.from(String(n)),
            qos: 0,
            retain: false,
            dup: false,
          });
      },
    });
    const timers = new FakeTimers();
    const c = await connect(server.url, {
      keepAlive: 1,
      reconnect: false,
      subscriptionBuffer: 10,
      timers,
    });
    onCleanup(() => c.destroy());
    const events = track(c);
    const sub = await c.subscribe("ka/#");
    await until(() => sub.buffered === 10, 1000, "a full buffer: reading paused");
    // The reader stalls for 10 keepAlive periods: PINGREQs go out (the server needs them) but
    // their PINGRESP cannot be read yet: nobody is declared dead.
    for (let i = 0; i < 10; i++) {
      timers.advance(1000);
      await sleep(10);
    }
    expect(server.received(PacketType.PINGREQ).length).toBeGreaterThan(0);
    expect(events).toEqual([]);
    expect(c.connected).toBe(true);
    // The reader catches up; from then on silence counts again.
    answer = true;
    for (let n = 0; n < 20; n++) await sub.next();
    const before = server.received(PacketType.PINGREQ).length;
    timers.advance(1000);
    await until(() => server.received(PacketType.PINGREQ).length > before, 1000, "PINGREQ");
    timers.advance(999);
    await sleep(30);
    expect(c.connected).toBe(true);
    expect(events).toEqual([]);
  });

  it("declares the server dead exactly one keepAlive after an unanswered PINGREQ", async () => {
    const t = await setup({ keepAlive: 1, answer: () => false });
    await t.advance(1000);
    await until(() => t.pings() === 1, 1000, "PINGREQ");
    await t.advance(999);
    expect(t.c.connected).toBe(true);
    expect(t.events).toEqual([]);
    await t.advance(1);
    await until(() => t.events.length > 0, 1000, "offline");
    expect(t.events.map(([e]) => e)).toEqual(["offline"]);
    expect(t.events[0]![2]).toBeInstanceOf(TimeoutError);
    expect(t.c.state).toBe("reconnecting");
    await until(() => t.server.conns[0]!.closed, 1000, "the socket closed");
    // The next attempt is left to the reconnect schedule.
    expect(t.timers.pending).toContain(5000);
  });

  it("closes instead when reconnect is off", async () => {
    const server = await pingServer(() => false);
    const timers = new FakeTimers();
    const c = await connect(server.url, { keepAlive: 2, reconnect: false, timers });
    onCleanup(() => c.destroy());
    const events = track(c);
    timers.advance(2000);
    await until(() => server.received(PacketType.PINGREQ).length === 1, 1000, "PINGREQ");
    timers.advance(1999);
    await sleep(30);
    expect(c.connected).toBe(true);
    timers.advance(1);
    await until(() => c.state === "closed", 1000, "close");
    expect(events.map(([e]) => e)).toEqual(["close"]);
  });

  it("uses the Server Keep Alive of a 5.0 CONNACK instead of its own [MQTT-3.2.2-21]", async () => {
    const t = await setup({ keepAlive: 60, serverKeepAlive: 2, v5: true });
    expect(t.server.conns[0]!.connect!.keepAlive).toBe(60);
    await t.advance(1999);
    expect(t.pings()).toBe(0);
    await t.advance(1);
    await until(() => t.pings() === 1, 1000, "PINGREQ after the server's 2 s");
  });

  it("keepAlive 0 turns keep alive off: no PINGREQ, no timeout", async () => {
    const t = await setup({ keepAlive: 0, answer: () => false });
    for (let i = 0; i < 10; i++) await t.advance(60_000);
    expect(t.pings()).toBe(0);
    expect(t.c.connected).toBe(true);
    expect(t.events).toEqual([]);
  });

  it("starts again on the new connection after a reconnect", async () => {
    let answer = false;
    const t = await setup({ keepAlive: 1, answer: () => answer });
    await t.advance(1000);
    await t.advance(1000);
    await until(() => t.c.state === "reconnecting", 1000, "offline");
    answer = true;
    await t.advance(5000);
    await until(() => t.c.connected, 1000, "reconnect");
    expect(t.server.conns.length).toBe(2);
    const second = (): number => pingTimes(t.server, 1).length;
    await t.advance(999);
    expect(second()).toBe(0);
    await t.advance(1);
    await until(() => second() === 1, 1000, "PINGREQ on the new connection");
    await t.advance(1000);
    await until(() => second() === 2, 1000, "second PINGREQ on the new connection");
    expect(t.c.connected).toBe(true);
  });
});
