import { createHash } from "node:crypto";
import type { TlsPeer, Transport } from "@myqtt/core";

/** Digest methods of peerCertificateDigest and getDigest (MyQtt's MyQttDigestMethod). */
export type DigestMethod = "sha1" | "md5" | "sha256";

const METHODS = new Set<string>(["sha1", "md5", "sha256"]);

function isTransport(value: unknown): value is Transport {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Transport).write === "function" &&
    typeof (value as Transport).start === "function"
  );
}

function field(value: unknown, name: string): unknown {
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)[name]
    : undefined;
}

/**
 * The Transport behind a connection object, found by shape so that this package needs neither
 * broker nor client: a Transport itself, anything with `transport` (the broker's ServerConn,
 * the client's MqttClient), or anything whose `client` has one (MyQtt's Conn). Null when none
 * (a failed Conn, a client that is offline).
 */
export function transportOf(holder: unknown): Transport | null {
  if (isTransport(holder)) return holder;
  const direct = field(holder, "transport");
  if (isTransport(direct)) return direct;
  const viaClient = field(field(holder, "client"), "transport");
  return isTransport(viaClient) ? viaClient : null;
}

/** What the TLS handshake of a connection said about its peer; null without TLS. */
export function tlsPeerOf(holder: unknown): TlsPeer | null {
  const transport = transportOf(holder);
  return transport?.tlsPeer?.() ?? null;
}

/** Whether the connection runs over TLS (MyQtt's myqtt_tls_is_on). */
export function isOn(conn: unknown): boolean {
  return transportOf(conn)?.tls === true;
}

/**
 * Whether the peer's certificate was verified (MyQtt's myqtt_tls_verify_cert): it chains to a
 * trusted CA and, seen from a client, matches the server name. False without TLS, without a
 * peer certificate, or when verification was off and failed.
 */
export function verifyCert(conn: unknown): boolean {
  const peer = tlsPeerOf(conn);
  return peer !== null && peer.certificate !== null && peer.authorized;
}

/** "AB:CD:..." (upper-case hex, colon-separated): how MyQtt and `openssl -fingerprint` print. */
function colonHex(digest: Buffer): string {
  const hex = digest.toString("hex").toUpperCase();
  return hex.replace(/(..)(?!$)/g, "$1:");
}

/**
 * The digest of `data` as colon-separated upper-case hex (MyQtt's myqtt_tls_get_digest, which
 * mod-auth-xml uses for md5 and sha1 password formats).
 */
export function getDigest(method: DigestMethod, data: string | Uint8Array): string {
  if (!METHODS.has(method)) throw new RangeError(`unsupported digest method ${String(method)}`);
  return colonHex(createHash(method).update(data).digest());
}

/**
 * The fingerprint of the peer's certificate (MyQtt's myqtt_tls_get_peer_ssl_digest), e.g.
 * "5B:94:2B:...". Null when the connection has no TLS or the peer sent no certificate.
 */
export function peerCertificateDigest(conn: unknown, method: DigestMethod = "sha1"): string | null {
  const certificate = tlsPeerOf(conn)?.certificate ?? null;
  return certificate === null ? null : getDigest(method, certificate);
}
