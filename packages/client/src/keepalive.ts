import type { Timers } from "./timers.js";

/**
 * Client keep alive: when nothing was sent for the keep alive period a PINGREQ goes out; when
 * no PINGRESP (or any packet) comes back within one more period the connection is declared
 * dead. Runs on injectable timers.
 */
export class KeepAlive {
  private timer: unknown = null;
  private pingSentAt = 0;
  private stopped = false;

  constructor(
    private readonly timers: Timers,
    private readonly periodMs: number,
    private readonly lastSentAt: () => number,
    private readonly ping: () => void,
    private readonly dead: () => void,
  ) {}

  start(): void {
    if (this.periodMs > 0) this.schedule(this.periodMs);
  }

  /** Anything arrived from the server: it is alive. */
  received(): void {
    this.pingSentAt = 0;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.timers.setTimeout(() => this.tick(), Math.max(1, ms));
  }

  private tick(): void {
    this.timer = null;
    const now = this.timers.now();
    if (this.pingSentAt !== 0) {
      if (now - this.pingSentAt >= this.periodMs) {
        this.stop();
        this.dead();
        return;
      }
      this.schedule(this.pingSentAt + this.periodMs - now);
      return;
    }
    const idle = now - this.lastSentAt();
    if (idle >= this.periodMs) {
      this.pingSentAt = now;
      this.ping();
      this.schedule(this.periodMs);
    } else {
      this.schedule(this.periodMs - idle);
    }
  }
}
