import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import { TlsError } from "./errors.js";
import { type PemSource, readPem, readPemSync, type TlsCertificate, withChain } from "./pem.js";

/** The oldest protocol version this package speaks: TLS 1.0 and 1.1 are broken. */
export type TlsMinVersion = "TLSv1.2" | "TLSv1.3";

/** A CA option: one source (which may hold several PEM certificates) or a list. */
export type CaSource = PemSource | readonly PemSource[];

/** The CA option as a list (empty when absent). */
export function caList(ca: CaSource | null | undefined): readonly PemSource[] {
  if (ca === null || ca === undefined) return [];
  return Array.isArray(ca) ? (ca as readonly PemSource[]) : [ca as PemSource];
}

/** The options of a secure context with `certificate` loaded (synchronously) over `base`. */
export function certificateOptionsSync(
  base: SecureContextOptions,
  certificate: TlsCertificate,
): SecureContextOptions {
  const chain = certificate.chain == null ? null : readPemSync(certificate.chain);
  return {
    ...base,
    cert: withChain(readPemSync(certificate.cert), chain),
    key: readPemSync(certificate.key),
  };
}

/** The options of a secure context with `certificate` loaded (files read asynchronously). */
export async function certificateOptions(
  base: SecureContextOptions,
  certificate: TlsCertificate,
): Promise<SecureContextOptions> {
  const [cert, key, chain] = await Promise.all([
    readPem(certificate.cert),
    readPem(certificate.key),
    certificate.chain == null ? null : readPem(certificate.chain),
  ]);
  return { ...base, cert: withChain(cert, chain), key };
}

/**
 * A secure context, or a TlsError "BAD_CERTIFICATE" saying what is wrong (a key that does not
 * match the certificate, text that is no PEM...) instead of OpenSSL's bare message.
 */
export function secureContext(options: SecureContextOptions): SecureContext {
  try {
    return createSecureContext(options);
  } catch (error) {
    throw new TlsError("BAD_CERTIFICATE", `unusable certificate, key or CA: ${String(error)}`, {
      cause: error,
      ...(typeof (error as { code?: unknown }).code === "string"
        ? { sslCode: (error as { code: string }).code }
        : {}),
    });
  }
}
