// Certificates for the TLS tests, made at test time with the real `openssl` CLI in a temp dir
// (never committed: committed ones expire, as MyQtt's own did). P-256 keys, SHA-256 signatures.
// When openssl is missing the tests are skipped with the reason, unless MYQTT_REQUIRE_SERVICES=1
// (CI), where they fail.
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const INSTALL_HINT = "install it with `apt-get install openssl`";

/** Why the TLS tests cannot run here (null when they can); throws when services are required. */
export function opensslUnavailable(): string | null {
  const r = spawnSync("openssl", ["version"], { encoding: "utf8" });
  if (!r.error && /OpenSSL|LibreSSL/i.test(r.stdout)) return null;
  const reason = `openssl not found on PATH: ${INSTALL_HINT}`;
  if (process.env.MYQTT_REQUIRE_SERVICES === "1") {
    throw new Error(`MYQTT_REQUIRE_SERVICES=1 but ${reason}`);
  }
  return reason;
}

/** A certificate file and its key file (paths), and the certificate's PEM. */
export interface CertFiles {
  cert: string;
  key: string;
  pem: string;
}

export interface TestCertificates {
  dir: string;
  /** The root CA every "good" certificate chains to. */
  ca: CertFiles;
  /** An intermediate CA under the root. */
  intermediate: CertFiles;
  /** localhost (DNS:localhost, IP:127.0.0.1, IP:::1), signed by the root. */
  server: CertFiles;
  /** Another certificate for localhost, signed by the root: the replacement in renewal tests. */
  renewed: CertFiles;
  /** other.test, signed by the root: what SNI hands out. */
  other: CertFiles;
  /** localhost, signed by the intermediate (served with `chain`). */
  viaIntermediate: CertFiles;
  /** A client certificate (CN test-client, clientAuth) signed by the root. */
  client: CertFiles;
  /** localhost, self-signed: trusted by nobody. */
  selfSigned: CertFiles;
  /** localhost, signed by the root, valid 1-2 January 2020 only. */
  expired: CertFiles;
  /** `openssl x509 -fingerprint` of a certificate file, as "AB:CD:..." */
  fingerprint(cert: string, method: "sha1" | "md5" | "sha256"): string;
  remove(): void;
}

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused

[ca_root]
database = ROOT/index.txt
new_certs_dir = ROOT
serial = ROOT/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none

[ca_intermediate]
database = INTER/index.txt
new_certs_dir = INTER
serial = INTER/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none

[any]
commonName = supplied

[v3_root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[v3_intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[server_localhost]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[server_other]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[self_signed]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
`;

function openssl(dir: string, args: string[]): string {
  return execFileSync("openssl", args, {
    cwd: dir,
    encoding: "utf8",
    timeout: 20_000,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Generates every certificate of the tests into a fresh temp dir (about a second). */
export function generateCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "myqtt-tls-"));
  // Mosquitto, started as root, drops to its own user: it must be able to read the files.
  chmodSync(dir, 0o755);
  const root = join(dir, "root-db");
  const inter = join(dir, "intermediate-db");
  for (const db of [root, inter]) {
    mkdirSync(db);
    writeFileSync(join(db, "index.txt"), "");
    writeFileSync(join(db, "serial"), "1000\n");
  }
  const config = join(dir, "openssl.cnf");
  writeFileSync(config, CONFIG.replaceAll("ROOT", root).replaceAll("INTER", inter));

  const newKey = (name: string): string => {
    const key = join(dir, `${name}.key`);
    openssl(dir, [
      "genpkey",
      "-algorithm",
      "EC",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-out",
      key,
    ]);
    chmodSync(key, 0o644);
    return key;
  };
  const files = (name: string, key: string): CertFiles => {
    const cert = join(dir, `${name}.crt`);
    chmodSync(cert, 0o644);
    return { cert, key, pem: readFileSync(cert, "utf8") };
  };
  const selfSigned = (name: string, cn: string, extensions: string): CertFiles => {
    const key = newKey(name);
    openssl(dir, [
      "req",
      "-x509",
      "-new",
      "-config",
      config,
      "-key",
      key,
      "-subj",
      `/CN=${cn}`,
      "-days",
      "30",
      "-sha256",
      "-extensions",
      extensions,
      "-out",
      join(dir, `${name}.crt`),
    ]);
    return files(name, key);
  };
  const signed = (
    name: string,
    cn: string,
    issuer: CertFiles,
    section: "ca_root" | "ca_intermediate",
    extensions: string,
    dates: string[] = ["-days", "30"],
  ): CertFiles => {
    const key = newKey(name);
    const csr = join(dir, `${name}.csr`);
    openssl(dir, [
      "req",
      "-new",
      "-config",
      config,
      "-key",
      key,
      "-subj",
      `/CN=${cn}`,
      "-out",
      csr,
    ]);
    openssl(dir, [
      "ca",
      "-batch",
      "-notext",
      "-config",
      config,
      "-name",
      section,
      "-cert",
      issuer.cert,
      "-keyfile",
      issuer.key,
      "-extensions",
      extensions,
      ...dates,
      "-in",
      csr,
      "-out",
      join(dir, `${name}.crt`),
    ]);
    return files(name, key);
  };

  const ca = selfSigned("root-ca", "MyQtt Test Root CA", "v3_root");
  const intermediate = signed(
    "intermediate-ca",
    "MyQtt Test Intermediate CA",
    ca,
    "ca_root",
    "v3_intermediate",
  );
  return {
    dir,
    ca,
    intermediate,
    server: signed("server", "localhost", ca, "ca_root", "server_localhost"),
    renewed: signed("renewed", "localhost", ca, "ca_root", "server_localhost"),
    other: signed("other", "other.test", ca, "ca_root", "server_other"),
    viaIntermediate: signed(
      "via-intermediate",
      "localhost",
      intermediate,
      "ca_intermediate",
      "server_localhost",
    ),
    client: signed("client", "test-client", ca, "ca_root", "client"),
    selfSigned: selfSigned("self-signed", "localhost", "self_signed"),
    expired: signed("expired", "localhost", ca, "ca_root", "server_localhost", [
      "-startdate",
      "20200101000000Z",
      "-enddate",
      "20200102000000Z",
    ]),
    fingerprint(cert, method) {
      const out = openssl(dir, ["x509", "-in", cert, "-noout", "-fingerprint", `-${method}`]);
      // "SHA1 Fingerprint=AB:CD:..." (older versions print "sha1 Fingerprint=")
      return out.trim().split("=").pop()!.toUpperCase();
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
