// Shared by the broker's integration tests: a broker on a free port in a fresh context, MQTT.js
// clients, and a raw client speaking packets through the codec for the negative paths.
import { type Socket, connect as tcpConnect } from "node:net";
import { Decoder, encode, type Packet, type ProtocolVersion } from "@myqtt/codec";
import { Ctx, LogLevel } from "@myqtt/core";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { onCleanup } from "../../../tooling/testing/cleanup.mjs";
import { type BrokerOptions, createListener, type Listener } from "../src/index.js";

export { onCleanup } from "../../../tooling/testing/cleanup.mjs";
export { sleep, until } from "../../../tooling/testing/wait.mjs";

export interface TestBroker {
  ctx: Ctx;
  listener: Listener;
  port: number;
  url: string;
  /** Log lines of the broker, "level file message". */
  logs: string[];
}

/** A broker in a fresh context on 127.0.0.1 and a free port; stopped after the test. */
export async function startBroker(
  options: BrokerOptions = {},
  setup?: (ctx: Ctx) => void,
): Promise<TestBroker> {
  const ctx = new Ctx();
  await ctx.init();
  const logs: string[] = [];
  ctx.setLogHandler((_c, file, _line, level, message) => {
    const tag =
      level === LogLevel.CRITICAL ? "critical" : level === LogLevel.WARNING ? "warning" : "debug";
    logs.push(`${tag} ${file} ${message}`);
  });
  setup?.(ctx);
  const listener = await createListener(ctx, "127.0.0.1", "0", options);
  if (!listener.isOk()) throw new Error(`broker did not start: ${listener.errorMsg}`);
  onCleanup(() => ctx.exit());
  return { ctx, listener, port: listener.port, url: `mqtt://127.0.0.1:${listener.port}`, logs };
}

/** An MQTT.js client connected to `broker` (3.1.1 unless protocolVersion says otherwise). */
export async function client(
  broker: TestBroker,
  options: IClientOptions = {},
): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.url, {
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
  onCleanup(() => c.endAsync(true));
  return c;
}

/**
 * A client that speaks raw packets: `send` encodes with the codec, `next` waits for the next
 * decoded packet, `closed` resolves when the broker closes the socket.
 */
export class RawClient {
  readonly packets: Packet[] = [];
  readonly closed: Promise<void>;
  private readonly socket: Socket;
  private readonly decoder: Decoder;
  private waiters: Array<() => void> = [];
  private isClosed = false;

  private constructor(socket: Socket, version: ProtocolVersion) {
    this.socket = socket;
    this.decoder = new Decoder(
      (p) => {
        this.packets.push(p);
        this.wake();
      },
      { protocolVersion: version },
    );
    socket.on("data", (d) => {
      try {
        this.decoder.push(d);
      } catch {
        socket.destroy();
      }
    });
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
    socket.on("error", () => {});
  }

  static async connect(broker: TestBroker, version: ProtocolVersion = 4): Promise<RawClient> {
    const socket = tcpConnect(broker.port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const raw = new RawClient(socket, version);
    onCleanup(() => socket.destroy());
    return raw;
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Sends a packet encoded for `version` (default: the client's). */
  send(packet: Packet, version?: ProtocolVersion): void {
    this.socket.write(encode(packet, { protocolVersion: version ?? this.decoder.protocolVersion }));
  }

  /** Sends raw bytes. */
  write(bytes: Uint8Array | number[]): void {
    this.socket.write(Uint8Array.from(bytes));
  }

  /** The next packet received (in order), or null when the socket closed first. */
  async next(ms = 3000): Promise<Packet | null> {
    const deadline = Date.now() + ms;
    while (this.packets.length === 0) {
      if (this.isClosed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("no packet arrived in time");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.packets.shift()!;
  }

  /** Sends CONNECT and returns the CONNACK. */
  async connect(fields: Partial<Extract<Packet, { type: 1 }>> = {}): Promise<Packet | null> {
    const version = fields.protocolVersion ?? this.decoder.protocolVersion;
    this.send(
      {
        type: 1,
        protocolVersion: version,
        clean: true,
        keepAlive: 60,
        clientId: `raw-${Math.random().toString(36).slice(2)}`,
        ...fields,
      } as Packet,
      version,
    );
    return this.next();
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
