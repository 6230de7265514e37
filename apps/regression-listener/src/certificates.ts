// Makes sure the certificate directory holds a usable set: kept when every file is there and
// no certificate expires within a day, otherwise the whole set is made again with openssl.
import { randomBytes, X509Certificate } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  CERT_FILES,
  CERT_SPECS,
  type CertFile,
  type CertSpec,
  opensslConfig,
  RSA_BITS,
  VALID_DAYS,
} from "./cert-specs.js";
import { OpensslMissingError, openssl } from "./openssl.js";

/** Absolute paths of every file of the set. */
export type CertPaths = Record<CertFile, string>;

export interface Certificates {
  dir: string;
  paths: CertPaths;
  /** True when the set was made now. */
  generated: boolean;
}

const DAY_MS = 86_400_000;

/** The files of the set in `dir`, as absolute paths (the SNI handlers hand them to TLS). */
export function certPaths(dir: string): CertPaths {
  const root = resolve(dir);
  const out = {} as CertPaths;
  for (const [name, file] of Object.entries(CERT_FILES) as [CertFile, string][])
    out[name] = join(root, file);
  return out;
}

/** Why the set in `dir` cannot be used as it is, or null when it can. */
async function problemWith(dir: string): Promise<string | null> {
  for (const spec of CERT_SPECS) {
    let pem: Buffer;
    try {
      pem = await readFile(join(dir, spec.cert));
      await readFile(join(dir, spec.key));
    } catch {
      return `${spec.cert} or ${spec.key} is missing`;
    }
    try {
      const x509 = new X509Certificate(pem);
      if (!(Date.parse(x509.validTo) > Date.now() + DAY_MS))
        return `${spec.cert} expires or expired`;
      // MyQtt's own test-certificate.crt was 1024-bit, which OpenSSL 3 refuses.
      const bits = x509.publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < RSA_BITS) return `${spec.cert} has a key weaker than ${RSA_BITS}-bit RSA`;
    } catch (error) {
      return `${spec.cert} is not a certificate: ${(error as Error).message}`;
    }
  }
  return null;
}

/** Makes one key and certificate in `work` (root.pem and root.key must be there for "root"). */
async function make(spec: CertSpec, work: string): Promise<void> {
  const config = `${spec.cert}.cnf`;
  await writeFile(join(work, config), opensslConfig(spec));
  await openssl(
    ["genpkey", "-algorithm", "RSA", "-pkeyopt", `rsa_keygen_bits:${RSA_BITS}`, "-out", spec.key],
    work,
  );
  await chmod(join(work, spec.key), 0o600);
  // A random serial: two sets made from the same root never share one.
  const serial = `0x${randomBytes(16).toString("hex")}`;
  const common = ["-sha256", "-days", String(VALID_DAYS), "-set_serial", serial];
  if (spec.signer === "self") {
    await openssl(
      ["req", "-x509", "-new", "-key", spec.key, "-config", config, "-extensions", "ext"]
        .concat(common)
        .concat(["-out", spec.cert]),
      work,
    );
    return;
  }
  const csr = `${spec.cert}.csr`;
  await openssl(["req", "-new", "-key", spec.key, "-config", config, "-out", csr], work);
  await openssl(
    ["x509", "-req", "-in", csr, "-CA", CERT_FILES.rootCert, "-CAkey", CERT_FILES.rootKey]
      .concat(["-extfile", config, "-extensions", "ext"])
      .concat(common)
      .concat(["-out", spec.cert]),
    work,
  );
}

/** Makes the whole set in a scratch directory, then moves it into `dir`. */
async function generate(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Inside `dir` so that the final renames stay on one file system.
  const work = await mkdtemp(join(dir, ".generating-"));
  try {
    for (const spec of CERT_SPECS) await make(spec, work);
    for (const spec of CERT_SPECS) {
      await rename(join(work, spec.key), join(dir, spec.key));
      await rename(join(work, spec.cert), join(dir, spec.cert));
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The certificates in `dir`, made with openssl when any is missing or expiring. Throws with a
 * message saying what to do when openssl is needed and missing.
 */
export async function ensureCertificates(
  dir: string,
  onGenerate: (why: string) => void = () => {},
): Promise<Certificates> {
  const root = resolve(dir);
  const paths = certPaths(root);
  const problem = await problemWith(root);
  if (problem === null) return { dir: root, paths, generated: false };
  onGenerate(problem);
  try {
    await generate(root);
  } catch (error) {
    if (error instanceof OpensslMissingError) {
      throw new Error(
        `certificates are needed in ${root} (${problem}) and openssl, which makes them, ` +
          "was not found on PATH: install it (apt-get install openssl) or put the files there",
      );
    }
    throw error;
  }
  const after = await problemWith(root);
  if (after !== null) throw new Error(`certificates made in ${root} are unusable: ${after}`);
  return { dir: root, paths, generated: true };
}
