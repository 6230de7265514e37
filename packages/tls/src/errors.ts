/**
 * Stable, machine-readable codes of TLS failures. Programs branch on these, never on OpenSSL's
 * own codes, which differ between OpenSSL versions and TLS 1.2 / 1.3.
 */
export type TlsErrorCode =
  /** The peer's certificate is past its notAfter date. */
  | "CERT_HAS_EXPIRED"
  /** The peer's certificate is not valid yet (notBefore in the future, or a wrong clock). */
  | "CERT_NOT_YET_VALID"
  /** The peer's certificate does not chain to a trusted CA (self-signed, unknown issuer...). */
  | "UNTRUSTED"
  /** The server's certificate is valid but for another name than the one asked for. */
  | "HOSTNAME_MISMATCH"
  /** The server requires a client certificate and none was sent. */
  | "NO_CLIENT_CERT"
  /** The peer refused the certificate this side sent (unknown CA, expired, bad). */
  | "CERT_REJECTED"
  /** A certificate, key or CA given in the options cannot be read or used. */
  | "BAD_CERTIFICATE"
  /** The TLS connection could not be set up within the time allowed. */
  | "TIMEOUT"
  /** Any other handshake failure: no shared protocol version or cipher, not TLS at all... */
  | "HANDSHAKE";

const MARKER = Symbol.for("myqtt.tls-error");

/** Options of a TlsError. */
export interface TlsErrorOptions {
  /** The OpenSSL or Node.js code behind it ("DEPTH_ZERO_SELF_SIGNED_CERT"...). */
  sslCode?: string;
  /** The host (or SNI name) it happened with. */
  host?: string;
  cause?: unknown;
}

/**
 * A TLS connection failed. `code` says why in a stable form; `sslCode` keeps OpenSSL's code
 * for logs, `host` the name it happened with.
 */
export class TlsError extends Error {
  readonly code: TlsErrorCode;
  readonly sslCode: string | undefined;
  readonly host: string | undefined;

  constructor(code: TlsErrorCode, message: string, options: TlsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TlsError";
    this.code = code;
    this.sslCode = options.sslCode;
    this.host = options.host;
    Object.defineProperty(this, MARKER, { value: true });
  }

  /** True for any TlsError, also one created by another copy of this package. */
  static is(value: unknown): value is TlsError {
    return typeof value === "object" && value !== null && MARKER in value;
  }
}

// OpenSSL verification results (X509_V_ERR_* names, as Node.js reports them) and Node.js /
// OpenSSL error codes, by the TlsErrorCode they mean.
const UNTRUSTED = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_CHAIN_TOO_LONG",
  "INVALID_CA",
  "INVALID_PURPOSE",
  "PATH_LENGTH_EXCEEDED",
  "CERT_REVOKED",
  "ERR_SSL_CERTIFICATE_VERIFY_FAILED",
]);
const EXPIRED = new Set(["CERT_HAS_EXPIRED", "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED"]);
const NOT_YET_VALID = new Set(["CERT_NOT_YET_VALID"]);
const HOSTNAME = new Set(["ERR_TLS_CERT_ALTNAME_INVALID", "HOSTNAME_MISMATCH"]);
const NO_CLIENT_CERT = new Set([
  // TLS 1.3 alert 116, as the client sees it
  "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
  // as the server sees it
  "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE",
]);
// Alerts the peer sends about the certificate this side presented.
const REJECTED = new Set([
  "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA",
  "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE",
  "ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED",
  "ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN",
  "ERR_SSL_TLSV1_ALERT_ACCESS_DENIED",
]);

const WHY: Record<TlsErrorCode, string> = {
  CERT_HAS_EXPIRED: "the certificate has expired",
  CERT_NOT_YET_VALID: "the certificate is not valid yet",
  UNTRUSTED: "the certificate is not trusted (it does not chain to a trusted CA)",
  HOSTNAME_MISMATCH: "the certificate does not match the name",
  NO_CLIENT_CERT: "the server requires a client certificate and none was sent",
  CERT_REJECTED: "the peer refused the certificate this side sent",
  BAD_CERTIFICATE: "a certificate, key or CA cannot be used",
  TIMEOUT: "the TLS connection timed out",
  HANDSHAKE: "the TLS handshake failed",
};

/** The TlsErrorCode that an OpenSSL / Node.js error code means, or null when it is not TLS. */
export function tlsErrorCode(sslCode: string | undefined): TlsErrorCode | null {
  if (sslCode === undefined) return null;
  if (EXPIRED.has(sslCode)) return "CERT_HAS_EXPIRED";
  if (NOT_YET_VALID.has(sslCode)) return "CERT_NOT_YET_VALID";
  if (HOSTNAME.has(sslCode)) return "HOSTNAME_MISMATCH";
  if (UNTRUSTED.has(sslCode)) return "UNTRUSTED";
  if (NO_CLIENT_CERT.has(sslCode)) return "NO_CLIENT_CERT";
  if (REJECTED.has(sslCode)) return "CERT_REJECTED";
  // Every other OpenSSL failure (ERR_SSL_*) and Node's own TLS ones (ERR_TLS_*).
  if (sslCode.startsWith("ERR_SSL_") || sslCode.startsWith("ERR_TLS_")) return "HANDSHAKE";
  return null;
}

/**
 * Turns what Node.js reports into a TlsError naming the host (and, when given, the address it
 * was reached at), or returns `error` unchanged when it is no TLS failure: a refused TCP
 * connection stays what it is.
 */
export function toTlsError(error: unknown, host: string, address?: string): unknown {
  if (TlsError.is(error)) return error;
  const sslCode =
    typeof error === "object" && error !== null && "code" in error
      ? String((error as { code: unknown }).code)
      : undefined;
  const code = tlsErrorCode(sslCode);
  if (code === null) return error;
  const detail = error instanceof Error ? error.message : String(error);
  const where = address === undefined || address === host ? host : `${host} (${address})`;
  return new TlsError(code, `TLS with ${where}: ${code}: ${WHY[code]} (${sslCode}: ${detail})`, {
    ...(sslCode !== undefined ? { sslCode } : {}),
    host,
    cause: error,
  });
}
