/** Whether `value` is a promise (or any thenable): hooks may answer with either. */
export function isPromise<T = unknown>(value: unknown): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}
