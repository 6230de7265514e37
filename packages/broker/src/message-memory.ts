import { type BrokerMessage, sizeOf } from "./message.js";

/**
 * What a message held at all takes beside its size: the message object, its payload's view
 * object, the storage's record of it (measured on Node 20, a small message with one hold took
 * 321 bytes of heap without storage, 591 with FileStorage: about 250 and 360 for the message).
 */
export const MESSAGE_BYTES = 384;

/**
 * What one hold takes: the queue or in-flight entry, or the retained store's map entry, and
 * the storage's record of a stored delivery (FileStorage keeps one in memory). Measured on
 * Node 20 with a million holds: 70 bytes each without storage, 232 with FileStorage.
 */
export const HOLD_BYTES = 256;

/**
 * The bytes of messages the broker holds for later (queued, in flight to a client, retained),
 * counted against maxTotalMessageBytes. A message held many times, as one publish queued for
 * many sessions is, counts its size and MESSAGE_BYTES once and HOLD_BYTES per hold. What is
 * held for long is detached from the network buffer its packet arrived in (see detach and
 * Session.holdLong), so that what it keeps is what it is counted for.
 */
export class MessageMemory {
  bytes = 0;
  /** The broker's sweeps so far: how long a message has been in flight, in sweeps. */
  tick = 0;

  /** Whether one more hold of `msg` stays within `limit`. */
  fits(msg: BrokerMessage, limit: number): boolean {
    const size = msg.holders ? HOLD_BYTES : HOLD_BYTES + MESSAGE_BYTES + sizeOf(msg);
    return this.bytes + size <= limit;
  }

  hold(msg: BrokerMessage): void {
    const holders = msg.holders ?? 0;
    msg.holders = holders + 1;
    this.bytes += holders === 0 ? HOLD_BYTES + MESSAGE_BYTES + sizeOf(msg) : HOLD_BYTES;
  }

  release(msg: BrokerMessage): void {
    const holders = (msg.holders ?? 1) - 1;
    msg.holders = holders;
    this.bytes -= holders === 0 ? HOLD_BYTES + MESSAGE_BYTES + sizeOf(msg) : HOLD_BYTES;
  }
}
