import type { Timers } from "./timers.js";

/**
 * Client keep alive, on injectable timers (K is the keep alive period).
 *
 * - A PINGREQ goes out when the client has sent nothing for K (the protocol asks for it,
 *   [MQTT-3.1.2-23]), or has received nothing for K: a client that only sends (QoS 0, which
 *   nothing answers) would otherwise never learn that the server stopped answering. A
 *   connection busy both ways sends no PINGREQ.
 * - After a PINGREQ, when no packet at all arrives within K, the connection is declared dead:
 *   at most 2 × K after the last packet received.
 * - While reading is paused for a slow reader, silence proves nothing: a PINGREQ still goes out
 *   when the client sent nothing for K (the server needs it), but nobody is declared dead, and
 *   silence is measured again from the moment reading resumes.
 */
export class KeepAlive {
  private timer: unknown = null;
  /** When the unanswered PINGREQ went out (0: none is). */
  private pingSentAt = 0;
  private receivedAt: number;
  private paused = false;
  private stopped = false;

  constructor(
    private readonly timers: Timers,
    private readonly periodMs: number,
    private readonly lastSentAt: () => number,
    private readonly ping: () => void,
    private readonly dead: () => void,
  ) {
    this.receivedAt = timers.now();
  }

  start(): void {
    if (this.periodMs > 0) this.schedule(this.periodMs);
  }

  /** Anything arrived from the server: it is alive. */
  received(): void {
    this.receivedAt = this.timers.now();
    this.pingSentAt = 0;
  }

  /** Reading from the server paused (a reader is behind) or resumed. */
  readingPaused(paused: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    if (paused) return;
    // Silence counts from now; the timer due is never later than the new deadlines.
    const now = this.timers.now();
    this.receivedAt = now;
    if (this.pingSentAt !== 0) this.pingSentAt = now;
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
    const period = this.periodMs;
    const sentIdle = now - this.lastSentAt();
    if (this.paused) {
      if (sentIdle >= period) {
        if (this.pingSentAt === 0) this.pingSentAt = now;
        this.ping();
        this.schedule(period);
      } else {
        this.schedule(period - sentIdle);
      }
      return;
    }
    if (this.pingSentAt !== 0) {
      if (now - this.pingSentAt >= period) {
        this.stop();
        this.dead();
        return;
      }
      this.schedule(this.pingSentAt + period - now);
      return;
    }
    const idle = Math.max(sentIdle, now - this.receivedAt);
    if (idle >= period) {
      this.pingSentAt = now;
      this.ping();
      this.schedule(period);
    } else {
      this.schedule(period - idle);
    }
  }
}
