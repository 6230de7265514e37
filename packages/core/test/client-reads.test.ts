// Client sockets (connectTcp) read every time into one shared buffer. What a consumer keeps
// must survive the next read, pausing must still hold reads back, and a peer's close must
// still be seen while the consumer is paused.
import { createServer, type Socket } from "node:net";
import { encode, type Packet, PacketType, type PublishPacket } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import { sleep, until } from "../../../tooling/testing/wait.mjs";
import { connectTcp, PacketChannel, type SocketTransport } from "../src/index.js";

/** A server whose single accepted socket the test drives by hand. */
async function peer(): Promise<{ port: number; socket: () => Socket }> {
  let accepted: Socket | null = null;
  const server = createServer((socket) => {
    accepted = socket;
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        accepted?.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return { port, socket: () => accepted! };
}

/** Waits for the accepted socket, and a little longer: the client is reading by then. */
async function accepted(server: { socket: () => Socket | null }): Promise<void> {
  await until(() => server.socket() !== null, 2000, "the accepted socket");
  await sleep(10);
}

async function connected(port: number): Promise<SocketTransport> {
  const transport = (await connectTcp("127.0.0.1", port)) as SocketTransport;
  onCleanup(() => transport.destroy());
  return transport;
}

/** Records what a started transport hands over. */
function record(transport: SocketTransport) {
  const seen = { chunks: [] as Buffer[], closed: false, closedAfter: -1 };
  transport.start({
    onData: (chunk) => seen.chunks.push(Buffer.from(chunk)),
    onDrain: () => {},
    onClose: () => {
      seen.closed = true;
      seen.closedAfter = seen.chunks.length;
    },
  });
  return seen;
}

/** A connected client transport, started and reading, with what it hands over recorded. */
async function reading() {
  const server = await peer();
  const transport = await connected(server.port);
  const seen = record(transport);
  await accepted(server);
  return { server, transport, seen };
}

const text = (chunks: Buffer[]): string => Buffer.concat(chunks).toString();

function publish(payload: string, correlation: string): Packet {
  return {
    type: PacketType.PUBLISH,
    topic: "t",
    payload: Buffer.from(payload),
    qos: 0,
    retain: false,
    dup: false,
    properties: { correlationData: Buffer.from(correlation) },
  };
}

describe("client socket reads into a shared buffer", () => {
  it("packets keep their payload and binary properties after later reads overwrote the buffer", async () => {
    const server = await peer();
    const transport = await connected(server.port);
    expect(transport.reusesReadBuffer).toBe(true);
    const packets: PublishPacket[] = [];
    new PacketChannel(
      transport,
      {
        onPacket: (packet) => {
          packets.push(packet as PublishPacket);
          return undefined;
        },
        onError: (error) => {
          throw error;
        },
        onClose: () => {},
      },
      { protocolVersion: 5, flushTiming: "task" },
    );
    await accepted(server);
    // Each write is read on its own, into the same bytes of the shared buffer.
    server.socket().write(encode(publish("first-payload", "first-corr"), { protocolVersion: 5 }));
    await until(() => packets.length === 1, 2000, "the first packet");
    server.socket().write(encode(publish("SECOND-PAYLOAD", "SECOND-CORR"), { protocolVersion: 5 }));
    await until(() => packets.length === 2, 2000, "the second packet");
    expect(Buffer.from(packets[0]!.payload).toString()).toBe("first-payload");
    expect(Buffer.from(packets[0]!.properties!.correlationData!).toString()).toBe("first-corr");
    expect(Buffer.from(packets[1]!.payload).toString()).toBe("SECOND-PAYLOAD");
  });

  it("paused, hands nothing over; resumed, everything read meanwhile comes first, in order", async () => {
    const { server, transport, seen } = await reading();
    transport.pause();
    for (const part of ["one,", "two,", "three,"]) {
      server.socket().write(part);
      await sleep(20);
    }
    expect(seen.chunks).toEqual([]);
    transport.resume();
    expect(text(seen.chunks)).toBe("one,two,three,");
    server.socket().write("four");
    await until(() => text(seen.chunks) === "one,two,three,four", 2000, "reading again");
  });

  it("paused, stops reading from the peer once it holds 16 KiB, and loses nothing", async () => {
    const { server, transport, seen } = await reading();
    transport.pause();
    const sent = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < sent.length; i++) sent[i] = (i * 7) & 0xff;
    server.socket().write(sent);
    await sleep(200);
    // 16 KiB held plus at most the one read that crossed the line (64 KiB).
    expect(transport.socket.bytesRead).toBeLessThanOrEqual(16_384 + 65_536);
    expect(seen.chunks).toEqual([]);
    transport.resume();
    await until(
      () => seen.chunks.reduce((n, c) => n + c.length, 0) === sent.length,
      5000,
      "all bytes",
    );
    expect(Buffer.concat(seen.chunks).equals(sent)).toBe(true);
  });

  it("paused, still sees the peer close: what was read comes first, then the close", async () => {
    const { server, transport, seen } = await reading();
    transport.pause();
    server.socket().end("last words");
    await until(() => seen.closed, 2000, "the close, while paused");
    expect(text(seen.chunks)).toBe("last words");
    expect(seen.closedAfter).toBe(seen.chunks.length);
  });

  it("destroyed while paused, drops what it holds: nothing is handed over after destroy()", async () => {
    const { server, transport, seen } = await reading();
    transport.pause();
    server.socket().write("unread");
    await until(() => transport.socket.bytesRead === 6, 2000, "the bytes read and held");
    transport.destroy();
    await until(() => seen.closed, 2000, "the close");
    expect(seen.chunks).toEqual([]);
  });

  it("pausing again while held reads are handed over keeps the rest for the next resume", async () => {
    const server = await peer();
    const transport = await connected(server.port);
    const chunks: string[] = [];
    transport.start({
      onData: (chunk) => {
        chunks.push(Buffer.from(chunk).toString());
        transport.pause();
      },
      onDrain: () => {},
      onClose: () => {},
    });
    await accepted(server);
    transport.pause();
    for (const part of ["a", "b", "c"]) {
      server.socket().write(part);
      await sleep(20);
    }
    expect(chunks).toEqual([]);
    transport.resume();
    expect(chunks).toEqual(["a"]);
    transport.resume();
    expect(chunks).toEqual(["a", "b"]);
    server.socket().write("d");
    await sleep(20);
    transport.resume();
    transport.resume();
    expect(chunks).toEqual(["a", "b", "c", "d"]);
  });
});
