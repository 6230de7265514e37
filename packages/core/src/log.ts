import type { Ctx } from "./ctx.js";

/** Log levels, as MyQtt numbers them (they are flags: a filter may combine them). */
export const LogLevel = {
  DEBUG: 1,
  WARNING: 2,
  CRITICAL: 4,
} as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

/**
 * Receives every log line of a context: `file` names the component that logged (for example
 * "broker/connect"), `line` is 0 (compiled code has no useful source lines), `data` is the value
 * given to setLogHandler.
 */
export type LogHandler<D = unknown> = (
  ctx: Ctx,
  file: string,
  line: number,
  level: LogLevel,
  message: string,
  data: D,
) => void;
