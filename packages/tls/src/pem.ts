import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { TlsError } from "./errors.js";

/**
 * A certificate, key or CA: PEM text, PEM bytes, or a file holding PEM. A string is taken as PEM
 * when it holds a "-----BEGIN" line and as a file path otherwise, so MyQtt-style calls with
 * paths (`setCertificate(listener, "server.crt", "server.key")`) and PEM loaded from a secret
 * store both work; `pemFile(path)` says "file" explicitly.
 */
export type PemSource = string | Uint8Array | { readonly path: string };

/** Marks `path` as a file to read (never taken as PEM text). */
export function pemFile(path: string): { readonly path: string } {
  return { path };
}

/** A certificate with its private key, and the intermediate CAs to send with it. */
export interface TlsCertificate {
  cert: PemSource;
  key: PemSource;
  /** Intermediate CA certificates, sent after `cert` so that peers can build the chain. */
  chain?: PemSource | null | undefined;
}

function pathOf(source: PemSource): string | null {
  if (typeof source === "string") return source.includes("-----BEGIN") ? null : source;
  if (source instanceof Uint8Array) return null;
  return source.path;
}

function bytesOf(source: string | Uint8Array): Buffer {
  return typeof source === "string"
    ? Buffer.from(source)
    : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
}

function unreadable(path: string, error: unknown): TlsError {
  return new TlsError("BAD_CERTIFICATE", `cannot read ${path}: ${(error as Error).message}`, {
    cause: error,
  });
}

/** The PEM bytes of a source, reading the file now (setCertificate is synchronous, as MyQtt's). */
export function readPemSync(source: PemSource): Buffer {
  const path = pathOf(source);
  if (path === null) return bytesOf(source as string | Uint8Array);
  try {
    return readFileSync(path);
  } catch (error) {
    throw unreadable(path, error);
  }
}

/** The PEM bytes of a source; a file is read without blocking the event loop. */
export async function readPem(source: PemSource): Promise<Buffer> {
  const path = pathOf(source);
  if (path === null) return bytesOf(source as string | Uint8Array);
  try {
    return await readFile(path);
  } catch (error) {
    throw unreadable(path, error);
  }
}

/** The certificate followed by its chain: what OpenSSL sends as the certificate list. */
export function withChain(cert: Buffer, chain: Buffer | null): Buffer {
  if (chain === null || chain.length === 0) return cert;
  return Buffer.concat([cert, Buffer.from("\n"), chain]);
}

/** Whether two sources name the same thing (same path, or same PEM), without reading files. */
export function samePem(a: PemSource | null | undefined, b: PemSource | null | undefined): boolean {
  if (a === b) return true;
  if (a == null || b == null) return a == null && b == null;
  const pa = pathOf(a);
  const pb = pathOf(b);
  if (pa !== null || pb !== null) return pa === pb;
  return bytesOf(a as string | Uint8Array).equals(bytesOf(b as string | Uint8Array));
}
