import { connectTls, type TlsConnectOptions } from "./connector.js";
import { pemFile } from "./pem.js";

/**
 * What the MyQtt-style helpers configure: the client's ConnOpts (or ClientOptions), described by
 * shape because this package does not depend on the client.
 */
export interface ConnectorHolder {
  connector?: unknown;
  connectorOptions?: unknown;
}

/** Switches `opts` to TLS and merges `patch` into the TLS options already there. */
function useTls(opts: ConnectorHolder, patch: TlsConnectOptions): void {
  const current =
    opts.connector === connectTls &&
    typeof opts.connectorOptions === "object" &&
    opts.connectorOptions !== null
      ? (opts.connectorOptions as TlsConnectOptions)
      : {};
  opts.connector = connectTls;
  opts.connectorOptions = { ...current, ...patch };
}

/**
 * Turns verification of the server's certificate on or off (PyMyQtt's
 * `ConnOpts.ssl_peer_verify`) and makes the connection use TLS.
 */
export function sslPeerVerify(opts: ConnectorHolder, enable: boolean): void {
  useTls(opts, { verifyPeer: enable });
}

/**
 * The client certificate, its key, its chain and the CA that the server must chain to, as file
 * paths (PyMyQtt's `ConnOpts.set_ssl_certs`); null or undefined leaves one out. Makes the
 * connection use TLS.
 */
export function setSslCerts(
  opts: ConnectorHolder,
  cert: string | null | undefined,
  key: string | null | undefined,
  chain?: string | null,
  ca?: string | null,
): void {
  const patch: TlsConnectOptions = {};
  if (cert) patch.cert = pemFile(cert);
  if (key) patch.key = pemFile(key);
  if (chain) patch.chain = pemFile(chain);
  if (ca) patch.ca = pemFile(ca);
  useTls(opts, patch);
}

/**
 * The name sent as SNI and checked against the server's certificate (PyMyQtt's
 * `ConnOpts.set_server_name`). Makes the connection use TLS.
 */
export function setServerName(opts: ConnectorHolder, serverName: string): void {
  useTls(opts, { serverName });
}
