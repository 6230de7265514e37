// The client against a scripted server that breaks the rules or pushes the limits: what the
// caller gets is a typed error for that one call, the client stays usable, and nothing spins.
import { spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { Decoder, encode, type Packet, PacketType, ReasonCode } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import {
  ConnectionError,
  InvalidPacketError,
  type MqttClient,
  PacketTooLargeError,
  ProtocolError,
  PublishError,
  SubscribeError,
} from "../src/index.js";
import { client, onCleanup, sleep, until } from "./helpers.js";
import { type RawConn, rawServer, settle } from "./resilience-helpers.js";

const EVERY_PACKET_ID = fileURLToPath(new URL("./fixtures/every-packet-id.mjs", import.meta.url));

/** Acknowledges a QoS 1 / 2 PUBLISH (PUBACK, or PUBREC then PUBCOMP for its PUBREL). */
function acknowledge(conn: RawConn, packet: { type: number; qos?: number; packetId?: number }) {
  if (packet.type === PacketType.PUBLISH && packet.qos === 1)
    conn.send({ type: PacketType.PUBACK, packetId: packet.packetId! });
  else if (packet.type === PacketType.PUBLISH && packet.qos === 2)
    conn.send({ type: PacketType.PUBREC, packetId: packet.packetId! });
  else if (packet.type === PacketType.PUBREL)
    conn.send({ type: PacketType.PUBCOMP, packetId: packet.packetId! });
}

async function v5Client(server: { url: string; port: number }, options = {}): Promise<MqttClient> {
  const c = await client(server, { protocolVersion: 5, ...options });
  c.on("error", () => {});
  return c;
}

describe("publishing within what the server announced", () => {
  it("leaves out a topic alias that alone would make a packet larger than the server's Maximum Packet Size", async () => {
    // "al/tt" + "x": 11 bytes at QoS 0 and 13 at QoS 1 without the alias, 3 more with it;
    // "al" + "x" at QoS 1: 10, and 13 with it.
    const server = await rawServer({
      connack: () => ({ properties: { maximumPacketSize: 13, topicAliasMaximum: 5 } }),
      onPacket: acknowledge,
    });
    const c = await v5Client(server);
    await expect(c.publish("al/tt", "x", { qos: 0 })).resolves.toEqual({ reasonCode: 0 });
    await expect(c.publish("al/tt", "x", { qos: 1 })).resolves.toMatchObject({ reasonCode: 0 });
    // A shorter topic leaves room for the alias: it is used.
    await expect(c.publish("al", "x", { qos: 1 })).resolves.toMatchObject({ reasonCode: 0 });
    await expect(c.publish("al", "x", { qos: 1 })).resolves.toMatchObject({ reasonCode: 0 });
    await until(() => server.received(PacketType.PUBLISH).length === 4);
    expect(
      server.received(PacketType.PUBLISH).map((p) => [p.topic, p.properties?.topicAlias]),
    ).toEqual([
      ["al/tt", undefined],
      ["al/tt", undefined],
      ["al", 1],
      ["", 1],
    ]);
  });

  it("fails only the resent publish that the next server's Maximum Packet Size refuses", async () => {
    const server = await rawServer({
      // The first connection takes 1000 bytes, the next ones 100; one publish in flight.
      connack: (conn) => ({
        properties: { receiveMaximum: 1, maximumPacketSize: conn.index === 0 ? 1000 : 100 },
      }),
      onPacket(conn, packet) {
        if (conn.index > 0) acknowledge(conn, packet); // the first one acknowledges nothing
      },
    });
    const c = await v5Client(server, { reconnect: { initialDelayMs: 20, jitter: 0 } });
    const big = settle(c.publish("mps/big", new Uint8Array(500), { qos: 1 }));
    await until(() => server.received(PacketType.PUBLISH).length === 1);
    server.conns[0]!.destroy();
    const outcome = await big;
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toBeInstanceOf(PacketTooLargeError);
    // It left the window: the next publish goes, on the same connection.
    await expect(c.publish("mps/small", "y", { qos: 1 })).resolves.toMatchObject({ reasonCode: 0 });
    expect(server.conns.length).toBe(2);
  });

  it("refuses a property value the protocol cannot carry at once, and stays usable", async () => {
    const server = await rawServer({ onPacket: acknowledge });
    const c = await v5Client(server);
    const bad = { properties: { messageExpiryInterval: -1 } };
    await expect(c.publish("bad/p", "x", { qos: 1, ...bad })).rejects.toBeInstanceOf(
      InvalidPacketError,
    );
    await expect(c.publish("bad/p", "x", { qos: 0, ...bad })).rejects.toBeInstanceOf(
      InvalidPacketError,
    );
    await expect(c.publish("ok/p", "y", { qos: 1 })).resolves.toMatchObject({ reasonCode: 0 });
    expect(server.received(PacketType.PUBLISH).map((p) => p.topic)).toEqual(["ok/p"]);
  });

  it("honours Maximum QoS and Retain Available: refused with 0x9B / 0x9A, not sent", async () => {
    const server = await rawServer({
      connack: () => ({ properties: { maximumQoS: 0, retainAvailable: false } }),
      onPacket: acknowledge,
    });
    const c = await v5Client(server);
    const qos1 = await settle(c.publish("mq/t", "x", { qos: 1 }));
    expect((qos1 as { error: PublishError }).error).toBeInstanceOf(PublishError);
    expect((qos1 as { error: PublishError }).error.reasonCode).toBe(ReasonCode.QOS_NOT_SUPPORTED);
    const retained = await settle(c.publish("mq/t", "x", { qos: 0, retain: true }));
    expect((retained as { error: PublishError }).error.reasonCode).toBe(
      ReasonCode.RETAIN_NOT_SUPPORTED,
    );
    await expect(c.publish("mq/ok", "y", { qos: 0 })).resolves.toEqual({ reasonCode: 0 });
    await until(() => server.received(PacketType.PUBLISH).length === 1);
    await sleep(50);
    expect(server.received(PacketType.PUBLISH).map((p) => p.topic)).toEqual(["mq/ok"]);
  });

  it("resolves a QoS 2 publish accepted by PUBREC even when PUBCOMP says 0x92", async () => {
    const server = await rawServer({
      onPacket(conn, packet) {
        if (packet.type === PacketType.PUBLISH)
          conn.send({ type: PacketType.PUBREC, packetId: packet.packetId! });
        else if (packet.type === PacketType.PUBREL)
          conn.send({ type: PacketType.PUBCOMP, packetId: packet.packetId!, reasonCode: 0x92 });
      },
    });
    const c = await v5Client(server);
    // The server owned the message from PUBREC on: rejecting would invite a second publish.
    await expect(c.publish("q2/t", "once", { qos: 2 })).resolves.toMatchObject({ reasonCode: 0 });
  });
});

describe("when every packet id is in use", () => {
  it("publishes wait in the queue, and go as ids are freed, without spinning the event loop", async () => {
    const server = await rawServer(); // answers CONNECT only
    const child = spawn(process.execPath, [EVERY_PACKET_ID, String(server.port)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    onCleanup(() => child.kill("SIGKILL"));
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const publishes = () => server.received(PacketType.PUBLISH);
    await until(() => publishes().length === 65_534, 20_000, "65,534 publishes");
    const conn = server.conns[0]!;
    // One id is freed: the first queued publish takes it, the second must wait for the next.
    conn.send({ type: PacketType.PUBACK, packetId: publishes()[0]!.packetId! });
    await until(() => publishes().length === 65_535, 5000, "the first queued publish");
    const ticks = (): number => out.split(".").length;
    const before = ticks();
    await until(() => ticks() >= before + 3, 2000, "the client's event loop to run");
    conn.send({ type: PacketType.PUBACK, packetId: publishes()[65_534]!.packetId! });
    await until(() => publishes().length === 65_536, 5000, "the second queued publish");
    expect(
      publishes()
        .slice(-2)
        .map((p) => new TextDecoder().decode(p.payload)),
    ).toEqual(["1", "2"]);
    await until(() => out.includes("sent 1"), 2000, "the first queued publish to resolve");
  });
});

describe("subscribing", () => {
  it("refuses a SUBSCRIBE larger than the server's Maximum Packet Size, and keeps the connection", async () => {
    const server = await rawServer({
      connack: () => ({ properties: { maximumPacketSize: 100 } }),
      onPacket(conn, packet) {
        if (packet.type === PacketType.SUBSCRIBE)
          conn.send({
            type: PacketType.SUBACK,
            packetId: packet.packetId,
            reasonCodes: packet.subscriptions.map(() => 0),
          });
      },
    });
    const c = await v5Client(server);
    const many = Array.from({ length: 20 }, (_, i) => `a/long/filter/${i}`);
    await expect(c.subscribe(many)).rejects.toBeInstanceOf(PacketTooLargeError);
    expect(c.state).toBe("connected");
    await expect(c.subscribe("a/short")).resolves.toBeDefined();
    expect(server.received(PacketType.SUBSCRIBE).length).toBe(1);
  });

  it.each([
    ["an UNSUBACK answering a SUBSCRIBE", "type"],
    ["a SUBACK with two reason codes for one filter", "count"],
  ])("treats %s as a protocol error: rejected, DISCONNECT 0x82", async (_what, fault) => {
    const server = await rawServer({
      onPacket(conn, packet) {
        if (packet.type !== PacketType.SUBSCRIBE) return;
        if (fault === "type")
          conn.send({ type: PacketType.UNSUBACK, packetId: packet.packetId, reasonCodes: [0x11] });
        else conn.send({ type: PacketType.SUBACK, packetId: packet.packetId, reasonCodes: [0, 0] });
      },
    });
    const c = await v5Client(server);
    await expect(c.subscribe("wrong/ack")).rejects.toBeInstanceOf(ProtocolError);
    await until(() => server.received(PacketType.DISCONNECT).length === 1);
    expect(server.received(PacketType.DISCONNECT)[0]?.reasonCode).toBe(ReasonCode.PROTOCOL_ERROR);
  });

  it("rejects a refused subscribe when the SUBACK comes, not when its cleanup is answered", async () => {
    const server = await rawServer({
      onPacket(conn, packet) {
        // Grants the first filter, refuses the second; never answers UNSUBSCRIBE.
        if (packet.type === PacketType.SUBSCRIBE)
          conn.send({ type: PacketType.SUBACK, packetId: packet.packetId, reasonCodes: [1, 0x87] });
      },
    });
    const c = await v5Client(server);
    const outcome = await Promise.race([
      settle(c.subscribe(["ok/f", "refused/f"], { qos: 1 })),
      sleep(2000).then(() => "still waiting"),
    ]);
    expect(outcome).toMatchObject({ ok: false });
    const error = (outcome as { error: SubscribeError }).error;
    expect(error).toBeInstanceOf(SubscribeError);
    expect(error.topicFilter).toBe("refused/f");
    // The granted filter is given back in the background.
    await until(() => server.received(PacketType.UNSUBSCRIBE).length === 1);
    expect(server.received(PacketType.UNSUBSCRIBE)[0]?.topicFilters).toEqual(["ok/f"]);
  });

  it("ends the Subscription whose filter the server refuses when subscriptions are restored, and says so", async () => {
    const server = await rawServer({
      onPacket(conn, packet) {
        if (packet.type === PacketType.SUBSCRIBE)
          conn.send({
            type: PacketType.SUBACK,
            packetId: packet.packetId,
            reasonCodes: [conn.index === 0 ? 1 : 0x80],
          });
      },
    });
    const c = await client(server, { reconnect: { initialDelayMs: 20, jitter: 0 } });
    const errors: unknown[] = [];
    c.on("error", (e) => errors.push(e));
    const sub = await c.subscribe("news/#", { qos: 1 });
    server.conns[0]!.destroy();
    // The iteration ends instead of waiting for messages that cannot come.
    await expect(
      Promise.race([sub.next(), sleep(3000).then(() => "still waiting")]),
    ).resolves.toEqual({ value: undefined, done: true });
    expect(errors.find((e) => e instanceof SubscribeError)).toMatchObject({
      topicFilter: "news/#",
      reasonCode: 0x80,
    });
  });
});

describe("bad packets from a 5.0 server", () => {
  it.each([
    ["a PUBLISH with QoS 3", [0x36, 0x03, 0x00, 0x01, 0x61], ReasonCode.MALFORMED_PACKET],
    [
      "a PUBLISH to a wildcard topic",
      [0x30, 0x04, 0x00, 0x01, 0x23, 0x00],
      ReasonCode.TOPIC_NAME_INVALID,
    ],
  ])(
    "tells the server why it closes after %s, with a DISCONNECT reason code",
    async (_what, bytes, reasonCode) => {
      const server = await rawServer({
        onPacket(conn, packet) {
          if (packet.type === PacketType.CONNECT)
            setTimeout(() => conn.socket.write(Buffer.from(bytes)), 20);
        },
      });
      const c = await v5Client(server, { reconnect: false });
      await until(() => server.received(PacketType.DISCONNECT).length === 1);
      expect(server.received(PacketType.DISCONNECT)[0]?.reasonCode).toBe(reasonCode);
      await until(() => c.state === "closed");
    },
  );
});

describe("the CONNACK and DISCONNECT", () => {
  it.each([4, 5] as const)(
    "fails the connection told Session Present after a clean start (MQTT %i)",
    async (protocolVersion) => {
      // [MQTT-3.2.2-4]: the client holds no session that could be present.
      const server = await rawServer({ connack: () => ({ sessionPresent: true }) });
      await expect(client(server, { protocolVersion, clean: true })).rejects.toBeInstanceOf(
        ConnectionError,
      );
      await until(() => server.conns[0]?.closed === true);
    },
  );

  it("follows a DISCONNECT 0x9D with a Server Reference when followRedirects is on", async () => {
    const other = await rawServer();
    const server = await rawServer({
      onPacket(conn, packet) {
        if (packet.type === PacketType.CONNECT)
          conn.send({
            type: PacketType.DISCONNECT,
            reasonCode: ReasonCode.SERVER_MOVED,
            properties: { serverReference: `127.0.0.1:${other.port}` },
          });
      },
    });
    const c = await v5Client(server, {
      followRedirects: true,
      reconnect: { initialDelayMs: 20, jitter: 0 },
    });
    await until(() => other.conns.length === 1, 3000, "a connection to the other server");
    await until(() => c.state === "connected");
    expect(server.conns.length).toBe(1);
  });
});

/**
 * A 5.0 server that never closes its side of a connection: it ignores the client's FIN and
 * DISCONNECT. `onConnect` may send something after the CONNACK.
 */
async function halfOpenServer(onConnect: (socket: Socket) => void = () => {}) {
  const received: Packet[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    const decoder = new Decoder(
      (p) => {
        received.push(p);
        if (p.type !== PacketType.CONNECT) return;
        socket.write(
          encode(
            { type: PacketType.CONNACK, sessionPresent: false, reasonCode: 0 },
            { protocolVersion: 5 },
          ),
        );
        onConnect(socket);
      },
      { protocolVersion: 5 },
    );
    socket.on("data", (chunk) => decoder.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as { port: number }).port;
  return { url: `mqtt://127.0.0.1:${port}`, port, received, connections: () => connections };
}

describe("a server that leaves the connection half open", () => {
  it("end() still settles: the connection is dropped a second after the DISCONNECT", async () => {
    const server = await halfOpenServer();
    const c = await client(server, { protocolVersion: 5, keepAlive: 0 });
    const outcome = await Promise.race([
      c.end().then(() => "ended"),
      sleep(3000).then(() => "hung"),
    ]);
    expect(outcome).toBe("ended");
    expect(c.state).toBe("closed");
    expect(server.received.map((p) => p.type)).toEqual([PacketType.CONNECT, PacketType.DISCONNECT]);
  });

  it("a client that closed for the server's protocol error reconnects instead of staying half open", async () => {
    // An inbound topic alias the client never allowed: DISCONNECT 0x94, then close.
    const server = await halfOpenServer((socket) =>
      socket.write(
        encode(
          {
            type: PacketType.PUBLISH,
            topic: "a",
            payload: new Uint8Array(1),
            qos: 0,
            retain: false,
            dup: false,
            properties: { topicAlias: 7 },
          },
          { protocolVersion: 5 },
        ),
      ),
    );
    const c = await v5Client(server, {
      keepAlive: 0,
      reconnect: { initialDelayMs: 20, jitter: 0 },
    });
    await until(() => server.connections() >= 2, 3000, "a second connection");
    expect(
      server.received.filter((p) => p.type === PacketType.DISCONNECT).map((p) => p.reasonCode),
    ).toContain(ReasonCode.TOPIC_ALIAS_INVALID);
    c.destroy();
  });
});
