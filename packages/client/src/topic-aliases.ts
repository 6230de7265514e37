import type { PublishPacket } from "@myqtt/codec";

/** Topic aliases towards the server, for one connection (v5 3.3.2.3.4). */
export class OutboundAliases {
  private readonly byTopic = new Map<string, number>();

  constructor(private readonly maximum: number) {}

  /** The packet to send: with its alias, and an empty topic once the alias is known to the server. */
  apply(packet: PublishPacket): PublishPacket {
    if (this.maximum === 0 || packet.topic.length === 0) return packet;
    const known = this.byTopic.get(packet.topic);
    if (known !== undefined) {
      return { ...packet, topic: "", properties: { ...packet.properties, topicAlias: known } };
    }
    if (this.byTopic.size >= this.maximum) return packet;
    const alias = this.byTopic.size + 1;
    this.byTopic.set(packet.topic, alias);
    return { ...packet, properties: { ...packet.properties, topicAlias: alias } };
  }

  /** The packet that carried a new alias was not sent: forget the alias. */
  forget(topic: string): void {
    if (this.byTopic.get(topic) === this.byTopic.size) this.byTopic.delete(topic);
  }
}

/** Topic aliases from the server, for one connection. */
export class InboundAliases {
  private readonly byAlias = new Map<number, string>();

  constructor(private readonly maximum: number) {}

  /** The topic of `packet`, or null when its alias is invalid (a protocol error). */
  resolve(packet: PublishPacket): string | null {
    const alias = packet.properties?.topicAlias;
    if (alias === undefined) return packet.topic;
    if (alias > this.maximum) return null;
    if (packet.topic.length > 0) {
      this.byAlias.set(alias, packet.topic);
      return packet.topic;
    }
    return this.byAlias.get(alias) ?? null;
  }
}
