import { PacketType, type PublishPacket, type QoS } from "@myqtt/codec";
import type { Storage } from "./storage.js";
import type { StoredDelivery } from "./types.js";

/** A message queued with offlinePub (the shape @myqtt/client's OfflinePublish uses). */
export interface StoredOfflinePublish {
  key: number;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
}

/** A client's unacknowledged QoS 1/2 publish (the shape @myqtt/client's InflightStore uses). */
export interface StoredInflightEntry {
  packetId: number;
  /** "publish": waiting for PUBACK/PUBREC; "pubrel": PUBREL sent, waiting for PUBCOMP. */
  state: "publish" | "pubrel";
  packet: PublishPacket;
}

/**
 * A durable in-flight store for @myqtt/client (`connect({ inflightStore })`): the client's
 * unacknowledged publishes are kept in a Storage, so they are sent again after the process
 * restarts, not only after a reconnect. Give clients their own storage (another directory or
 * Redis prefix) than a broker's: both key their data by client id.
 */
export class StorageInflightStore {
  /** The storage key of each packet id, per client id. */
  private readonly seqs = new Map<string, Map<number, number>>();

  constructor(private readonly storage: Storage) {}

  async load(clientId: string): Promise<StoredInflightEntry[]> {
    await this.storage.open();
    const client = await this.storage.readClient(clientId);
    const seqs = new Map<number, number>();
    this.seqs.set(clientId, seqs);
    const out: StoredInflightEntry[] = [];
    for (const d of client?.deliveries ?? []) {
      if (d.state === "queued" || d.packetId === 0) continue;
      seqs.set(d.packetId, d.seq);
      this.storage.advanceSeq(d.seq);
      const m = d.message;
      const packet: PublishPacket = {
        type: PacketType.PUBLISH,
        topic: m.topic,
        payload: m.payload,
        qos: d.qos,
        retain: d.retain,
        dup: false,
        packetId: d.packetId,
      };
      if (m.properties !== undefined) packet.properties = m.properties;
      out.push({ packetId: d.packetId, state: d.state, packet });
    }
    return out;
  }

  async put(clientId: string, entry: StoredInflightEntry): Promise<void> {
    let seqs = this.seqs.get(clientId);
    if (seqs === undefined) this.seqs.set(clientId, (seqs = new Map()));
    let seq = seqs.get(entry.packetId);
    if (seq === undefined) seqs.set(entry.packetId, (seq = this.storage.nextSeq()));
    const p = entry.packet;
    const delivery: StoredDelivery = {
      seq,
      message: {
        topic: p.topic,
        payload: p.payload,
        qos: p.qos,
        retain: p.retain,
        properties: p.properties,
        expiresAt: 0,
        publisher: null,
      },
      qos: p.qos,
      retain: p.retain,
      subscriptionIds: null,
      state: entry.state,
      packetId: entry.packetId,
    };
    await this.storage.write({ op: "delivery", clientId, delivery });
  }

  async delete(clientId: string, packetId: number): Promise<void> {
    const seqs = this.seqs.get(clientId);
    const seq = seqs?.get(packetId);
    if (seq === undefined) return;
    seqs!.delete(packetId);
    await this.storage.write({ op: "release", clientId, seq });
  }

  /** Messages queued with `offlinePub` for `clientId`, oldest first (the client publishes them). */
  async offline(clientId: string): Promise<StoredOfflinePublish[]> {
    await this.storage.open();
    const client = await this.storage.readClient(clientId);
    return (client?.deliveries ?? [])
      .filter((d) => d.state === "queued")
      .map((d) => ({
        key: d.seq,
        topic: d.message.topic,
        payload: d.message.payload,
        qos: d.qos,
        retain: d.retain,
      }));
  }

  /** An offline message was published: it leaves the queue. */
  async offlineSent(clientId: string, key: number): Promise<void> {
    await this.storage.write({ op: "release", clientId, seq: key });
  }

  async clear(clientId: string): Promise<void> {
    this.seqs.delete(clientId);
    await this.storage.open();
    await this.storage.write({ op: "drop", clientId });
  }
}
