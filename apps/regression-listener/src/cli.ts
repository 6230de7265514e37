// myqtt-regression-listener: the broker the MyQtt regression client talks to (MyQtt's
// test/myqtt-regression-listener.c, or with --python py-myqtt's listener). Prints one
// "listening on" line per listener, then "ready".
import * as myqtt from "myqtt";
import { makeOnPublish } from "./admin-topics.js";
import { ensureCertificates } from "./certificates.js";
import { makeOnConnect } from "./connect-rule.js";
import { startListeners } from "./listeners.js";
import { installLog } from "./log.js";
import { OptionsError, parseOptions, USAGE } from "./options.js";
import { installSniHandlers } from "./sni.js";
import { clearStorageDir } from "./storage-dir.js";

const NAME = "regression-listener";
/** MyQtt's regression listener: myqtt_storage_set_path(".myqtt-listener", 4096). */
const STORAGE_HASH_SIZE = 4096;

function say(line: string): void {
  process.stdout.write(`${NAME}: ${line}\n`);
}

function fail(message: string, status: number): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(status);
}

/** host:port for a URL (IPv6 in brackets). */
function authority(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

async function main(): Promise<void> {
  let config: ReturnType<typeof parseOptions>;
  try {
    config = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof OptionsError) {
      process.stderr.write(`${NAME}: ${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    throw error;
  }
  if (config === null) {
    process.stdout.write(USAGE);
    return;
  }
  const variant = config.python ? "python" : "c";

  const certs = await ensureCertificates(config.certs, (why) =>
    say(`generating certificates in ${config.certs} (${why})`),
  ).catch((error: unknown) => fail((error as Error).message, 1));
  const storage = await clearStorageDir(config.storage).catch((error: unknown) =>
    fail((error as Error).message, 1),
  );

  const ctx = new myqtt.Ctx();
  if (!(await ctx.init())) fail("cannot initialise the context", 1);
  installLog(ctx, config.logLevel);
  ctx.storageSetPath(storage, STORAGE_HASH_SIZE);
  ctx.setOnConnect(makeOnConnect(variant));
  ctx.setOnPublish(makeOnPublish(variant));
  installSniHandlers(ctx, certs.paths);

  let started: Awaited<ReturnType<typeof startListeners>>;
  try {
    started = await startListeners(ctx, config, certs.paths);
  } catch (error) {
    await ctx.exit();
    fail((error as Error).message, 1);
  }
  // The signal handlers come before the "ready" line: whoever reads it may stop us at once.
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await ctx.exit();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
  for (const { name, scheme, listener } of started)
    say(`${name} listening on ${scheme}://${authority(listener.host, listener.port)}`);
  say(`ready (${variant} listener, storage ${storage}, certificates ${certs.dir})`);
}

main().catch((error: unknown) =>
  fail(error instanceof Error ? (error.stack ?? error.message) : String(error), 1),
);
