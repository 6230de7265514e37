// The certificates of the regression suite (reference §5.5): MyQtt's own files expired and are
// SHA-1 (some 1024-bit), which OpenSSL 3 refuses, so the same set is made anew: 2048-bit RSA,
// SHA-256, ten years. The client computes fingerprints from these files, none is fixed.

/** The file names, as the C listener and client use them. */
export const CERT_FILES = {
  rootCert: "root.pem",
  rootKey: "root.key",
  serverCert: "server.pem",
  serverKey: "server.key",
  clientCert: "client.pem",
  clientKey: "client.key",
  defaultCert: "test-certificate.crt",
  defaultKey: "test-private.key",
  localhostCert: "localhost-server.crt",
  localhostKey: "localhost-server.key",
  test19aCert: "test19a-localhost-server.crt",
  test19aKey: "test19a-localhost-server.key",
} as const;

export type CertFile = keyof typeof CERT_FILES;

/** One certificate to make: its subject, extensions, and who signs it. */
export interface CertSpec {
  cert: string;
  key: string;
  commonName: string;
  /** "root": signed by root.pem; "self": self-signed. */
  signer: "root" | "self";
  extensions: string[];
}

export const VALID_DAYS = 3650;
export const RSA_BITS = 2048;

const SERVER_LEAF = [
  "basicConstraints = critical, CA:FALSE",
  "keyUsage = critical, digitalSignature, keyEncipherment",
  "extendedKeyUsage = serverAuth",
  "subjectKeyIdentifier = hash",
];

/** The root CA first: the others are signed with it. */
export const CERT_SPECS: readonly CertSpec[] = [
  {
    cert: CERT_FILES.rootCert,
    key: CERT_FILES.rootKey,
    commonName: "MyQtt regression root CA",
    signer: "self",
    extensions: [
      "basicConstraints = critical, CA:TRUE",
      "keyUsage = critical, keyCertSign, cRLSign",
      "subjectKeyIdentifier = hash",
    ],
  },
  {
    // The mutual TLS listener's certificate (1911). test_19 connects with the server name
    // test19.skipsni.localhost and verification on (MyQtt never checked names; Node does).
    cert: CERT_FILES.serverCert,
    key: CERT_FILES.serverKey,
    commonName: "localhost",
    signer: "root",
    extensions: [
      ...SERVER_LEAF,
      "subjectAltName = DNS:localhost, DNS:test19.skipsni.localhost, IP:127.0.0.1",
    ],
  },
  {
    // What a client shows on 1911.
    cert: CERT_FILES.clientCert,
    key: CERT_FILES.clientKey,
    commonName: "myqtt-regression-client",
    signer: "root",
    extensions: [
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature, keyEncipherment",
      "extendedKeyUsage = clientAuth",
      "subjectKeyIdentifier = hash",
    ],
  },
  {
    // The default certificate of 1910 and 1919; NOT signed by root, so test_19 can show that
    // 1911 refuses it as a client certificate.
    cert: CERT_FILES.defaultCert,
    key: CERT_FILES.defaultKey,
    commonName: "localhost",
    signer: "self",
    extensions: [...SERVER_LEAF, "subjectAltName = DNS:localhost, IP:127.0.0.1"],
  },
  {
    // SNI "localhost".
    cert: CERT_FILES.localhostCert,
    key: CERT_FILES.localhostKey,
    commonName: "localhost",
    signer: "root",
    extensions: [...SERVER_LEAF, "subjectAltName = DNS:localhost, IP:127.0.0.1"],
  },
  {
    // SNI "test19a.localhost".
    cert: CERT_FILES.test19aCert,
    key: CERT_FILES.test19aKey,
    commonName: "test19a.localhost",
    signer: "root",
    extensions: [...SERVER_LEAF, "subjectAltName = DNS:test19a.localhost"],
  },
];

/** An openssl config for one certificate: its subject and its extensions in section [ext]. */
export function opensslConfig(spec: CertSpec): string {
  const extensions =
    spec.signer === "root"
      ? [...spec.extensions, "authorityKeyIdentifier = keyid, issuer"]
      : spec.extensions;
  return [
    "[req]",
    "prompt = no",
    "distinguished_name = dn",
    "[dn]",
    "O = MyQtt regression",
    `CN = ${spec.commonName}`,
    "[ext]",
    ...extensions,
    "",
  ].join("\n");
}
