/**
 * A warning logged at most once per interval: under load the same cause repeats for every
 * message (a full queue drops each one), and a line for each would flood the log. The next
 * line logged says how many were not.
 */
export class ThrottledWarning {
  private loggedAt = 0;
  private notLogged = 0;

  /** `more` names what was not logged: " (N <more> since)". */
  constructor(
    private readonly intervalMs: number,
    private readonly more: string,
  ) {}

  /** The line to log now, or null when one was logged within the interval. */
  line(message: string, now = Date.now()): string | null {
    if (now - this.loggedAt < this.intervalMs) {
      this.notLogged++;
      return null;
    }
    const suffix = this.notLogged === 0 ? "" : ` (${this.notLogged} ${this.more} since)`;
    this.loggedAt = now;
    this.notLogged = 0;
    return message + suffix;
  }
}
