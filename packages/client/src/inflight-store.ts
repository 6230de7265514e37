import type { PublishPacket, QoS } from "@myqtt/codec";

/** A message queued for a client id while no client ran (MyQtt's myqtt_conn_offline_pub). */
export interface OfflinePublish {
  /** The store's key of the message, handed back to offlineSent. */
  key: number;
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
}

/** A QoS 1/2 publish the server has not fully acknowledged. */
export interface InflightEntry {
  packetId: number;
  /** "publish": waiting for PUBACK/PUBREC; "pubrel": PUBREL sent, waiting for PUBCOMP. */
  state: "publish" | "pubrel";
  packet: PublishPacket;
}

/**
 * Where a client keeps its unacknowledged QoS 1/2 publishes, so they are resent after a
 * reconnect (memory) or after a restart of the process (a durable store). Each method may
 * return a promise: the client waits for it before the packet goes out, so what was sent
 * was stored first.
 */
export interface InflightStore {
  /** Everything stored for `clientId`, oldest first (called once before the first connect). */
  load(clientId: string): InflightEntry[] | Promise<InflightEntry[]>;
  put(clientId: string, entry: InflightEntry): void | Promise<void>;
  delete(clientId: string, packetId: number): void | Promise<void>;
  /**
   * Forgets everything of `clientId`. The client never calls it on its own: even with a clean
   * session it sends again what a previous run left unacknowledged (at least once, rather than
   * lost); an application that wants to drop that calls it before connecting.
   */
  clear(clientId: string): void | Promise<void>;
  /**
   * Messages queued for `clientId` by another program or an earlier run (a durable store's
   * `offlinePub`), oldest first. The client publishes them after its first connect.
   */
  offline?(clientId: string): OfflinePublish[] | Promise<OfflinePublish[]>;
  /** An offline message was published (QoS 0 sent, QoS 1/2 in the in-flight store): forget it. */
  offlineSent?(clientId: string, key: number): void | Promise<void>;
}

/** The default store: in memory, per client id, insertion-ordered. */
export class MemoryInflightStore implements InflightStore {
  private readonly byClient = new Map<string, Map<number, InflightEntry>>();

  load(clientId: string): InflightEntry[] {
    return [...(this.byClient.get(clientId)?.values() ?? [])];
  }

  put(clientId: string, entry: InflightEntry): void {
    let entries = this.byClient.get(clientId);
    if (entries === undefined) {
      entries = new Map();
      this.byClient.set(clientId, entries);
    }
    // An update (publish → pubrel) keeps the entry's place in the order.
    entries.set(entry.packetId, entry);
  }

  delete(clientId: string, packetId: number): void {
    this.byClient.get(clientId)?.delete(packetId);
  }

  clear(clientId: string): void {
    this.byClient.delete(clientId);
  }
}
