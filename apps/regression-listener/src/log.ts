// Where the context's log lines go: stderr, filtered by --log-level.
import * as myqtt from "myqtt";
import type { LogLevelName } from "./options.js";

/** Sends the context's log to stderr: warnings by default, everything with "debug". */
export function installLog(ctx: myqtt.Ctx, level: LogLevelName): void {
  if (level === "quiet") return;
  const { DEBUG, WARNING, CRITICAL } = myqtt.LogLevel;
  const shown = level === "debug" ? DEBUG | WARNING | CRITICAL : WARNING | CRITICAL;
  ctx.setLogHandler((_ctx, file, _line, lvl, message) => {
    if ((lvl & shown) === 0) return;
    const tag = lvl === CRITICAL ? "critical" : lvl === WARNING ? "warning" : "debug";
    process.stderr.write(`${new Date().toISOString()} ${tag} [${file}] ${message}\n`);
  });
}
