import type { BrokerMessage } from "./message.js";

/**
 * What one hold costs beside the message itself: the queue or in-flight entry, or the
 * retained store's map entry.
 */
const HOLD_BYTES = 64;

/**
 * The bytes of messages the broker holds for later (queued, in flight to a client, retained),
 * counted against maxTotalMessageBytes. A message held many times, as one publish queued for
 * many sessions is, counts its size once and HOLD_BYTES per hold.
 */
export class MessageMemory {
  bytes = 0;

  /** Whether one more hold of `msg` stays within `limit`. */
  fits(msg: BrokerMessage, limit: number): boolean {
    const size = msg.holders ? HOLD_BYTES : HOLD_BYTES + msg.size;
    return this.bytes + size <= limit;
  }

  hold(msg: BrokerMessage): void {
    const holders = msg.holders ?? 0;
    msg.holders = holders + 1;
    this.bytes += holders === 0 ? HOLD_BYTES + msg.size : HOLD_BYTES;
  }

  release(msg: BrokerMessage): void {
    const holders = (msg.holders ?? 1) - 1;
    msg.holders = holders;
    this.bytes -= holders === 0 ? HOLD_BYTES + msg.size : HOLD_BYTES;
  }
}
