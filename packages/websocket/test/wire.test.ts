// The WebSocket wire as the listener sees it: text and binary frames in, binary out, the Host
// header, subprotocols, paths and plain HTTP requests, and peers that misbehave.
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { type ConnectPacket, encode, PacketType } from "@myqtt/codec";
import type { Transport } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connectWebSocket, listenWebSocket, type WebSocketTransport } from "../src/index.js";
import { mqttjs, nextMessage, onCleanup, rawWs, sleep, startWsBroker, until } from "./helpers.js";

const connect = (clientId: string): ConnectPacket => ({
  type: PacketType.CONNECT,
  protocolVersion: 4,
  clean: true,
  keepAlive: 0,
  clientId,
});

/** The transport under a broker connection (the hooks see ServerConnection, which hides it). */
const transportOf = (conn: unknown): WebSocketTransport =>
  (conn as { transport: Transport }).transport as WebSocketTransport;

/** Status and body of a plain HTTP GET. */
function httpGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers, timeout: 3000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("timeout", () => req.destroy(new Error("HTTP request timed out")));
    req.on("error", reject);
    req.end();
  });
}

describe("frames", () => {
  it("a CONNECT in a TEXT frame (as MyQtt sends it) gets a CONNACK in a binary frame", async () => {
    const b = await startWsBroker();
    const raw = await rawWs(`${b.base}/mqtt`, []);
    // A client id long enough for a two-byte remaining length: 0x8x then 0x01, which is not
    // valid UTF-8, so the frame is accepted only because text is taken as bytes.
    const packet = connect(`text-${"x".repeat(150)}`);
    const bytes = encode(packet, { protocolVersion: 4 });
    expect(bytes[1]! & 0x80).toBe(0x80);
    raw.sendBytes(bytes, "text");
    await until(() => raw.packets.length === 1, 3000, "CONNACK");
    expect(raw.packets[0]).toMatchObject({ type: PacketType.CONNACK, reasonCode: 0 });
    expect(raw.frames).toEqual([{ size: 4, binary: true }]);
    expect(b.conns[0]?.clientId).toBe(packet.clientId);

    // PUBLISH and SUBSCRIBE in text frames too; the answers are binary.
    raw.send(
      { type: PacketType.SUBSCRIBE, packetId: 1, subscriptions: [{ topicFilter: "t/#", qos: 1 }] },
      "text",
    );
    raw.send(
      {
        type: PacketType.PUBLISH,
        topic: "t/1",
        payload: new Uint8Array([0xff, 0xfe, 0x00, 0x80]),
        qos: 1,
        retain: false,
        dup: false,
        packetId: 2,
      },
      "text",
    );
    await until(() => raw.packets.length === 4, 3000, "SUBACK, PUBACK and the PUBLISH");
    const publish = raw.packets.find((p) => p.type === PacketType.PUBLISH);
    expect(publish && publish.type === PacketType.PUBLISH && [...publish.payload]).toEqual([
      0xff, 0xfe, 0x00, 0x80,
    ]);
    expect(raw.frames.every((f) => f.binary)).toBe(true);
  });

  it("a packet split over several frames, and several packets in one frame, are read", async () => {
    const b = await startWsBroker();
    const raw = await rawWs(`${b.base}/mqtt`);
    const bytes = encode(connect("split"), { protocolVersion: 4 });
    raw.sendBytes(bytes.subarray(0, 3));
    raw.sendBytes(bytes.subarray(3, 10));
    raw.sendBytes(bytes.subarray(10));
    await until(() => raw.packets.length === 1, 3000, "CONNACK");
    const ping = encode({ type: PacketType.PINGREQ }, { protocolVersion: 4 });
    raw.sendBytes(Buffer.concat([ping, ping, ping]));
    await until(() => raw.packets.length === 4, 3000, "three PINGRESPs");
    expect(raw.packets.slice(1).map((p) => p.type)).toEqual([
      PacketType.PINGRESP,
      PacketType.PINGRESP,
      PacketType.PINGRESP,
    ]);
  });
});

describe("the upgrade request", () => {
  it("the Host header becomes ServerConnection.serverName, without the port", async () => {
    const b = await startWsBroker();
    const transport = await connectWebSocket("127.0.0.1", b.port, {
      headers: { Host: "broker.example:1918" },
    });
    onCleanup(() => transport.destroy());
    const bytes = encode(connect("host-header"), { protocolVersion: 4 });
    transport.start({ onData() {}, onDrain() {}, onClose() {} });
    transport.write(bytes);
    await until(() => b.conns.length === 1, 3000, "the CONNECT");
    expect(b.conns[0]?.serverName).toBe("broker.example");
    expect(b.conns[0]?.tls).toBe(false);
    // Without a port, and an IPv6 literal.
    const plain = await rawWs(`${b.base}/mqtt`, ["mqtt"], { headers: { Host: "plain.example" } });
    plain.send(connect("host-plain"));
    const v6 = await rawWs(`${b.base}/mqtt`, ["mqtt"], { headers: { Host: "[::1]:1918" } });
    v6.send(connect("host-v6"));
    await until(() => b.conns.length === 3, 3000, "two more CONNECTs");
    const byId = new Map(b.conns.map((c) => [c.clientId, c.serverName]));
    expect(byId.get("host-plain")).toBe("plain.example");
    expect(byId.get("host-v6")).toBe("::1");
  });

  it("negotiates mqtt, mqttv3.1, or no subprotocol at all", async () => {
    const b = await startWsBroker();
    const url = `${b.base}/mqtt`;
    const cases: Array<[string[], string]> = [
      [["mqtt"], "mqtt"],
      [["mqttv3.1"], "mqttv3.1"],
      [["mqttv3.1", "mqtt"], "mqttv3.1"],
      [["other", "mqtt"], "mqtt"],
      [[], ""],
    ];
    for (const [offered, chosen] of cases) {
      const raw = await rawWs(url, offered);
      expect(raw.ws.protocol, offered.join(",")).toBe(chosen);
      raw.send(connect(`proto-${offered.join("-") || "none"}`));
      await until(() => raw.packets.length === 1, 3000, "CONNACK");
    }
    // Only unknown ones: the server names none, and a standard client gives up (RFC 6455 §4.1).
    await expect(rawWs(url, ["something-else"])).rejects.toThrow(/no subprotocol/);
    // A listener told to accept only "mqtt".
    const strict = await startWsBroker({ protocols: ["mqtt"] });
    await expect(rawWs(`${strict.base}/mqtt`, ["mqttv3.1"])).rejects.toThrow(/no subprotocol/);
    // The transport of the broker is a WebSocketTransport with the chosen one.
    expect(transportOf(b.conns[0]).ws.protocol).toBe("mqtt");
  });

  it("a wrong path gets 404 and the broker goes on; a plain request gets 426", async () => {
    const b = await startWsBroker();
    const good = await mqttjs(`${b.base}/mqtt`, { clientId: "good" });
    await good.subscribeAsync("p/#", { qos: 1 });
    await expect(rawWs(`${b.base}/other`)).rejects.toThrow(/404/);
    await expect(rawWs(`${b.base}/`)).rejects.toThrow(/404/);
    await expect(
      connectWebSocket("127.0.0.1", b.port, { path: "/nope", connectTimeoutMs: 3000 }),
    ).rejects.toMatchObject({ name: "WebSocketUpgradeError", statusCode: 404 });
    expect((await httpGet(b.port, "/mqtt")).status).toBe(426);
    expect((await httpGet(b.port, "/mqtt")).headers.upgrade).toBe("websocket");
    expect((await httpGet(b.port, "/elsewhere")).status).toBe(404);
    // A query string does not change the path.
    const q = await rawWs(`${b.base}/mqtt?token=1`);
    q.send(connect("query"));
    await until(() => q.packets.length === 1, 3000, "CONNACK");
    const got = nextMessage(good, "p/1");
    await (await mqttjs(`${b.base}/mqtt`, { clientId: "pub" })).publishAsync("p/1", "still here", {
      qos: 1,
    });
    expect((await got).payload.toString()).toBe("still here");
  });

  it("with anyPath, any path is served (MyQtt clients use /)", async () => {
    const b = await startWsBroker({ anyPath: true });
    for (const path of ["/", "/mqtt", "/some/where"]) {
      const raw = await rawWs(`${b.base}${path}`, []);
      raw.send(connect(`any${path.replaceAll("/", "-")}`));
      await until(() => raw.packets.length === 1, 3000, "CONNACK");
    }
    expect(b.conns).toHaveLength(3);
  });

  it("serves a custom path", async () => {
    const b = await startWsBroker({ path: "ws" });
    await expect(rawWs(`${b.base}/mqtt`)).rejects.toThrow(/404/);
    const c = await mqttjs(`${b.base}/ws`, { clientId: "custom-path" });
    expect(c.connected).toBe(true);
  });
});

describe("misbehaving peers", () => {
  it("a client sending garbage is closed alone", async () => {
    const b = await startWsBroker();
    const good = await mqttjs(`${b.base}/mqtt`, { clientId: "good" });
    const bad = await rawWs(`${b.base}/mqtt`);
    bad.sendBytes(new Uint8Array([0xf0, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    await until(() => bad.closed, 5000, "the bad client closed");
    // After a CONNECT too.
    const bad2 = await rawWs(`${b.base}/mqtt`);
    bad2.send(connect("bad2"));
    await until(() => bad2.packets.length === 1, 3000, "CONNACK");
    bad2.sendBytes(new Uint8Array([0x00, 0x00]));
    await until(() => bad2.closed, 5000, "the second bad client closed");
    expect(good.connected).toBe(true);
    const got = nextMessage(good, "g/1");
    await good.subscribeAsync("g/#", { qos: 0 });
    await good.publishAsync("g/1", "alive", { qos: 0 });
    expect((await got).payload.toString()).toBe("alive");
    await until(() => b.listener.connections === 1, 3000, "the count back to 1");
  });

  it("a frame over maxPayload closes that connection only (1009)", async () => {
    const b = await startWsBroker({ maxPayload: 64 * 1024 });
    const good = await mqttjs(`${b.base}/mqtt`, { clientId: "good" });
    const big = await rawWs(`${b.base}/mqtt`);
    big.send(connect("big"));
    await until(() => big.packets.length === 1, 3000, "CONNACK");
    big.sendBytes(new Uint8Array(100 * 1024));
    await until(() => big.closed, 5000, "the oversized client closed");
    expect(big.closeCode).toBe(1009);
    // Just under the limit is fine, split or not.
    const ok = await rawWs(`${b.base}/mqtt`);
    ok.send(connect("ok"));
    await until(() => ok.packets.length === 1, 3000, "CONNACK");
    ok.send({
      type: PacketType.PUBLISH,
      topic: "m/1",
      payload: new Uint8Array(60 * 1024),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 3,
    });
    await until(() => ok.packets.length === 2, 3000, "PUBACK");
    expect(good.connected).toBe(true);
    expect(b.logs.some((l) => /1009|Max payload/i.test(l))).toBe(true);
  });

  it("a client that opens the WebSocket and never speaks does not hold anything else up", async () => {
    const b = await startWsBroker();
    const silent = await rawWs(`${b.base}/mqtt`);
    const c = await mqttjs(`${b.base}/mqtt`, { clientId: "talker" });
    expect(c.connected).toBe(true);
    expect(b.listener.connections).toBe(2);
    silent.ws.terminate();
    await until(() => b.listener.connections === 1, 3000, "the count back to 1");
  });
});

describe("the listener", () => {
  it("counts connections, reports ws, and close() stops accepting while open ones go on", async () => {
    const b = await startWsBroker();
    expect(b.listener.connections).toBe(0);
    const c1 = await mqttjs(`${b.base}/mqtt`, { clientId: "c1" });
    const c2 = await mqttjs(`${b.base}/mqtt`, { clientId: "c2" });
    expect(b.listener.connections).toBe(2);
    await c2.endAsync();
    await until(() => b.listener.connections === 1, 3000, "one connection");
    expect(b.logs.some((l) => l.includes(`listening on ws://127.0.0.1:${b.port}`))).toBe(true);
    await b.listener.close();
    await expect(rawWs(`${b.base}/mqtt`)).rejects.toThrow();
    await c1.subscribeAsync("still/#");
    const got = nextMessage(c1, "still/open");
    await c1.publishAsync("still/open", "yes");
    expect((await got).payload.toString()).toBe("yes");
  });

  it("rejects when the port is taken", async () => {
    const b = await startWsBroker();
    await expect(listenWebSocket("127.0.0.1", b.port, () => {})).rejects.toThrow(/EADDRINUSE/);
  });

  it("serves MQTT on an application's own http server, leaving its other requests alone", async () => {
    const app = createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("app");
    });
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", () => r()));
    onCleanup(() => new Promise<void>((r) => app.close(() => r())));
    app.on("connection", (s) => onCleanup(() => s.destroy()));
    const port = (app.address() as AddressInfo).port;
    const b = await startWsBroker({ server: app });
    expect(b.port).toBe(port);
    expect((await httpGet(port, "/")).status).toBe(200);
    const c = await mqttjs(`ws://127.0.0.1:${port}/mqtt`, { clientId: "embedded" });
    expect(c.connected).toBe(true);
    await expect(rawWs(`ws://127.0.0.1:${port}/nope`)).rejects.toThrow(/404/);
    await b.listener.close();
    expect(app.listening).toBe(true);
    expect((await httpGet(port, "/")).status).toBe(200);
  });
});

describe("the transport", () => {
  /** A WebSocketTransport on each end of a ws connection of its own. */
  async function pair(): Promise<{ server: WebSocketTransport; client: WebSocketTransport }> {
    let server: WebSocketTransport | null = null;
    const listener = await listenWebSocket("127.0.0.1", 0, (t) => {
      server = t as WebSocketTransport;
    });
    onCleanup(() => listener.close());
    const client = (await connectWebSocket("127.0.0.1", listener.port)) as WebSocketTransport;
    onCleanup(() => client.destroy());
    await until(() => server !== null, 3000, "the server side");
    onCleanup(() => server!.destroy());
    return { server: server!, client };
  }

  it("write() returns false over the high-water mark and onDrain fires when the peer reads", async () => {
    const { server, client } = await pair();
    let received = 0;
    let drains = 0;
    client.start({ onData: (c) => (received += c.length), onDrain() {}, onClose() {} });
    server.start({ onData() {}, onDrain: () => drains++, onClose() {} });
    expect(server.write(new Uint8Array(100))).toBe(true);
    client.pause();
    await sleep(20);
    const chunk = new Uint8Array(1024 * 1024);
    let writes = 0;
    let accepted = true;
    // The kernel's buffers fill; the bytes pile up in the transport.
    while (writes < 64 && server.writableLength < 4 * 1024 * 1024) {
      accepted = server.write(chunk);
      writes++;
      await sleep(1);
    }
    expect(accepted).toBe(false);
    // Writes the kernel took at once drained already; the last ones wait for the reader.
    const before = drains;
    await sleep(50);
    expect(drains).toBe(before);
    expect(server.writableLength).toBeGreaterThan(1024 * 1024);
    client.resume();
    await until(() => drains === before + 1, 10_000, "drain");
    expect(server.writableLength).toBe(0);
    await until(() => received === 100 + writes * chunk.length, 10_000, "every byte");
  });

  it("pause() stops reading until resume(); text and binary arrive as bytes", async () => {
    const { server, client } = await pair();
    const got: number[] = [];
    server.start({ onData: (c) => got.push(...c), onDrain() {}, onClose() {} });
    client.start({ onData() {}, onDrain() {}, onClose() {} });
    server.pause();
    await sleep(20);
    for (let i = 0; i < 5; i++) client.write(new Uint8Array([i]));
    client.ws.send(Buffer.from([5]), { binary: false });
    await sleep(100);
    expect(got).toEqual([]);
    server.resume();
    await until(() => got.length === 6, 3000, "the bytes after resume");
    expect(got).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("paused, still sees the peer close (a broker hook pending): what was read comes first", async () => {
    const { server, client } = await pair();
    const got: number[] = [];
    let closedAfter = -1;
    server.start({
      onData: (c) => got.push(...c),
      onDrain() {},
      onClose: () => {
        closedAfter = got.length;
      },
    });
    client.start({ onData() {}, onDrain() {}, onClose() {} });
    server.pause();
    await sleep(20);
    client.write(new Uint8Array([7, 8, 9]));
    client.end();
    await until(() => closedAfter >= 0, 3000, "the close, while paused");
    expect(got).toEqual([7, 8, 9]);
    expect(closedAfter).toBe(3);
  });

  it("end() closes cleanly after the written bytes; destroy(error) reports that error", async () => {
    const { server, client } = await pair();
    let received = 0;
    const closes: Array<Error | null> = [];
    client.start({
      onData: (c) => (received += c.length),
      onDrain() {},
      onClose: (e) => closes.push(e),
    });
    const serverCloses: Array<Error | null> = [];
    server.start({ onData() {}, onDrain() {}, onClose: (e) => serverCloses.push(e) });
    server.write(new Uint8Array(300_000));
    server.end();
    await until(() => closes.length === 1 && serverCloses.length === 1, 5000, "both closed");
    expect(received).toBe(300_000);
    expect(closes).toEqual([null]);
    expect(serverCloses).toEqual([null]);
    expect(server.closed && client.closed).toBe(true);
    expect(server.write(new Uint8Array(1))).toBe(false);

    const second = await pair();
    const why = new Error("enough");
    const seen: Array<Error | null> = [];
    second.server.start({ onData() {}, onDrain() {}, onClose: (e) => seen.push(e) });
    second.client.start({ onData() {}, onDrain() {}, onClose() {} });
    second.server.destroy(why);
    await until(() => seen.length === 1, 3000, "closed");
    expect(seen[0]).toBe(why);
  });

  it("bytes and a close that come before start() are handed over after it", async () => {
    const { server, client } = await pair();
    client.start({ onData() {}, onDrain() {}, onClose() {} });
    client.write(new Uint8Array([1, 2, 3]));
    client.end();
    await until(() => server.closed, 3000, "the server side closed");
    const got: number[] = [];
    const closes: Array<Error | null> = [];
    server.start({ onData: (c) => got.push(...c), onDrain() {}, onClose: (e) => closes.push(e) });
    expect(got).toEqual([]); // not from inside start()
    await until(() => closes.length === 1, 3000, "the close");
    expect(got).toEqual([1, 2, 3]);
    expect(closes).toEqual([null]);
  });

  it("knows both addresses and is not TLS", async () => {
    const { server, client } = await pair();
    expect(server.remoteAddress).toBe("127.0.0.1");
    expect(server.localAddress).toBe("127.0.0.1");
    expect(server.remotePort).toBe(client.localPort);
    expect(client.remotePort).toBe(server.localPort);
    expect(server.tls).toBe(false);
    expect(server.tlsPeer()).toBeNull();
    expect(server.serverName).toBe(`127.0.0.1`);
    expect(client.serverName).toBeNull();
    expect(server.ws).toBeInstanceOf(WebSocket);
  });

  it("a write longer than maxFrameSize goes out as several messages", async () => {
    let server: WebSocketTransport | null = null;
    const listener = await listenWebSocket(
      "127.0.0.1",
      0,
      (t) => {
        server = t as WebSocketTransport;
      },
      { maxFrameSize: 1000 },
    );
    onCleanup(() => listener.close());
    const raw = await rawWs(`ws://127.0.0.1:${listener.port}/mqtt`);
    await until(() => server !== null, 3000, "the server side");
    server!.start({ onData() {}, onDrain() {}, onClose() {} });
    const ping = encode({ type: PacketType.PINGRESP }, { protocolVersion: 4 });
    const bytes = Buffer.concat(Array.from({ length: 1250 }, () => ping));
    server!.write(bytes);
    await until(() => raw.packets.length === 1250, 3000, "every packet");
    expect(raw.frames.map((f) => f.size)).toEqual([1000, 1000, 500]);
    server!.destroy();
  });
});
