// The command line of the regression listener.
import { parseArgs } from "node:util";

/** How much the listener logs: its listening lines are printed whatever the level. */
export type LogLevelName = "quiet" | "info" | "debug";

/** Everything the command line decides. */
export interface ListenerConfig {
  host: string;
  /** Ports of the five listeners (0: the system picks one). */
  port: number;
  tlsPort: number;
  mtlsPort: number;
  wsPort: number;
  wssPort: number;
  /** Where the certificates are read from (and generated into when missing). */
  certs: string;
  /** The broker's file storage, emptied at start. */
  storage: string;
  /** The Python listener's behaviour (§5.3) instead of the C one's. */
  python: boolean;
  logLevel: LogLevelName;
}

export const USAGE = `Usage: myqtt-regression-listener [options]

  --host H          address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --port P          plain MQTT (default 1909)
  --tls-port P      TLS, default certificate test-certificate.crt, SNI handlers (default 1910)
  --mtls-port P     mutual TLS: server.pem, client certificates signed by root.pem (default 1911)
  --ws-port P       MQTT over WebSocket (default 1918)
  --wss-port P      MQTT over secure WebSocket, test-certificate.crt (default 1919)
                    (port 0 picks a free port; the chosen one is printed)
  --certs DIR       certificates, generated with openssl when missing
                    (default .myqtt-regression-certs)
  --storage DIR     the broker's storage, emptied at start (default .myqtt-listener)
  --python          behave as the Python regression listener (admin topics
                    get-conn-user, get-client-identifier, get-server-name only;
                    get-server-name falls back to the peer address; no deferred CONNACK)
  --log-level L     quiet, info (default: warnings) or debug
  --help
`;

/** A command line that cannot be used; the message says why. */
export class OptionsError extends Error {
  override name = "OptionsError";
}

function parsePort(flag: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n > 65_535)
    throw new OptionsError(`${flag} must be a port number (0-65535), got ${JSON.stringify(value)}`);
  return n;
}

function parseLogLevel(value: string): LogLevelName {
  if (value === "quiet" || value === "info" || value === "debug") return value;
  throw new OptionsError(`--log-level must be quiet, info or debug, got ${JSON.stringify(value)}`);
}

function nonEmpty(flag: string, value: string): string {
  if (value.trim() === "") throw new OptionsError(`${flag} must not be empty`);
  return value;
}

/** Parses `argv` (without node and the script); null means --help was asked. */
export function parseOptions(argv: string[]): ListenerConfig | null {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new OptionsError((error as Error).message);
  }
  if (values.help) return null;
  return {
    host: nonEmpty("--host", values.host),
    port: parsePort("--port", values.port),
    tlsPort: parsePort("--tls-port", values["tls-port"]),
    mtlsPort: parsePort("--mtls-port", values["mtls-port"]),
    wsPort: parsePort("--ws-port", values["ws-port"]),
    wssPort: parsePort("--wss-port", values["wss-port"]),
    certs: nonEmpty("--certs", values.certs),
    storage: nonEmpty("--storage", values.storage),
    python: values.python,
    logLevel: parseLogLevel(values["log-level"]),
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      // 127.0.0.1 rather than every interface: the admin topics tell anyone about any client.
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "1909" },
      "tls-port": { type: "string", default: "1910" },
      "mtls-port": { type: "string", default: "1911" },
      "ws-port": { type: "string", default: "1918" },
      "wss-port": { type: "string", default: "1919" },
      certs: { type: "string", default: ".myqtt-regression-certs" },
      storage: { type: "string", default: ".myqtt-listener" },
      python: { type: "boolean", default: false },
      "log-level": { type: "string", default: "info" },
      help: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
}
