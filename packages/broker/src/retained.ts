import { hasWildcard, match } from "@myqtt/codec";
import { type BrokerMessage, isExpired } from "./message.js";

/**
 * Retained messages by topic. A retained publish replaces the topic's message, whatever its
 * QoS; an empty payload clears it [MQTT-3.3.1-10]; an expired one is dropped when met.
 */
export class RetainedStore {
  private readonly byTopic = new Map<string, BrokerMessage>();

  get size(): number {
    return this.byTopic.size;
  }

  /** Stores or clears the retained message of `msg.topic`. */
  set(msg: BrokerMessage): void {
    if (msg.payload.length === 0) this.byTopic.delete(msg.topic);
    else this.byTopic.set(msg.topic, msg);
  }

  get(topic: string): BrokerMessage | undefined {
    return this.byTopic.get(topic);
  }

  delete(topic: string): boolean {
    return this.byTopic.delete(topic);
  }

  /** The retained messages whose topic matches `topicFilter`, expired ones removed. */
  match(topicFilter: string, now: number): BrokerMessage[] {
    const out: BrokerMessage[] = [];
    if (!hasWildcard(topicFilter)) {
      const msg = this.byTopic.get(topicFilter);
      if (msg !== undefined) {
        if (isExpired(msg, now)) this.byTopic.delete(topicFilter);
        else out.push(msg);
      }
      return out;
    }
    for (const [topic, msg] of this.byTopic) {
      if (!match(topicFilter, topic)) continue;
      if (isExpired(msg, now)) this.byTopic.delete(topic);
      else out.push(msg);
    }
    return out;
  }

  /** Every retained topic, for administration. */
  topics(): IterableIterator<string> {
    return this.byTopic.keys();
  }

  clear(): void {
    this.byTopic.clear();
  }
}
