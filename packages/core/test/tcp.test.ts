// The TCP transport of client and broker: TCP_NODELAY on both ends, because packets are already
// batched into one write per turn and Nagle's algorithm would only hold the next one back
// (about 40 ms behind a delayed ACK).
import { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import { connectTcp, listenTcp, type SocketTransport, type Transport } from "../src/index.js";

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
