/** Reconnect delays: exponential with jitter. */
export interface BackoffOptions {
  /** First delay in ms (default 1000). */
  initialDelayMs?: number;
  /** Largest delay in ms (default 30000). */
  maxDelayMs?: number;
  /** Growth per attempt (default 2). */
  multiplier?: number;
  /** Fraction of each delay drawn at random, 0 to 1 (default 0.2): delay × (1 - jitter × r). */
  jitter?: number;
}

/** Delay before attempt `attempt` (0-based); `random` in [0, 1) is injectable for tests. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 30_000;
  const multiplier = options.multiplier ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.2));
  const base = Math.min(max, initial * multiplier ** Math.min(attempt, 64));
  return Math.round(base * (1 - jitter * random()));
}
