import type { TLSSocket } from "node:tls";
import type { TlsPeer } from "./transport.js";

/**
 * What the TLS handshake of `socket` established about the peer (for Transport.tlsPeer()).
 * Read it while the socket is open: a closed socket forgets its peer certificate.
 */
export function readTlsPeer(socket: TLSSocket): TlsPeer {
  // getPeerCertificate() answers {} (no `raw`) when the peer sent none, null once destroyed.
  const certificate = socket.getPeerCertificate() as { raw?: Buffer } | null;
  const raw = certificate?.raw;
  const error = socket.authorizationError as unknown;
  return Object.freeze({
    authorized: socket.authorized === true,
    authorizationError:
      error === null || error === undefined
        ? null
        : error instanceof Error
          ? ((error as { code?: string }).code ?? error.message)
          : String(error),
    certificate: raw !== undefined && raw.length > 0 ? new Uint8Array(raw) : null,
    protocol: socket.getProtocol() ?? null,
  });
}
