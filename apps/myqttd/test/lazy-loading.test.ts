// myqttd loads the TLS and WebSocket transports and the Redis backend only when the command line
// asks for them: a broker on plain TCP starts in about half the time and with less memory.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { killAllDaemons, startDaemon } from "./daemon.js";

const RECORD = join(import.meta.dirname, "fixtures", "record-imports.mjs");
const dir = mkdtempSync(join(tmpdir(), "myqttd-imports-"));
let runs = 0;

afterEach(() => killAllDaemons());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the daemon with `args` and returns the URLs of the modules it imported. */
async function importsOf(args: string[]): Promise<string[]> {
  const log = join(dir, `imports-${++runs}.txt`);
  await startDaemon(args, {
    nodeArgs: ["--import", RECORD],
    env: { MYQTT_IMPORT_LOG: log },
  });
  return readFileSync(log, "utf8").trim().split("\n");
}

const loaded = (imports: string[], pkg: RegExp): boolean => imports.some((url) => pkg.test(url));
const TLS = /\/packages\/tls\/|\/@myqtt\/tls\//;
const WEBSOCKET = /\/packages\/websocket\/|\/@myqtt\/websocket\/|\/node_modules\/ws\//;
const REDIS = /\/packages\/storage-redis\/|\/@myqtt\/storage-redis\/|\/node_modules\/ioredis\//;
const BROKER = /\/packages\/broker\/|\/@myqtt\/broker\//;

describe("what myqttd loads", () => {
  it("a plain TCP broker on memory storage loads neither TLS, WebSocket nor Redis", async () => {
    const imports = await importsOf(["--storage", "memory"]);
    // The recording works: the broker itself is in it.
    expect(loaded(imports, BROKER)).toBe(true);
    expect(loaded(imports, TLS)).toBe(false);
    expect(loaded(imports, WEBSOCKET)).toBe(false);
    expect(loaded(imports, REDIS)).toBe(false);
  });

  it("a WebSocket listener loads the WebSocket transport, and still not TLS or Redis", async () => {
    const imports = await importsOf(["--storage", "memory", "--ws-port", "0"]);
    expect(loaded(imports, WEBSOCKET)).toBe(true);
    expect(loaded(imports, TLS)).toBe(false);
    expect(loaded(imports, REDIS)).toBe(false);
  });
});
