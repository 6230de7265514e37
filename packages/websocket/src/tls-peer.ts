import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { TlsPeer } from "@myqtt/core";

/** What the TLS handshake of `socket` established about the peer; null when it is not TLS. */
export function tlsPeerOf(socket: Socket): TlsPeer | null {
  if (!(socket instanceof TLSSocket)) return null;
  // getPeerCertificate() answers {} (no raw) when the peer sent none, null once destroyed.
  const certificate = socket.getPeerCertificate() as { raw?: Buffer } | null;
  const raw = certificate?.raw;
  const error = (socket as { authorizationError?: unknown }).authorizationError;
  return {
    authorized: socket.authorized,
    authorizationError:
      error === undefined || error === null
        ? null
        : error instanceof Error
          ? ((error as { code?: string }).code ?? error.message)
          : String(error),
    certificate: raw === undefined ? null : new Uint8Array(raw),
    protocol: socket.getProtocol() ?? null,
  };
}
