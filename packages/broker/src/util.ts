/** Whether `value` is a promise (or any thenable). */
export function isPromise<T = unknown>(value: unknown): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}
