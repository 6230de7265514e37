// Reconnect on real sockets: the same client object comes back, its subscriptions keep
// delivering, and what was in flight is resent (DUP, same packet id) within the server's window.
import { type Packet, PacketType, type PublishPacket } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { connect } from "../src/index.js";
import { client, onCleanup, sleep } from "./helpers.js";
import {
  FAST,
  freePort,
  nextContent,
  observedBroker,
  type RawConn,
  rawServer,
  track,
  until,
} from "./resilience-helpers.js";

describe("reconnect to our broker", () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`v${protocolVersion}: clean session — the same client reconnects, resubscribes, and the same Subscription keeps delivering`, async () => {
      const b = await observedBroker();
      const sub = await client(b.server, {
        clientId: `rc-clean-${protocolVersion}`,
        protocolVersion,
        reconnect: FAST,
      });
      const events = track(sub);
      const pub = await client(b.server, { protocolVersion });
      const subscription = await sub.subscribe("rc/#", { qos: 1 });
      await pub.publish("rc/1", "before", { qos: 1 });
      expect(await nextContent(subscription)).toBe("before");

      b.connOf(sub.clientId).shutdown();
      await until(() => events.includes("reconnect"), 3000, "reconnect");
      expect(events).toEqual(["offline", "connect", "reconnect"]);
      expect(sub.state).toBe("connected");
      // Resubscribed by itself: the server saw a second SUBSCRIBE for the filter.
      await until(() => b.subscribes.length === 2, 2000, "the resubscription");
      expect(b.subscribes).toEqual([`${sub.clientId} rc/#`, `${sub.clientId} rc/#`]);
      for (let i = 0; i < 5; i++) await pub.publish(`rc/${i}`, `after ${i}`, { qos: 1 });
      for (let i = 0; i < 5; i++) expect(await nextContent(subscription)).toBe(`after ${i}`);
      expect(subscription.active).toBe(true);
    });

    it(`v${protocolVersion}: persistent session — not resubscribed, and what was published meanwhile is still delivered`, async () => {
      const b = await observedBroker();
      const id = `rc-persist-${protocolVersion}`;
      const sub = await client(b.server, {
        clientId: id,
        clean: false,
        protocolVersion,
        reconnect: FAST,
        ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}),
      });
      const events = track(sub);
      const pub = await client(b.server, { protocolVersion });
      const subscription = await sub.subscribe("ps/#", { qos: 1 });
      let sessionPresent: boolean | null = null;
      sub.on("reconnect", (connack) => {
        sessionPresent = connack.sessionPresent;
      });

      b.refuse.add(id); // keep it away while messages are published
      b.connOf(id).shutdown();
      await until(() => events.includes("offline"), 3000, "offline");
      for (let i = 0; i < 3; i++) await pub.publish(`ps/${i}`, `meanwhile ${i}`, { qos: 1 });
      b.refuse.delete(id);
      await until(() => events.includes("reconnect"), 3000, "reconnect");
      expect(sessionPresent).toBe(true);
      for (let i = 0; i < 3; i++) expect(await nextContent(subscription)).toBe(`meanwhile ${i}`);
      await pub.publish("ps/x", "after", { qos: 1 });
      expect(await nextContent(subscription)).toBe("after");
      // The session kept the subscription: no second SUBSCRIBE.
      expect(b.subscribes).toEqual([`${id} ps/#`]);
    });
  }

  it("comes back to a broker restarted on the same port and resubscribes there", async () => {
    const port = await freePort();
    const first = await observedBroker(port);
    const sub = await connect(first.server.url, { reconnect: FAST });
    onCleanup(() => sub.destroy());
    const events = track(sub);
    const subscription = await sub.subscribe("restart/#", { qos: 1 });

    await first.server.ctx.exit();
    await until(() => events.includes("offline"), 3000, "offline");
    await sleep(300); // a few failed attempts while nothing listens
    expect(sub.state).toBe("reconnecting");

    const second = await observedBroker(port);
    await until(() => events.includes("reconnect"), 3000, "reconnect");
    await until(() => second.subscribes.length === 1, 2000, "the resubscription");
    const pub = await client(second.server);
    await pub.publish("restart/a", "on the new broker", { qos: 1 });
    expect(await nextContent(subscription)).toBe("on the new broker");
  });

  it("a 5.0 DISCONNECT from the server: 'disconnect', then 'offline', then back", async () => {
    const b = await observedBroker();
    const sub = await client(b.server, { protocolVersion: 5, reconnect: FAST });
    const events = track(sub);
    const subscription = await sub.subscribe("dc/#", { qos: 1 });
    b.connOf(sub.clientId).close(0x8b);
    await until(() => events.includes("reconnect"), 3000, "reconnect");
    expect(events).toEqual(["disconnect:0x8b", "offline", "connect", "reconnect"]);
    await until(() => b.subscribes.length === 2, 2000, "the resubscription");
    const pub = await client(b.server, { protocolVersion: 5 });
    await pub.publish("dc/1", "again", { qos: 1 });
    expect(await nextContent(subscription)).toBe("again");
  });
});

describe("resending what was in flight", () => {
  const publishesOf = (conn: RawConn): PublishPacket[] =>
    conn.packets.filter((p): p is PublishPacket => p.type === PacketType.PUBLISH);
  const afterConnect = (conn: RawConn): Packet[] =>
    conn.packets.filter((p) => p.type !== PacketType.CONNECT);

  for (const protocolVersion of [4, 5] as const) {
    for (const sessionPresent of [true, false]) {
      it(`v${protocolVersion}: an unacknowledged QoS 1 publish is resent with DUP and the same packet id (session present: ${sessionPresent})`, async () => {
        const server = await rawServer({
          connack: (conn) => ({ sessionPresent: sessionPresent && conn.index > 0 }),
          onPacket: (conn, p) => {
            if (p.type !== PacketType.PUBLISH) return;
            if (conn.index === 0)
              conn.destroy(); // withheld PUBACK, lost connection
            else conn.send({ type: PacketType.PUBACK, packetId: p.packetId! });
          },
        });
        const c = await connect(server.url, {
          protocolVersion,
          clientId: "resend-1",
          clean: !sessionPresent,
          reconnect: FAST,
        });
        onCleanup(() => c.destroy());
        const events = track(c);
        const result = await c.publish("re/send", "hello", { qos: 1 });
        expect(events).toEqual(["offline", "connect", "reconnect"]);
        const [first] = publishesOf(server.conns[0]!);
        const [again, ...more] = publishesOf(server.conns[1]!);
        expect(first!.dup).toBe(false);
        expect(again).toBeDefined();
        expect(more).toEqual([]);
        expect(again!.dup).toBe(true);
        expect(again!.qos).toBe(1);
        expect(again!.packetId).toBe(first!.packetId);
        expect(again!.topic).toBe("re/send");
        expect(Buffer.from(again!.payload).toString()).toBe("hello");
        expect(result.packetId).toBe(first!.packetId);
        expect(c.pendingPublishes).toBe(0);
      });
    }

    it(`v${protocolVersion}: a QoS 2 publish without PUBREC is resent as PUBLISH (DUP), then completes`, async () => {
      const server = await rawServer({
        connack: (conn) => ({ sessionPresent: conn.index > 0 }),
        onPacket: (conn, p) => {
          if (p.type === PacketType.PUBLISH) {
            if (conn.index === 0) conn.destroy();
            else conn.send({ type: PacketType.PUBREC, packetId: p.packetId! });
          }
          if (p.type === PacketType.PUBREL)
            conn.send({ type: PacketType.PUBCOMP, packetId: p.packetId });
        },
      });
      const c = await connect(server.url, {
        protocolVersion,
        clientId: "resend-2",
        clean: false,
        reconnect: FAST,
      });
      onCleanup(() => c.destroy());
      const result = await c.publish("re/q2", "two", { qos: 2 });
      const [first] = publishesOf(server.conns[0]!);
      const second = afterConnect(server.conns[1]!);
      expect(second.map((p) => p.type)).toEqual([PacketType.PUBLISH, PacketType.PUBREL]);
      const again = second[0] as PublishPacket;
      expect(again.dup).toBe(true);
      expect(again.qos).toBe(2);
      expect(again.packetId).toBe(first!.packetId);
      expect(result.packetId).toBe(first!.packetId);
    });

    it(`v${protocolVersion}: a QoS 2 publish in the PUBREL state resends PUBREL, not the message`, async () => {
      const server = await rawServer({
        connack: (conn) => ({ sessionPresent: conn.index > 0 }),
        onPacket: (conn, p) => {
          if (p.type === PacketType.PUBLISH)
            conn.send({ type: PacketType.PUBREC, packetId: p.packetId! });
          if (p.type === PacketType.PUBREL) {
            if (conn.index === 0)
              conn.destroy(); // PUBCOMP withheld
            else conn.send({ type: PacketType.PUBCOMP, packetId: p.packetId });
          }
        },
      });
      const c = await connect(server.url, {
        protocolVersion,
        clientId: "resend-3",
        clean: false,
        reconnect: FAST,
      });
      onCleanup(() => c.destroy());
      const result = await c.publish("re/q2", "once", { qos: 2 });
      const first = afterConnect(server.conns[0]!);
      expect(first.map((p) => p.type)).toEqual([PacketType.PUBLISH, PacketType.PUBREL]);
      const id = (first[0] as PublishPacket).packetId;
      const second = afterConnect(server.conns[1]!);
      expect(second).toEqual([expect.objectContaining({ type: PacketType.PUBREL, packetId: id })]);
      expect(result.packetId).toBe(id);
      expect(c.pendingPublishes).toBe(0);
    });
  }

  it("resends several in-flight publishes in their original order with their packet ids", async () => {
    const server = await rawServer({
      connack: (conn) => ({ sessionPresent: conn.index > 0 }),
      onPacket: (conn, p) => {
        if (conn.index === 0) return; // nothing acknowledged on the first connection
        if (p.type === PacketType.PUBLISH && p.qos === 1)
          conn.send({ type: PacketType.PUBACK, packetId: p.packetId! });
        if (p.type === PacketType.PUBLISH && p.qos === 2)
          conn.send({ type: PacketType.PUBREC, packetId: p.packetId! });
        if (p.type === PacketType.PUBREL)
          conn.send({ type: PacketType.PUBCOMP, packetId: p.packetId });
      },
    });
    const c = await connect(server.url, { clientId: "order", clean: false, reconnect: FAST });
    onCleanup(() => c.destroy());
    const results = Array.from({ length: 6 }, (_, i) =>
      c.publish(`o/${i}`, `m${i}`, { qos: ((i % 2) + 1) as 1 | 2 }),
    );
    await until(() => publishesOf(server.conns[0]!).length === 6, 2000, "6 PUBLISH");
    server.conns[0]!.destroy();
    const done = await Promise.all(results);
    const first = publishesOf(server.conns[0]!);
    const again = publishesOf(server.conns[1]!);
    expect(again.map((p) => [p.topic, p.packetId, p.dup])).toEqual(
      first.map((p) => [p.topic, p.packetId, true]),
    );
    expect(done.map((r) => r.packetId)).toEqual(first.map((p) => p.packetId));
  });

  it("5.0: resending respects the Receive Maximum of the new connection", async () => {
    let outstanding: number[] = [];
    let maxOutstanding = 0;
    let ackScheduled = false;
    const ackLater = (conn: RawConn): void => {
      if (ackScheduled || outstanding.length === 0) return;
      ackScheduled = true;
      // Acknowledge slowly so that a client overrunning the window would be seen.
      setTimeout(() => {
        ackScheduled = false;
        const id = outstanding.shift()!;
        conn.send({ type: PacketType.PUBACK, packetId: id });
        ackLater(conn);
      }, 40);
    };
    const server = await rawServer({
      connack: (conn) => ({
        sessionPresent: conn.index > 0,
        properties: { receiveMaximum: conn.index === 0 ? 5 : 2 },
      }),
      onPacket: (conn, p) => {
        if (conn.index === 0 || p.type !== PacketType.PUBLISH) return;
        outstanding.push(p.packetId!);
        maxOutstanding = Math.max(maxOutstanding, outstanding.length);
        ackLater(conn);
      },
    });
    const c = await connect(server.url, {
      protocolVersion: 5,
      clientId: "window",
      clean: false,
      properties: { sessionExpiryInterval: 60 },
      reconnect: FAST,
    });
    onCleanup(() => c.destroy());
    const results = Array.from({ length: 8 }, (_, i) => c.publish(`w/${i}`, `m${i}`, { qos: 1 }));
    await until(() => publishesOf(server.conns[0]!).length === 5, 2000, "5 PUBLISH");
    await sleep(100);
    // The first connection's window (5) held the other three back.
    expect(publishesOf(server.conns[0]!).length).toBe(5);
    outstanding = [];
    server.conns[0]!.destroy();
    const done = await Promise.all(results);
    expect(maxOutstanding).toBe(2);
    const first = publishesOf(server.conns[0]!);
    const again = publishesOf(server.conns[1]!);
    expect(again.map((p) => [p.topic, p.dup])).toEqual([
      ...first.map((p) => [p.topic, true]),
      ["w/5", false],
      ["w/6", false],
      ["w/7", false],
    ]);
    expect(again.slice(0, 5).map((p) => p.packetId)).toEqual(first.map((p) => p.packetId));
    expect(done.map((r) => r.reasonCode)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("an incoming QoS 2 message resent after a reconnect is delivered once [MQTT-4.3.3-2]", async () => {
    const server = await rawServer({
      connack: (conn) => ({ sessionPresent: conn.index > 0 }),
      onPacket: (conn, p) => {
        if (p.type === PacketType.CONNECT) {
          // A little after CONNACK (what arrives right behind it is another test's matter).
          setTimeout(() => {
            conn.send({
              type: PacketType.PUBLISH,
              topic: "in/q2",
              payload: Buffer.from("exactly once"),
              qos: 2,
              retain: false,
              dup: conn.index > 0,
              packetId: 7,
            });
          }, 30);
        }
        if (p.type === PacketType.PUBREC) {
          if (conn.index === 0)
            conn.destroy(); // PUBREL never sent
          else conn.send({ type: PacketType.PUBREL, packetId: p.packetId });
        }
      },
    });
    const c = await connect(server.url, { clientId: "in-q2", clean: false, reconnect: FAST });
    onCleanup(() => c.destroy());
    const got: string[] = [];
    c.on("message", (_topic, payload) => got.push(Buffer.from(payload).toString()));
    await until(
      () => (server.conns[1]?.packets ?? []).some((p) => p.type === PacketType.PUBCOMP),
      3000,
      "PUBCOMP on the second connection",
    );
    expect(afterConnect(server.conns[1]!).map((p) => p.type)).toEqual([
      PacketType.PUBREC,
      PacketType.PUBCOMP,
    ]);
    await sleep(50);
    expect(got).toEqual(["exactly once"]);
  });

  for (const protocolVersion of [4, 5] as const) {
    it(`v${protocolVersion}: messages a resumed session sends right behind CONNACK are delivered and acknowledged`, async () => {
      // A server with a session sends what it queued at once after CONNACK, often in the
      // same TCP segment.
      let subscriptionIdentifier: number | undefined;
      const server = await rawServer({
        connack: (conn) => ({ sessionPresent: conn.index > 0 }),
        onPacket: (conn, p) => {
          if (p.type === PacketType.SUBSCRIBE) {
            subscriptionIdentifier = p.properties?.subscriptionIdentifier;
            conn.send({ type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: [2] });
          }
          if (p.type !== PacketType.CONNECT || conn.index === 0) return;
          for (const qos of [0, 1, 2] as const) {
            conn.send({
              type: PacketType.PUBLISH,
              topic: `queued/${qos}`,
              payload: Buffer.from(`q${qos}`),
              qos,
              retain: false,
              dup: false,
              ...(qos > 0 ? { packetId: 10 + qos } : {}),
              ...(subscriptionIdentifier !== undefined
                ? { properties: { subscriptionIdentifiers: [subscriptionIdentifier] } }
                : {}),
            });
          }
        },
      });
      const c = await connect(server.url, {
        protocolVersion,
        clientId: "behind-connack",
        clean: false,
        reconnect: FAST,
      });
      onCleanup(() => c.destroy());
      const sub = await c.subscribe("queued/#", { qos: 2 });
      const events = track(c);
      server.conns[0]!.destroy();
      await until(() => events.includes("reconnect"), 3000, "reconnect");
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push(await nextContent(sub, 1000));
      expect(got).toEqual(["q0", "q1", "q2"]);
      await until(
        () => afterConnect(server.conns[1]!).length >= 2,
        1000,
        "PUBACK and PUBREC on the second connection",
      );
      expect(afterConnect(server.conns[1]!)).toEqual([
        expect.objectContaining({ type: PacketType.PUBACK, packetId: 11 }),
        expect.objectContaining({ type: PacketType.PUBREC, packetId: 12 }),
      ]);
    });
  }
});

describe("closing or reconnecting while a reconnect attempt is under way", () => {
  /** A server whose CONNACK comes 150 ms late on every connection after the first. */
  async function slowConnackServer() {
    return rawServer({
      autoConnack: false,
      onPacket: (conn, p) => {
        if (p.type !== PacketType.CONNECT) return;
        const connack = (): void =>
          conn.send({ type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 });
        if (conn.index === 0) connack();
        else setTimeout(connack, 150);
      },
    });
  }

  for (const how of ["destroy", "end"] as const) {
    it(`${how}() while waiting for the CONNACK of an attempt: the client stays closed and drops that connection`, async () => {
      const server = await slowConnackServer();
      const c = await connect(server.url, { reconnect: FAST });
      onCleanup(() => c.destroy());
      const events = track(c);
      server.conns[0]!.destroy();
      await until(() => server.conns[1]?.connect != null, 2000, "a reconnect attempt");
      if (how === "destroy") c.destroy();
      else await c.end();
      expect(c.state).toBe("closed");
      await sleep(400); // the late CONNACK arrives meanwhile
      expect(c.state).toBe("closed");
      expect(events).not.toContain("reconnect");
      expect(server.conns[1]!.closed).toBe(true);
      expect(server.conns.length).toBe(2);
      await expect(c.publish("t", "x", { qos: 1 })).rejects.toThrow();
    });
  }

  it("reconnect() while an attempt is under way does not end up with two connections", async () => {
    const server = await slowConnackServer();
    const c = await connect(server.url, { reconnect: FAST });
    onCleanup(() => c.destroy());
    const events = track(c);
    server.conns[0]!.destroy();
    await until(() => server.conns[1]?.connect != null, 2000, "a reconnect attempt");
    c.reconnect();
    await sleep(600);
    expect(c.connected).toBe(true);
    const open = server.conns.filter((conn) => !conn.closed);
    expect(open.length).toBe(1);
    expect(events.filter((e) => e === "reconnect").length).toBe(1);
  });
});

describe("acknowledgements a slow reader held when the connection was lost", () => {
  /** QoS of the messages sent, and the QoS 2 packet ids each connection has outstanding. */
  let qos: 1 | 2 = 2;
  const outstanding = new Map<RawConn, Set<number>>();
  const sent = (conn: RawConn): Set<number> => {
    let ids = outstanding.get(conn);
    if (ids === undefined) outstanding.set(conn, (ids = new Set()));
    return ids;
  };

  /** Sends a PUBLISH of `qos` (a QoS 2 packet id is outstanding until PUBREC). */
  function send(conn: RawConn, topic: string, text: string, packetId: number): void {
    if (qos === 2) sent(conn).add(packetId);
    conn.send({
      type: PacketType.PUBLISH,
      topic,
      payload: Buffer.from(text),
      qos,
      retain: false,
      dup: false,
      packetId,
    });
  }

  /** A raw server that answers SUBSCRIBE and sends one message on the first connection. */
  async function heldAckServer(q: 1 | 2) {
    qos = q;
    return rawServer({
      onPacket: (conn, p) => {
        if (p.type === PacketType.SUBSCRIBE) {
          conn.send({ type: PacketType.SUBACK, packetId: p.packetId, reasonCodes: [q] });
          if (conn.index === 0) send(conn, "held/old", "old", 1);
        }
        // A 3.1.1 server ignores a PUBREC for a packet id it has not sent on this connection.
        if (p.type === PacketType.PUBREC && sent(conn).delete(p.packetId))
          conn.send({ type: PacketType.PUBREL, packetId: p.packetId });
      },
    });
  }

  it("QoS 2: a new session's message that reuses the packet id is delivered, not taken for a duplicate", async () => {
    const server = await heldAckServer(2);
    const c = await connect(server.url, { reconnect: FAST, subscriptionBuffer: 1 });
    onCleanup(() => c.destroy());
    const events = track(c);
    const sub = await c.subscribe("held/#", { qos: 2 });
    await until(() => sub.buffered === 1, 2000, "the message buffered, its PUBREC held");
    server.conns[0]!.destroy();
    await until(() => events.includes("reconnect"), 3000, "reconnect (no session)");
    await until(
      () => (server.conns[1]?.packets ?? []).some((p) => p.type === PacketType.SUBSCRIBE),
      2000,
      "the resubscription",
    );
    expect(await nextContent(sub)).toBe("old");
    await sleep(50);
    // The new session's first QoS 2 message uses packet id 1 again.
    send(server.conns[1]!, "held/new", "new", 1);
    expect(await nextContent(sub, 1000)).toBe("new");
  });

  it("QoS 1: the held PUBACK is not sent on the new session's connection", async () => {
    const server = await heldAckServer(1);
    const c = await connect(server.url, { reconnect: FAST, subscriptionBuffer: 1 });
    onCleanup(() => c.destroy());
    const events = track(c);
    const sub = await c.subscribe("held/#", { qos: 1 });
    await until(() => sub.buffered === 1, 2000, "the message buffered, its PUBACK held");
    server.conns[0]!.destroy();
    await until(() => events.includes("reconnect"), 3000, "reconnect (no session)");
    expect(await nextContent(sub)).toBe("old");
    await sleep(100);
    // Packet id 1 means nothing in the new session: acknowledging it there could only
    // acknowledge another message.
    expect(
      server.conns[1]!.packets.filter((p) => p.type === PacketType.PUBACK).map((p) => p.packetId),
    ).toEqual([]);
  });
});
