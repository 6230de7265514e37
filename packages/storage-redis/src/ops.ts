import type { StorageOp } from "@myqtt/storage";
import type { ChainableCommander } from "ioredis";
import {
  encodeDelivery,
  encodeRetained,
  encodeSession,
  encodeSubscription,
  encodeWill,
} from "./encoding.js";
import { checkWellFormed, type KeyLayout } from "./keys.js";

/**
 * Removes a client id from the clients set when none of its keys is left (Redis deletes a hash
 * or set when its last field goes). Runs inside the transaction, so another broker node sharing
 * the data never sees a client listed without data, nor data of an unlisted client.
 *   KEYS: session, subs, msgs, qos2, will, clients   ARGV: the client id
 */
const TIDY = `if redis.call("EXISTS", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]) == 0 then
  return redis.call("SREM", KEYS[6], ARGV[1])
end
return 0`;

/**
 * Queues the commands of `ops`, in order, on a transaction. Adding to a client lists it in the
 * clients set at once; removing checks at the end (once per client) whether anything is left.
 */
export function queueOps(tx: ChainableCommander, keys: KeyLayout, ops: readonly StorageOp[]): void {
  const shrunk = new Set<string>();
  for (const op of ops) {
    switch (op.op) {
      case "retain":
        if (op.message.payload.length === 0) tx.hdel(keys.retained, op.message.topic);
        else tx.hset(keys.retained, op.message.topic, encodeRetained(op.message));
        continue;
      case "unretain":
        tx.hdel(keys.retained, op.topic);
        continue;
      default:
        break;
    }
    const id = op.clientId;
    checkWellFormed(id);
    const k = keys.client(id);
    switch (op.op) {
      case "drop":
        tx.del(k.session, k.subs, k.msgs, k.qos2, k.will);
        tx.srem(keys.clients, id);
        break;
      case "session":
        tx.set(k.session, encodeSession(op.info));
        tx.sadd(keys.clients, id);
        break;
      case "sub":
        tx.hset(k.subs, op.sub.filter, encodeSubscription(op.sub));
        tx.sadd(keys.clients, id);
        break;
      case "unsub":
        tx.hdel(k.subs, op.filter);
        shrunk.add(id);
        break;
      case "delivery":
        tx.hset(k.msgs, String(op.delivery.seq), encodeDelivery(op.delivery));
        tx.sadd(keys.clients, id);
        break;
      case "release":
        tx.hdel(k.msgs, String(op.seq));
        shrunk.add(id);
        break;
      case "qos2":
        tx.sadd(k.qos2, String(op.packetId));
        tx.sadd(keys.clients, id);
        break;
      case "qos2done":
        tx.srem(k.qos2, String(op.packetId));
        shrunk.add(id);
        break;
      case "will":
        tx.set(k.will, encodeWill(op.will));
        tx.sadd(keys.clients, id);
        break;
      case "unwill":
        tx.del(k.will);
        shrunk.add(id);
        break;
    }
  }
  for (const id of shrunk) {
    const k = keys.client(id);
    tx.eval(TIDY, 6, k.session, k.subs, k.msgs, k.qos2, k.will, keys.clients, id);
  }
}
