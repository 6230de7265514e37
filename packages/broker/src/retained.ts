import { hasWildcard, match } from "@myqtt/codec";
import { type BrokerMessage, detach, isExpired } from "./message.js";
import type { MessageMemory } from "./message-memory.js";

/**
 * Retained messages by topic. A retained publish replaces the topic's message, whatever its
 * QoS; an empty payload clears it [MQTT-3.3.1-10]; an expired one is dropped when met.
 */
export class RetainedStore {
  private readonly byTopic = new Map<string, BrokerMessage>();

  constructor(private readonly memory: MessageMemory) {}

  get size(): number {
    return this.byTopic.size;
  }

  /** Stores or clears the retained message of `msg.topic`. */
  set(msg: BrokerMessage): void {
    this.delete(msg.topic);
    if (msg.payload.length === 0) return;
    // Kept until replaced: its own bytes only, not the network chunk it arrived in.
    detach(msg);
    this.byTopic.set(msg.topic, msg);
    this.memory.hold(msg);
  }

  get(topic: string): BrokerMessage | undefined {
    return this.byTopic.get(topic);
  }

  delete(topic: string): boolean {
    const old = this.byTopic.get(topic);
    if (old === undefined) return false;
    this.byTopic.delete(topic);
    this.memory.release(old);
    return true;
  }

  /** The retained messages whose topic matches `topicFilter`, expired ones removed. */
  match(topicFilter: string, now: number): BrokerMessage[] {
    const out: BrokerMessage[] = [];
    if (!hasWildcard(topicFilter)) {
      const msg = this.byTopic.get(topicFilter);
      if (msg !== undefined) {
        if (isExpired(msg, now)) this.delete(topicFilter);
        else out.push(msg);
      }
      return out;
    }
    for (const [topic, msg] of this.byTopic) {
      if (!match(topicFilter, topic)) continue;
      if (isExpired(msg, now)) this.delete(topic);
      else out.push(msg);
    }
    return out;
  }

  /** Every retained topic, for administration. */
  topics(): IterableIterator<string> {
    return this.byTopic.keys();
  }

  clear(): void {
    for (const msg of this.byTopic.values()) this.memory.release(msg);
    this.byTopic.clear();
  }
}
