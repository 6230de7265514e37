// The ctx-wide SNI certificate handlers (reference §5.1): "localhost" and "test19a.localhost"
// get their own certificates, any other name keeps the listener's default one.
import * as myqtt from "myqtt";
import type { CertPaths } from "./certificates.js";

/** Certificates by SNI name. */
export function sniTable(paths: CertPaths): Map<string, { cert: string; key: string }> {
  return new Map([
    ["localhost", { cert: paths.localhostCert, key: paths.localhostKey }],
    ["test19a.localhost", { cert: paths.test19aCert, key: paths.test19aKey }],
  ]);
}

/** Installs the handlers on `ctx`: every TLS listener of the context consults them. */
export function installSniHandlers(ctx: myqtt.Ctx, paths: CertPaths): void {
  const table = sniTable(paths);
  // DNS names are case-insensitive; MyQtt compared exactly, but clients send lower case anyway.
  const find = (name: string) => table.get(name.toLowerCase());
  myqtt.tls.setCertificateHandlers(
    ctx,
    (_ctx, serverName) => find(serverName)?.cert ?? null,
    (_ctx, serverName) => find(serverName)?.key ?? null,
    null,
    undefined,
  );
}
