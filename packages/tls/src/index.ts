// @myqtt/tls: MQTT over TLS ("mqtts") for the client and the broker, through the core's
// Connector and ListenerFactory: verification, mutual TLS, SNI certificates, digests.

export {
  type CertificateHandler,
  setCertificateHandlers,
} from "./certificate-handlers.js";
export { type ConnectorHolder, setServerName, setSslCerts, sslPeerVerify } from "./conn-opts.js";
export { connectTls, type TlsConnectOptions } from "./connector.js";
export { TlsError, type TlsErrorCode, type TlsErrorOptions, tlsErrorCode } from "./errors.js";
export {
  listenTls,
  type SniHook,
  setCertificate,
  type TlsListener,
  type TlsListenOptions,
} from "./listener.js";
export {
  type DigestMethod,
  getDigest,
  isOn,
  peerCertificateDigest,
  tlsPeerOf,
  transportOf,
  verifyCert,
} from "./peer.js";
export { type PemSource, pemFile, type TlsCertificate } from "./pem.js";
export type { CaSource, TlsMinVersion } from "./secure-context.js";
export { TlsContext } from "./tls-context.js";
export { TlsTransport } from "./transport.js";
