// myqtt.tls: PyMyQtt's TLS module. The transports come from @myqtt/tls; the two calls that
// need the broker or the client (createListener, createConn) are made here.
import {
  createListener as createPlainListener,
  type Listener,
  type ListenerOptions,
} from "@myqtt/broker";
import { Conn, ConnOpts } from "@myqtt/client";
import type { Ctx } from "@myqtt/core";
import { listenTls, sslPeerVerify, TlsContext, type TlsListenOptions } from "@myqtt/tls";

// Values only: the d.ts bundler cannot put types in a namespace (they are exported at the top).
export {
  connectTls,
  getDigest,
  isOn,
  listenTls,
  peerCertificateDigest,
  pemFile,
  setCertificate,
  setCertificateHandlers,
  setServerName,
  setSslCerts,
  sslPeerVerify,
  TlsContext,
  TlsError,
  TlsTransport,
  tlsErrorCode,
  tlsPeerOf,
  transportOf,
  verifyCert,
} from "@myqtt/tls";

/**
 * A TLS listener (MyQtt's myqtt_tls_listener_new): `opts` gives the certificate, key, chain, CA
 * and mutual TLS; without a certificate, `setCertificate(listener.tlsContext, ...)` or the
 * certificate handlers provide one. `brokerOptions` are those of createListener. Never throws:
 * check `isOk()`.
 */
export async function createListener(
  ctx: Ctx,
  host: string,
  port: string | number,
  opts: TlsListenOptions = {},
  brokerOptions: Omit<ListenerOptions, "transport" | "transportOptions"> = {},
): Promise<Listener & { tlsContext: TlsContext }> {
  const tlsContext = opts.context ?? new TlsContext();
  const listener = await createPlainListener(ctx, host, port, {
    ...brokerOptions,
    transport: listenTls,
    transportOptions: { ...opts, context: tlsContext, ctx },
  });
  return Object.assign(listener, { tlsContext });
}

/**
 * Connects over TLS (PyMyQtt's tls.create_conn): the server's certificate is verified unless
 * `sslPeerVerify(opts, false)`; `setSslCerts` and `setServerName` on `opts` add the rest.
 * Never throws: check `isOk()`.
 */
export function createConn(
  ctx: Ctx,
  host: string,
  port: string | number,
  clientId: string | null = null,
  cleanSession = false,
  keepAlive = 0,
  opts: ConnOpts = new ConnOpts(),
): Promise<Conn> {
  // Verification stays on unless the options already turned it off.
  if (opts.connector === undefined) sslPeerVerify(opts, true);
  return Conn.connect(ctx, host, port, clientId, cleanSession, keepAlive, opts);
}
