/**
 * Read while the consumer is paused, a transport goes on until it holds this many bytes, then
 * stops reading: a peer's FIN or reset is still seen while the application is busy (a broker
 * hook that takes long, a storage that holds a client back). A paused Node stream would read as
 * far, but tell nothing of the end before its buffer was read: a client gone while its publish
 * hook was pending stayed connected, its will unsent and its slot taken, for as long as the
 * hook took.
 */
export const HOLD_BYTES = 16_384;

/**
 * The reads a transport takes while its consumer is paused (the TCP and WebSocket transports):
 * kept in order, counted, and handed over when it resumes or the connection closes.
 */
export class HeldReads {
  private chunks: Uint8Array[] | null = null;
  private bytes = 0;

  /** Whether the consumer is paused (reads are held, not handed over). */
  get paused(): boolean {
    return this.chunks !== null;
  }

  /** Whether enough is held that the transport should stop reading. */
  get full(): boolean {
    return this.bytes >= HOLD_BYTES;
  }

  pause(): void {
    this.chunks ??= [];
  }

  /** Keeps a read taken while paused; true once enough is held (stop reading then). */
  hold(chunk: Uint8Array): boolean {
    this.chunks!.push(chunk);
    this.bytes += chunk.length;
    return this.bytes >= HOLD_BYTES;
  }

  /**
   * Hands what is held to `onData` in order and unpauses. Stops where the consumer pauses again
   * (the rest stays in front of later reads), unless `all`: the connection closed.
   */
  deliver(all: boolean, onData: (chunk: Uint8Array) => void): void {
    const held = this.chunks;
    if (held === null) return;
    this.chunks = null;
    this.bytes = 0;
    let i = 0;
    while (i < held.length && (all || this.chunks === null)) onData(held[i++]!);
    if (i < held.length) {
      const rest = held.slice(i);
      for (const chunk of rest) this.bytes += chunk.length;
      this.chunks = rest;
    }
  }

  /** Drops what is held (the connection is destroyed: nothing more is handed over). */
  drop(): void {
    if (this.chunks !== null) this.chunks = [];
    this.bytes = 0;
  }
}
