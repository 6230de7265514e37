// When a PacketChannel writes what it was given: the two flush timings, observed as the writes
// a transport receives (no sockets, no clocks).
import { encode, type Packet, PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import {
  type FlushTiming,
  PacketChannel,
  type Transport,
  type TransportHandlers,
} from "../src/index.js";

/** A transport that records every write. */
class RecordingTransport implements Transport {
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 1;
  readonly localAddress = "127.0.0.1";
  readonly localPort = 2;
  readonly serverName = null;
  readonly tls = false;
  readonly writableLength = 0;
  closed = false;
  handlers: TransportHandlers | null = null;
  readonly writes: Uint8Array[] = [];
  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
  }
  write(chunk: Uint8Array): boolean {
    this.writes.push(chunk);
    return true;
  }
  pause(): void {}
  resume(): void {}
  end(): void {
    this.closed = true;
  }
  destroy(): void {
    this.closed = true;
  }
}

const pingreq = encode({ type: PacketType.PINGREQ });
const pingresp: Packet = { type: PacketType.PINGRESP };
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A channel that answers every packet it receives with a PINGRESP. */
function echo(timing?: FlushTiming): { transport: RecordingTransport; channel: PacketChannel } {
  const transport = new RecordingTransport();
  const channel: PacketChannel = new PacketChannel(
    transport,
    {
      onPacket: () => {
        channel.send(pingresp);
        return undefined;
      },
      onError: () => {},
      onClose: () => {},
    },
    timing === undefined ? {} : { flushTiming: timing },
  );
  return { transport, channel };
}

const publish = encode({
  type: PacketType.PUBLISH,
  topic: "t",
  payload: Uint8Array.of(1),
  qos: 0,
  retain: false,
  dup: false,
});
const puback = encode({ type: PacketType.PUBACK, packetId: 1 });

/** Two byte strings as one chunk. */
const both = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

/**
 * A broker in miniature: every packet read from `publisher` sends a PINGRESP to `subscriber`
 * (both on the default timing), as a routed message would be.
 */
function route(): { publisher: RecordingTransport; subscriber: RecordingTransport } {
  const subscriber = echo();
  const publisher = new RecordingTransport();
  new PacketChannel(publisher, {
    onPacket: () => {
      subscriber.channel.send(pingresp);
      return undefined;
    },
    onError: () => {},
    onClose: () => {},
  });
  return { publisher, subscriber: subscriber.transport };
}

/** Two quiet turns: the server channels' flush queue then counts the loop as lightly loaded. */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    echo().channel.send(pingresp);
    await nextTurn();
  }
}

describe("flush timing", () => {
  it("turn: the answers to a read leave in one write, in the check phase", async () => {
    const { transport } = echo();
    const five = new Uint8Array(pingreq.length * 5);
    for (let i = 0; i < 5; i++) five.set(pingreq, i * pingreq.length);
    transport.handlers!.onData(five);
    expect(transport.writes).toHaveLength(0);
    await nextTurn();
    expect(transport.writes).toHaveLength(1);
    expect(transport.writes[0]!.length).toBe(10);
  });

  it("turn: what several channels queue leaves once per channel per turn", async () => {
    const a = echo();
    const b = echo();
    for (let i = 0; i < 3; i++) {
      a.channel.send(pingresp);
      b.channel.send(pingresp);
    }
    await Promise.resolve();
    expect(a.transport.writes).toHaveLength(0);
    await nextTurn();
    expect(a.transport.writes.map((w) => w.length)).toEqual([6]);
    expect(b.transport.writes.map((w) => w.length)).toEqual([6]);
  });

  it("turn: while the loop is lightly loaded, the first read of a turn that brings one publish-flow packet flushes at once", async () => {
    await settle();
    const { publisher, subscriber } = route();
    publisher.handlers!.onData(publish);
    expect(subscriber.writes).toHaveLength(1);
    // At most once per turn: the turn's later reads are batched again, up to its end.
    publisher.handlers!.onData(puback);
    publisher.handlers!.onData(publish);
    expect(subscriber.writes).toHaveLength(1);
    await nextTurn();
    expect(subscriber.writes.map((w) => w.length)).toEqual([2, 4]);
  });

  it("turn: after a turn of more than two reads (a loaded loop), flushes wait for the turn's end", async () => {
    await settle();
    const { publisher, subscriber } = route();
    for (let i = 0; i < 3; i++) publisher.handlers!.onData(both(publish, publish));
    await nextTurn();
    expect(subscriber.writes).toHaveLength(1);
    publisher.handlers!.onData(publish);
    expect(subscriber.writes).toHaveLength(1);
    await nextTurn();
    expect(subscriber.writes).toHaveLength(2);
    // That turn had one read: the next one may flush early again.
    publisher.handlers!.onData(puback);
    expect(subscriber.writes).toHaveLength(3);
  });

  it("turn: a read of several packets, or of a connect or ping, waits for the end of the turn", async () => {
    await settle();
    const { publisher, subscriber } = route();
    publisher.handlers!.onData(both(publish, publish));
    publisher.handlers!.onData(pingreq);
    publisher.handlers!.onData(
      encode({
        type: PacketType.CONNECT,
        protocolVersion: 4,
        clientId: "c",
        clean: true,
        keepAlive: 0,
      }),
    );
    expect(subscriber.writes).toHaveLength(0);
    await nextTurn();
    expect(subscriber.writes.map((w) => w.length)).toEqual([8]);
  });

  it("task: packets sent in a row leave in one write at the end of the task, before the turn ends", async () => {
    const { transport, channel } = echo("task");
    for (let i = 0; i < 4; i++) channel.send(pingresp);
    expect(transport.writes).toHaveLength(0);
    await Promise.resolve();
    expect(transport.writes.map((w) => w.length)).toEqual([8]);
    channel.send(pingresp);
    await Promise.resolve();
    expect(transport.writes.map((w) => w.length)).toEqual([8, 2]);
  });
});
