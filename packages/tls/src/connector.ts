import { isIP } from "node:net";
import { connect, rootCertificates, type TLSSocket } from "node:tls";
import type { Transport } from "@myqtt/core";
import { TlsError, toTlsError } from "./errors.js";
import { type PemSource, readPem, withChain } from "./pem.js";
import { type CaSource, caList, secureContext, type TlsMinVersion } from "./secure-context.js";
import { TlsTransport } from "./transport.js";

/** Options of connectTls (the `connectorOptions` of a client using it). */
export interface TlsConnectOptions {
  /**
   * The CAs the server's certificate must chain to. When given they replace the system's
   * trusted roots (Node.js's rule), unless `systemCa` is true; MyQtt trusts both.
   */
  ca?: CaSource;
  /** Trust the system's (Node.js's bundled) root CAs as well as `ca`. */
  systemCa?: boolean;
  /** A client certificate and its key, for servers that require one (mutual TLS). */
  cert?: PemSource;
  key?: PemSource;
  /** Intermediate CA certificates sent after `cert`. */
  chain?: PemSource | null;
  /**
   * Verify the server (default true): its certificate must chain to a trusted CA, be valid now
   * and match the server name; otherwise the connect fails with a TlsError. False connects to
   * anyone, and tlsPeer()/verifyCert() say what was found.
   */
  verifyPeer?: boolean;
  /**
   * The name sent as SNI and checked against the certificate. Default: the host, unless it is
   * an IP address (then no SNI is sent and the certificate must hold that IP).
   */
  serverName?: string;
  /** Default "TLSv1.2". */
  minVersion?: TlsMinVersion;
  /** Give up when TCP connect plus handshake take longer (default: no limit of its own). */
  timeoutMs?: number;
}

async function pemList(sources: readonly PemSource[]): Promise<Buffer[]> {
  return Promise.all(sources.map((source) => readPem(source)));
}

/**
 * Opens a TLS connection to `host:port` ("mqtts"). With verification on (the default) an
 * expired, untrusted or wrongly named server certificate fails it with a TlsError whose code
 * says which ("CERT_HAS_EXPIRED", "UNTRUSTED", "HOSTNAME_MISMATCH"...). A refusal the server
 * sends after the handshake (a TLS 1.3 server refusing the client certificate) closes the
 * transport with a TlsError ("NO_CLIENT_CERT", "CERT_REJECTED") as its error.
 */
export async function connectTls(
  host: string,
  port: number,
  options: TlsConnectOptions = {},
): Promise<Transport> {
  // A client hands its connectorOptions over unchecked: the shape is verified here.
  if (typeof options !== "object" || options === null)
    throw new TypeError("connectTls: options must be an object");
  const opts = options;
  if ((opts.cert === undefined) !== (opts.key === undefined))
    throw new TypeError("connectTls: `cert` and `key` go together");
  const verify = opts.verifyPeer !== false;
  // RFC 6066 3: SNI carries host names only, never an address.
  const serverName = opts.serverName ?? (isIP(host) === 0 ? host : undefined);
  const ca = await pemList(caList(opts.ca));
  const [cert, chain, key] = await Promise.all([
    opts.cert === undefined ? null : readPem(opts.cert),
    opts.chain == null ? null : readPem(opts.chain),
    opts.key === undefined ? null : readPem(opts.key),
  ]);
  const context = secureContext({
    minVersion: opts.minVersion ?? "TLSv1.2",
    ...(ca.length > 0
      ? { ca: opts.systemCa === true ? [...rootCertificates, ...ca.map(String)] : ca }
      : {}),
    ...(cert !== null && key !== null ? { cert: withChain(cert, chain), key } : {}),
  });
  const name = serverName ?? host;
  const address = `${host}:${port}`;
  return new Promise<Transport>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let socket: TLSSocket | null = null;
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      // Whatever the socket reports while going away must not be an unhandled 'error'.
      socket?.on("error", () => {});
      socket?.destroy();
      reject(toTlsError(error, name, address));
    };
    const timeoutMs = opts.timeoutMs;
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        const message = `TLS connect to ${address} timed out after ${timeoutMs} ms`;
        fail(new TlsError("TIMEOUT", message, { host: name }));
      }, timeoutMs);
    }
    socket = connect({
      host,
      port,
      secureContext: context,
      rejectUnauthorized: verify,
      ...(serverName !== undefined ? { servername: serverName } : {}),
    });
    // Before the handshake, so that its flights are not held back by Nagle either.
    socket.setNoDelay(true);
    socket.once("error", fail);
    socket.once("secureConnect", () => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      const s = socket!;
      s.off("error", fail);
      resolve(new TlsTransport(s, serverName ?? null));
    });
  });
}
