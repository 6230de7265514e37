import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { BrokerOptions } from "@myqtt/broker";
import type { Durability } from "@myqtt/storage";

/** Where sessions are kept when no --storage is given. */
export const DEFAULT_STORAGE_DIR = "./.myqtt-storage";

/** What the daemon runs with, from flags and the config file (flags win). */
export interface DaemonConfig {
  host: string;
  port: number;
  storage: { kind: "memory" } | { kind: "file"; dir: string } | { kind: "redis"; url: string };
  durability: Durability;
  /** Extra listeners on the same host, null when off: TLS (mqtts), WebSocket (ws), wss. */
  tlsPort: number | null;
  wsPort: number | null;
  wssPort: number | null;
  /** PEM files of the TLS and wss listeners. */
  cert: string | null;
  key: string | null;
  /** CA file that client certificates must chain to. */
  ca: string | null;
  /** Mutual TLS: refuse TLS and wss clients without a certificate signed by `ca`. */
  requireClientCert: boolean;
  logLevel: "quiet" | "info" | "debug";
  broker: BrokerOptions;
}

export const USAGE = `Usage: myqttd [options]

Runs a MyQtt MQTT broker (MQTT 3.1, 3.1.1 and 5.0) in the foreground until SIGINT or SIGTERM.

Options:
  --host H            address to listen on (default 0.0.0.0)
  --port P            TCP port (default 1883; 0 picks a free one)
  --storage S         "file:DIR" (default file:./.myqtt-storage), "redis://HOST:PORT[/DB]"
                      (Redis, keys under "myqtt:") or "memory" (nothing survives a restart)
  --durability D      file storage: fsync (default: an acknowledged message survives a
                      crash or power loss), async (survives a crash of the process) or none
  --tls-port P        also listen for MQTT over TLS (mqtts) on port P (needs --cert, --key)
  --ws-port P         also listen for MQTT over WebSocket on port P (path /mqtt)
  --wss-port P        also listen for MQTT over secure WebSocket on port P (needs --cert, --key)
  --cert F --key F    PEM certificate (with its chain) and private key of the TLS listeners
  --ca F              PEM CA certificates that client certificates must chain to
  --require-client-cert
                      mutual TLS: refuse clients without a certificate signed by --ca
  --config FILE       JSON file with any of: host, port, storage, durability, logLevel,
                      tlsPort, wsPort, wssPort, cert, key, ca, requireClientCert and a
                      "broker" object of broker options (limits; see BrokerOptions)
  --log-level L       quiet, info (default: one line per listener, warnings) or debug
  --help              print this and exit

Broker options in the config file (defaults in parentheses): maximumPacketSize (16 MiB),
maximumConnectPacketSize (64 KiB), connectTimeoutMs (10000), maxInflight (256),
receiveMaximum (1024), maxQueuedMessages (1000), maxQueuedBytes (64 MiB),
maxTotalMessageBytes (1 GiB), queueQoS0 (true), maxStoragePendingBytes (64 MiB; storage
writes waiting beyond it hold back the clients that make them), maxOutgoingBytes (8 MiB),
writeTimeoutMs (30000), maxTopicLength (4096), maxTopicLevels (128),
maxTopicFiltersPerPacket (1000), maxSubscriptionsPerClient (10000),
maxTotalSubscriptionBytes (512 MiB), maxUserPropertiesPerPacket (1000), maxConnections (50000),
topicAliasMaximum (64), outboundTopicAliases (true), maxKeepAlive (65535),
maxSessionExpiryInterval (4294967295; caps 3.1.1 persistent sessions too), maxSessions (100000),
duplicateClientId ("takeover" | "reject"), retainAvailable (true).

Memory: myqttd holds V8's young generation at its initial 1 MiB semi-spaces, which keeps an
idle broker small. For more throughput at the cost of memory, start node with a size of your
own (node --max-semi-space-size=8 .../myqttd/dist/cli.js): the daemon then leaves V8 alone.
`;

const FILE_KEYS = [
  "host",
  "port",
  "storage",
  "durability",
  "logLevel",
  "broker",
  "tlsPort",
  "wsPort",
  "wssPort",
  "cert",
  "key",
  "ca",
  "requireClientCert",
];

/** A bad flag or config value: printed with the usage, exit status 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

function parseDurability(value: unknown): Durability {
  if (value === "fsync" || value === "async" || value === "none") return value;
  throw new ConfigError(
    `--durability must be "fsync", "async" or "none", got ${JSON.stringify(value)}`,
  );
}

function parseStorage(value: string): DaemonConfig["storage"] {
  if (value === "memory") return { kind: "memory" };
  if (value.startsWith("file:") && value.length > 5) return { kind: "file", dir: value.slice(5) };
  if (/^rediss?:\/\/./.test(value)) return { kind: "redis", url: value };
  throw new ConfigError(
    `--storage must be "memory", "file:DIR" or "redis://HOST:PORT", got ${JSON.stringify(value)}`,
  );
}

function parsePort(value: unknown): number {
  const port = typeof value === "number" ? value : Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`port must be an integer in 0..65535, got ${JSON.stringify(value)}`);
  }
  return port;
}

function parseLogLevel(value: unknown): DaemonConfig["logLevel"] {
  if (value === "quiet" || value === "info" || value === "debug") return value;
  throw new ConfigError(`log level must be quiet, info or debug, got ${JSON.stringify(value)}`);
}

/** The command-line flags (the usage text lists each; a test checks it). */
export const FLAGS = {
  host: { type: "string" },
  port: { type: "string" },
  storage: { type: "string" },
  durability: { type: "string" },
  "tls-port": { type: "string" },
  "ws-port": { type: "string" },
  "wss-port": { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  ca: { type: "string" },
  "require-client-cert": { type: "boolean" },
  config: { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean" },
} as const;

/** Reads argv (without node and the script) into a config; null means --help was asked. */
export function parseConfig(argv: string[]): DaemonConfig | null {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: FLAGS,
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  if (values.help) return null;
  const config: DaemonConfig = {
    host: "0.0.0.0",
    port: 1883,
    storage: { kind: "file", dir: DEFAULT_STORAGE_DIR },
    durability: "fsync",
    tlsPort: null,
    wsPort: null,
    wssPort: null,
    cert: null,
    key: null,
    ca: null,
    requireClientCert: false,
    logLevel: "info",
    broker: {},
  };
  if (typeof values.config === "string") {
    let file: Record<string, unknown>;
    try {
      file = JSON.parse(readFileSync(values.config, "utf8")) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(
        `cannot read config file ${values.config}: ${(error as Error).message}`,
      );
    }
    for (const key of Object.keys(file)) {
      if (!FILE_KEYS.includes(key)) {
        throw new ConfigError(`unknown key ${JSON.stringify(key)} in ${values.config}`);
      }
    }
    if (file.host !== undefined) config.host = String(file.host);
    if (file.port !== undefined) config.port = parsePort(file.port);
    if (file.storage !== undefined) config.storage = parseStorage(String(file.storage));
    if (file.durability !== undefined) config.durability = parseDurability(file.durability);
    if (file.logLevel !== undefined) config.logLevel = parseLogLevel(file.logLevel);
    if (file.tlsPort !== undefined) config.tlsPort = parsePort(file.tlsPort);
    if (file.wsPort !== undefined) config.wsPort = parsePort(file.wsPort);
    if (file.wssPort !== undefined) config.wssPort = parsePort(file.wssPort);
    if (file.cert !== undefined) config.cert = String(file.cert);
    if (file.key !== undefined) config.key = String(file.key);
    if (file.ca !== undefined) config.ca = String(file.ca);
    if (file.requireClientCert !== undefined)
      config.requireClientCert = file.requireClientCert === true;
    if (file.broker !== undefined) {
      if (typeof file.broker !== "object" || file.broker === null)
        throw new ConfigError(`"broker" must be an object`);
      config.broker = file.broker as BrokerOptions;
    }
  }
  if (typeof values.host === "string") config.host = values.host;
  if (typeof values.port === "string") config.port = parsePort(values.port);
  if (typeof values.storage === "string") config.storage = parseStorage(values.storage);
  if (typeof values.durability === "string") config.durability = parseDurability(values.durability);
  if (typeof values["log-level"] === "string") config.logLevel = parseLogLevel(values["log-level"]);
  if (typeof values["tls-port"] === "string") config.tlsPort = parsePort(values["tls-port"]);
  if (typeof values["ws-port"] === "string") config.wsPort = parsePort(values["ws-port"]);
  if (typeof values["wss-port"] === "string") config.wssPort = parsePort(values["wss-port"]);
  if (typeof values.cert === "string") config.cert = values.cert;
  if (typeof values.key === "string") config.key = values.key;
  if (typeof values.ca === "string") config.ca = values.ca;
  if (values["require-client-cert"] === true) config.requireClientCert = true;
  if (
    (config.tlsPort !== null || config.wssPort !== null) &&
    (config.cert === null || config.key === null)
  )
    throw new ConfigError("--tls-port and --wss-port need --cert and --key");
  if (config.requireClientCert && config.ca === null)
    throw new ConfigError("--require-client-cert needs --ca");
  return config;
}
