// The TCP transport of client and broker: TCP_NODELAY on both ends, because packets are already
// batched into one write per turn and Nagle's algorithm would only hold the next one back
// (about 40 ms behind a delayed ACK).
import { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import { sleep, until } from "../../../tooling/testing/wait.mjs";
import { connectTcp, listenTcp, type SocketTransport, type Transport } from "../src/index.js";
import { tcpPair } from "./tcp-pair.js";

/** Records the sockets on which setNoDelay(true) was called while `fn` runs and after. */
function watchNoDelay(): Set<Socket> {
  const original = Socket.prototype.setNoDelay;
  const sockets = new Set<Socket>();
  Socket.prototype.setNoDelay = function (this: Socket, noDelay?: boolean) {
    if (noDelay !== false) sockets.add(this);
    return original.call(this, noDelay);
  };
  onCleanup(() => {
    Socket.prototype.setNoDelay = original;
  });
  return sockets;
}

describe("TCP transport", () => {
  it("sets TCP_NODELAY on the sockets connectTcp makes", async () => {
    const accepted: Transport[] = [];
    const listener = await listenTcp("127.0.0.1", 0, (t) => accepted.push(t));
    onCleanup(() => listener.close());
    const sockets = watchNoDelay();
    const transport = (await connectTcp("127.0.0.1", listener.port)) as SocketTransport;
    onCleanup(() => transport.destroy());
    expect(sockets.has(transport.socket)).toBe(true);
  });

  it("sets TCP_NODELAY on the sockets listenTcp accepts", async () => {
    // Node sets it on an accepted socket's handle, not through Socket#setNoDelay: watch the
    // handle class (found through a first connection) before the second one is accepted.
    const accepted: SocketTransport[] = [];
    const listener = await listenTcp("127.0.0.1", 0, (t) => accepted.push(t as SocketTransport));
    onCleanup(() => listener.close());
    const first = (await connectTcp("127.0.0.1", listener.port)) as SocketTransport;
    onCleanup(() => first.destroy());
    const handles = new Set<unknown>();
    const handleOf = (s: Socket): { setNoDelay(on: boolean): number } =>
      (s as unknown as { _handle: { setNoDelay(on: boolean): number } })._handle;
    const proto = Object.getPrototypeOf(handleOf(first.socket)) as {
      setNoDelay(on: boolean): number;
    };
    const original = proto.setNoDelay;
    proto.setNoDelay = function (this: unknown, on: boolean) {
      if (on) handles.add(this);
      return original.call(this, on);
    };
    onCleanup(() => {
      proto.setNoDelay = original;
    });
    const second = await connectTcp("127.0.0.1", listener.port);
    onCleanup(() => second.destroy());
    const deadline = Date.now() + 2000;
    while (accepted.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(accepted).toHaveLength(2);
    expect(handles.has(handleOf(accepted[1]!.socket))).toBe(true);
  });
});

describe("a server transport paused by its consumer", () => {
  /** The server end of a pair, started with handlers that record what they get. */
  async function started() {
    const { server, client } = await tcpPair();
    const seen = { chunks: [] as Buffer[], closed: false, closedAfter: -1 };
    server.start({
      onData: (chunk) => seen.chunks.push(Buffer.from(chunk)),
      onClose: () => {
        seen.closed = true;
        seen.closedAfter = seen.chunks.length;
      },
      onDrain: () => {},
    });
    await new Promise<void>((resolve) => client.once("connect", () => resolve()));
    return { server, client, seen };
  }

  it("still sees the peer close (a broker hook pending): what was read comes first, then the close", async () => {
    const { server, client, seen } = await started();
    server.pause();
    client.end("last words");
    await until(() => seen.closed, 2000, "the close, while paused");
    expect(Buffer.concat(seen.chunks).toString()).toBe("last words");
    expect(seen.closedAfter).toBe(seen.chunks.length);
  });

  it("hands over nothing while paused, everything in order once resumed; stops reading at 16 KiB", async () => {
    const { server, client, seen } = await started();
    server.pause();
    const sent = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < sent.length; i++) sent[i] = (i * 13) & 0xff;
    client.write(sent);
    await sleep(200);
    expect(seen.chunks).toEqual([]);
    // 16 KiB held, plus at most the read that crossed the line and the one Node's stream
    // buffer takes before it stops (64 KiB each).
    expect((server as SocketTransport).socket.bytesRead).toBeLessThanOrEqual(16_384 + 2 * 65_536);
    server.resume();
    await until(
      () => seen.chunks.reduce((n, c) => n + c.length, 0) === sent.length,
      5000,
      "all bytes",
    );
    expect(Buffer.concat(seen.chunks).equals(sent)).toBe(true);
  });
});
