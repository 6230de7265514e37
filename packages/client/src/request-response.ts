import { randomBytes } from "node:crypto";
import type { Msg } from "@myqtt/core";
import type { MqttClient, PublishOptions } from "./client.js";
import { AbortedError, NotConnectedError, TimeoutError } from "./errors.js";
import type { Subscription } from "./subscription.js";
import type { Timers } from "./timers.js";

/** Options of a request: a publish, and how long to wait for the response. */
export type RequestOptions = PublishOptions & { timeoutMs?: number };

function bytesKey(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? "" : Buffer.from(bytes).toString("base64");
}

/**
 * MQTT 5.0 request/response for one client: requests carry a Response Topic (one per client,
 * subscribed once) and fresh Correlation Data; each response goes to the request whose
 * correlation data it echoes.
 */
export class RequestResponse {
  private subscription: Promise<Subscription> | null = null;
  private readonly pending = new Map<string, (msg: Msg) => void>();

  constructor(
    private readonly client: MqttClient,
    private readonly timers: Timers,
  ) {}

  /** Requests waiting for their response. */
  get waiting(): number {
    return this.pending.size;
  }

  async request(
    topic: string,
    payload: string | Uint8Array,
    options: RequestOptions,
  ): Promise<Msg> {
    if (this.client.options.protocolVersion !== 5)
      throw new NotConnectedError("request/response needs MQTT 5.0");
    const responseTopic = `myqtt/response/${this.client.clientId}`;
    await this.listen(responseTopic);
    const correlationData = randomBytes(16);
    const key = bytesKey(correlationData);
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise<Msg>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        this.pending.delete(key);
        reject(new TimeoutError(`no response on ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(key, (msg) => {
        this.timers.clearTimeout(timer);
        resolve(msg);
      });
      options.signal?.addEventListener("abort", () => {
        if (this.pending.delete(key)) {
          this.timers.clearTimeout(timer);
          reject(new AbortedError(options.signal?.reason));
        }
      });
      this.client
        .publish(topic, payload, {
          ...options,
          qos: options.qos ?? 1,
          properties: { ...options.properties, responseTopic, correlationData },
        })
        .catch((error: unknown) => {
          this.pending.delete(key);
          this.timers.clearTimeout(timer);
          reject(error);
        });
    });
  }

  /** Subscribes to the response topic once, and routes what arrives there. */
  private listen(responseTopic: string): Promise<Subscription> {
    if (this.subscription !== null) return this.subscription;
    const subscribed = this.client.subscribe(responseTopic, { qos: 1 }).then((sub) => {
      void (async () => {
        for await (const msg of sub) {
          const key = bytesKey(msg.properties.correlationData);
          const deliver = this.pending.get(key);
          if (deliver !== undefined) {
            this.pending.delete(key);
            deliver(msg);
          }
        }
      })();
      return sub;
    });
    this.subscription = subscribed;
    subscribed.catch(() => {
      if (this.subscription === subscribed) this.subscription = null;
    });
    return subscribed;
  }
}
