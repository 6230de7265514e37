import { type Ctx, LogLevel } from "@myqtt/core";
import type { StorageLog } from "./types.js";

/** A StorageLog that writes to a context's log, as component "storage". */
export function ctxStorageLog(ctx: Ctx): StorageLog {
  return (level, message) => {
    const mapped =
      level === "critical"
        ? LogLevel.CRITICAL
        : level === "warning"
          ? LogLevel.WARNING
          : LogLevel.DEBUG;
    ctx.log(mapped, "storage", message);
  };
}
