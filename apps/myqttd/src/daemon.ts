import { createListener } from "@myqtt/broker";
import { Ctx, LogLevel } from "@myqtt/core";
import { ctxStorageLog, FileStorage, type Storage } from "@myqtt/storage";
import { ConfigError, type DaemonConfig, parseConfig, USAGE } from "./config.js";
import { type ExtraListener, startExtraListeners } from "./listeners.js";
import { type YoungGeneration, youngGenerationKiB } from "./young-generation.js";

function describeStorage(config: DaemonConfig): string {
  const s = config.storage;
  if (s.kind === "memory") return "memory";
  return s.kind === "file" ? `file ${s.dir}, ${config.durability}` : `redis ${s.url}`;
}

/**
 * The storage the config asks for; its problems go to the context's log. The Redis backend and
 * its client are loaded only when asked for.
 */
async function makeStorage(ctx: Ctx, config: DaemonConfig): Promise<Storage | "memory"> {
  const log = ctxStorageLog(ctx);
  const s = config.storage;
  if (s.kind === "memory") return "memory";
  if (s.kind === "redis") {
    const { RedisStorage } = await import("@myqtt/storage-redis");
    return new RedisStorage({ redis: s.url, log });
  }
  return new FileStorage({ path: s.dir, durability: config.durability, log });
}

function fail(message: string, status: number): never {
  process.stderr.write(`myqttd: ${message}\n`);
  process.exit(status);
}

async function main(youngGeneration: YoungGeneration): Promise<void> {
  let config: DaemonConfig | null;
  try {
    config = parseConfig(process.argv.slice(2));
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`myqttd: ${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    throw error;
  }
  if (config === null) {
    process.stdout.write(USAGE);
    return;
  }
  const ctx = new Ctx();
  if (!(await ctx.init())) fail("cannot initialise the context", 1);
  if (config.logLevel !== "quiet") {
    // Debug lines hidden by the filter are never built (there is one per connection).
    ctx.setLogFilter(config.logLevel === "debug" ? 0 : LogLevel.DEBUG);
    ctx.setLogHandler((_ctx, file, _line, level, message) => {
      const tag =
        level === LogLevel.CRITICAL ? "critical" : level === LogLevel.WARNING ? "warning" : "debug";
      process.stderr.write(`${new Date().toISOString()} ${tag} [${file}] ${message}\n`);
    });
  }

  const storage = await makeStorage(ctx, config);
  let listener: Awaited<ReturnType<typeof createListener>>;
  try {
    listener = await createListener(ctx, config.host, config.port, { ...config.broker, storage });
  } catch (error) {
    fail((error as Error).message, 1);
  }
  if (!listener.isOk()) fail(listener.errorMsg ?? "cannot listen", 1);
  let extra: ExtraListener[];
  try {
    extra = await startExtraListeners(ctx, config);
  } catch (error) {
    await ctx.exit();
    fail((error as Error).message, 1);
  }
  // The signal handlers come before the "listening" line: whoever reads it may stop us at once.
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    if (config.logLevel !== "quiet") process.stdout.write(`myqttd: ${signal}, stopping\n`);
    await ctx.exit();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  // Before the listening line, which tells a reader the start-up output is complete.
  if (config.logLevel === "debug") {
    const sizedBy =
      youngGeneration === "held" ? "held at its initial size" : "sized by node's own flags";
    process.stdout.write(`myqttd: V8 young generation ${youngGenerationKiB()} KiB, ${sizedBy}\n`);
  }
  if (config.logLevel !== "quiet") {
    process.stdout.write(
      `myqttd: listening on mqtt://${listener.host}:${listener.port} (storage: ${describeStorage(config)})\n`,
    );
    for (const { scheme, listener: l } of extra)
      process.stdout.write(`myqttd: listening on ${scheme}://${l.host}:${l.port}\n`);
  }
}

/** Runs the daemon until SIGINT or SIGTERM; exits 1 with the reason when it cannot start. */
export async function runDaemon(youngGeneration: YoungGeneration): Promise<void> {
  try {
    await main(youngGeneration);
  } catch (error) {
    fail(error instanceof Error ? (error.stack ?? error.message) : String(error), 1);
  }
}
