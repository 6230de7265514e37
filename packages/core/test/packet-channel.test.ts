import { createServer, type Server, type Socket } from "node:net";
import { Decoder, encode, type Packet, PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import { connectTcp, listenTcp, PacketChannel, type Transport } from "../src/index.js";
import { tcpPair } from "./tcp-pair.js";

/** A listening core transport and a raw client socket connected to it. */
async function pair(): Promise<{ server: Transport; client: Socket }> {
  const { server, client, listener } = await tcpPair();
  expect(listener.connections).toBe(1);
  return { server, client };
}

const publish = (i: number): Packet => ({
  type: PacketType.PUBLISH,
  topic: `t/${i}`,
  payload: Uint8Array.of(i & 0xff),
  qos: 0,
  retain: false,
  dup: false,
});

describe("TCP transport", () => {
  it("binds port 0 to a free port and carries bytes both ways", async () => {
    const { server, client } = await pair();
    const received: Buffer[] = [];
    server.start({
      onData: (c) => received.push(Buffer.from(c)),
      onDrain: () => {},
      onClose: () => {},
    });
    client.write("hello");
    await new Promise((r) => setTimeout(r, 30));
    expect(Buffer.concat(received).toString()).toBe("hello");
    expect(server.remoteAddress).toBe("127.0.0.1");
    expect(server.localPort).toBeGreaterThan(0);
    const back = new Promise<string>((r) => client.once("data", (d) => r(d.toString())));
    server.write(Buffer.from("world"));
    expect(await back).toBe("world");
  });

  it("reports a bind failure", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    onCleanup(() => new Promise((r) => blocker.close(r)));
    const port = (blocker.address() as { port: number }).port;
    await expect(listenTcp("127.0.0.1", port, () => {})).rejects.toThrow(/EADDRINUSE/);
  });

  it("connectTcp fails cleanly on a closed port", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    await expect(connectTcp("127.0.0.1", port)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe("PacketChannel", () => {
  it("packs a burst of packets into one write", async () => {
    const { server, client } = await pair();
    const channel = new PacketChannel(server, {
      onPacket: () => undefined,
      onError: () => {},
      onClose: () => {},
    });
    const chunks: Buffer[] = [];
    client.on("data", (d) => chunks.push(d));
    for (let i = 0; i < 100; i++) channel.send(publish(i));
    await new Promise((r) => setTimeout(r, 50));
    const all = Buffer.concat(chunks);
    const decoded: Packet[] = [];
    new Decoder((p) => decoded.push(p)).push(all);
    expect(decoded.map((p) => (p.type === PacketType.PUBLISH ? p.topic : ""))).toEqual(
      Array.from({ length: 100 }, (_, i) => `t/${i}`),
    );
    // 100 packets, written by one socket write: at most a few TCP reads on the other side
    expect(chunks.length).toBeLessThanOrEqual(2);
  });

  it("hands packets over in order and waits for an async handler before the next", async () => {
    const { server, client } = await pair();
    const seen: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    new PacketChannel(server, {
      onPacket: (p) => {
        if (p.type !== PacketType.PUBLISH) return undefined;
        seen.push(`start ${p.topic}`);
        if (p.topic === "t/0") {
          return gate.then(() => {
            seen.push("end t/0");
          });
        }
        return undefined;
      },
      onError: () => {},
      onClose: () => {},
    });
    client.write(Buffer.concat([0, 1, 2].map((i) => Buffer.from(encode(publish(i))))));
    await new Promise((r) => setTimeout(r, 30));
    expect(seen).toEqual(["start t/0"]);
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(["start t/0", "end t/0", "start t/1", "start t/2"]);
  });

  it("reports a malformed stream once and delivers what came before it", async () => {
    const { server, client } = await pair();
    const packets: Packet[] = [];
    const errors: unknown[] = [];
    new PacketChannel(server, {
      onPacket: (p) => void packets.push(p),
      onError: (e) => errors.push(e),
      onClose: () => {},
    });
    client.write(
      Buffer.concat([
        Buffer.from(encode(publish(1))),
        Buffer.from([0x00, 0x00]),
        Buffer.from(encode(publish(2))),
      ]),
    );
    await new Promise((r) => setTimeout(r, 30));
    expect(packets).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "INVALID_PACKET_TYPE", reasonCode: 0x81 });
  });

  it("refuses to send a packet over the peer's maximum size, and sends nothing of it", async () => {
    const { server, client } = await pair();
    const channel = new PacketChannel(server, {
      onPacket: () => undefined,
      onError: () => {},
      onClose: () => {},
    });
    channel.maximumOutgoingPacketSize = 10;
    expect(() => channel.send({ ...publish(1), payload: new Uint8Array(100) } as Packet)).toThrow(
      /maximum packet size/,
    );
    const got: Buffer[] = [];
    client.on("data", (d) => got.push(d));
    channel.send({ type: PacketType.PINGRESP });
    await new Promise((r) => setTimeout(r, 30));
    expect(Buffer.concat(got)).toEqual(Buffer.from([0xd0, 0x00]));
  });

  it("reports the close of the peer", async () => {
    const { server, client } = await pair();
    const closed = new Promise<Error | null>((resolve) => {
      new PacketChannel(server, { onPacket: () => undefined, onError: () => {}, onClose: resolve });
    });
    client.end();
    expect(await closed).toBeNull();
  });

  it("stops reading from a peer that does not read what it is sent, until it drains", async () => {
    const { server, client } = await pair();
    const received: Packet[] = [];
    const channel = new PacketChannel(
      server,
      { onPacket: (p) => void received.push(p), onError: () => {}, onClose: () => {} },
      { pauseReadingAbove: 64 * 1024 },
    );
    client.pause(); // the peer stops reading
    const big = { ...publish(0), payload: new Uint8Array(32 * 1024) } as Packet;
    for (let i = 0; i < 200 && channel.bufferedOutgoing < 1024 * 1024; i++) {
      channel.send(big);
      channel.flush();
      await new Promise((r) => setImmediate(r));
    }
    expect(channel.bufferedOutgoing).toBeGreaterThan(64 * 1024);
    client.write(Buffer.from(encode(publish(7))));
    await new Promise((r) => setTimeout(r, 100));
    expect(received).toHaveLength(0); // held back: we are not reading from it
    client.resume(); // it reads again; our buffer drains and reading resumes
    await new Promise<void>((resolve) => {
      const check = (): void => (received.length > 0 ? resolve() : void setTimeout(check, 10));
      check();
    });
    expect(received[0]).toMatchObject({ type: PacketType.PUBLISH, topic: "t/7" });
  });
});
