import type { Ctx } from "@myqtt/core";
import type { TlsCertificate } from "./pem.js";

/**
 * Returns the file (path) of the certificate, key or chain to use for `serverName`, or null to
 * keep the listener's default certificate. May be async (a look-up in a database).
 */
export type CertificateHandler<D = unknown> = (
  ctx: Ctx,
  serverName: string,
  data: D,
) => string | null | undefined | Promise<string | null | undefined>;

interface Handlers {
  cert: CertificateHandler<unknown>;
  key: CertificateHandler<unknown>;
  chain: CertificateHandler<unknown> | null;
  data: unknown;
}

const HANDLERS = Symbol("myqtt.tls.certificate-handlers");

/** The handlers of a context; a holder object so that listeners see later changes. */
function slotOf(ctx: Ctx): { handlers: Handlers | null } {
  return ctx.slot(HANDLERS, () => ({ handlers: null }));
}

/**
 * Chooses certificates by the SNI name a client asks for, for every TLS listener of `ctx`
 * (those created with `ctx` in their options); MyQtt's
 * myqtt_tls_listener_set_certificate_handlers. When both `certHandler` and `keyHandler` return
 * a path, that certificate is used; otherwise the listener's default one. Null handlers remove
 * them.
 */
export function setCertificateHandlers<D>(
  ctx: Ctx,
  certHandler: CertificateHandler<D> | null,
  keyHandler: CertificateHandler<D> | null,
  chainHandler: CertificateHandler<D> | null,
  data: D,
): void {
  const slot = slotOf(ctx);
  if (certHandler === null || keyHandler === null) {
    slot.handlers = null;
    return;
  }
  slot.handlers = {
    cert: certHandler as CertificateHandler<unknown>,
    key: keyHandler as CertificateHandler<unknown>,
    chain: chainHandler as CertificateHandler<unknown> | null,
    data,
  };
}

/**
 * What the handlers of `ctx` choose for `serverName`: a certificate (file paths), or null for
 * the default one. Errors of a handler propagate (the listener logs them and uses the default).
 */
export async function certificateFor(ctx: Ctx, serverName: string): Promise<TlsCertificate | null> {
  const handlers = slotOf(ctx).handlers;
  if (handlers === null) return null;
  const cert = await handlers.cert(ctx, serverName, handlers.data);
  if (!cert) return null;
  const key = await handlers.key(ctx, serverName, handlers.data);
  if (!key) return null;
  const chain =
    handlers.chain === null ? null : await handlers.chain(ctx, serverName, handlers.data);
  // Paths, never PEM text: the handlers return file names, as MyQtt's do.
  return { cert: { path: cert }, key: { path: key }, chain: chain ? { path: chain } : null };
}
