import { hasWildcard, match } from "@myqtt/codec";
import type {
  StorageOp,
  StoredClient,
  StoredDelivery,
  StoredMessage,
  StoredSessionInfo,
  StoredState,
  StoredSubscription,
  StoredWill,
} from "./types.js";

/** The mutable record of one client id. */
export interface ClientRecord {
  session: StoredSessionInfo | null;
  readonly subscriptions: Map<string, StoredSubscription>;
  readonly deliveries: Map<number, StoredDelivery>;
  readonly incomingQoS2: Set<number>;
  will: StoredWill | null;
}

function emptyRecord(): ClientRecord {
  return {
    session: null,
    subscriptions: new Map(),
    deliveries: new Map(),
    incomingQoS2: new Set(),
    will: null,
  };
}

function isEmpty(r: ClientRecord): boolean {
  return (
    r.session === null &&
    r.will === null &&
    r.subscriptions.size === 0 &&
    r.deliveries.size === 0 &&
    r.incomingQoS2.size === 0
  );
}

/**
 * The whole stored state in memory, changed by StorageOps. The memory backend is this model;
 * the file backend keeps it too (and writes its changes to disk), so reads never touch disk.
 */
export class StateModel {
  readonly clients = new Map<string, ClientRecord>();
  readonly retained = new Map<string, StoredMessage>();

  /** Applies one change; returns the key it touched (a client id, or a retained topic). */
  apply(op: StorageOp): void {
    switch (op.op) {
      case "retain":
        if (op.message.payload.length === 0) this.retained.delete(op.message.topic);
        else this.retained.set(op.message.topic, op.message);
        return;
      case "unretain":
        this.retained.delete(op.topic);
        return;
      case "drop":
        this.clients.delete(op.clientId);
        return;
      default:
        break;
    }
    const id = op.clientId;
    let r = this.clients.get(id);
    if (r === undefined) {
      r = emptyRecord();
      this.clients.set(id, r);
    }
    switch (op.op) {
      case "session":
        r.session = op.info;
        break;
      case "sub":
        r.subscriptions.set(op.sub.filter, op.sub);
        break;
      case "unsub":
        r.subscriptions.delete(op.filter);
        break;
      case "delivery":
        r.deliveries.set(op.delivery.seq, op.delivery);
        break;
      case "release":
        r.deliveries.delete(op.seq);
        break;
      case "qos2":
        r.incomingQoS2.add(op.packetId);
        break;
      case "qos2done":
        r.incomingQoS2.delete(op.packetId);
        break;
      case "will":
        r.will = op.will;
        break;
      case "unwill":
        r.will = null;
        break;
    }
    if (isEmpty(r)) this.clients.delete(id);
  }

  /** Replaces the record of a client id (a file loaded from disk). */
  setClient(client: StoredClient): void {
    const r = emptyRecord();
    r.session = client.session;
    r.will = client.will;
    for (const sub of client.subscriptions) r.subscriptions.set(sub.filter, sub);
    for (const d of client.deliveries) r.deliveries.set(d.seq, d);
    for (const id of client.incomingQoS2) r.incomingQoS2.add(id);
    if (isEmpty(r)) this.clients.delete(client.clientId);
    else this.clients.set(client.clientId, r);
  }

  client(clientId: string): StoredClient | null {
    const r = this.clients.get(clientId);
    return r === undefined ? null : snapshotOf(clientId, r);
  }

  retainedMatching(filter: string): StoredMessage[] {
    if (!hasWildcard(filter)) {
      const msg = this.retained.get(filter);
      return msg === undefined ? [] : [msg];
    }
    const out: StoredMessage[] = [];
    for (const [topic, msg] of this.retained) if (match(filter, topic)) out.push(msg);
    return out;
  }

  state(): StoredState {
    const clients: StoredClient[] = [];
    for (const [id, r] of this.clients) clients.push(snapshotOf(id, r));
    return { clients, retained: [...this.retained.values()] };
  }
}

/** A read-only copy of a record (deliveries in queue order). */
export function snapshotOf(clientId: string, r: ClientRecord): StoredClient {
  return {
    clientId,
    session: r.session,
    subscriptions: [...r.subscriptions.values()],
    deliveries: [...r.deliveries.values()].sort((a, b) => a.seq - b.seq),
    incomingQoS2: [...r.incomingQoS2],
    will: r.will,
  };
}
