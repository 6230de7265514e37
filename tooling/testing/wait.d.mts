/** Resolves after `ms` milliseconds. */
export declare function sleep(ms: number): Promise<void>;
/** Waits until `check()` is true, polling every 5 ms; rejects after `ms` (default 5000). */
export declare function until(check: () => boolean, ms?: number, what?: string): Promise<void>;
