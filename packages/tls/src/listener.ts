import {
  createServer,
  type SecureContext,
  type SecureContextOptions,
  type Server,
  type TLSSocket,
} from "node:tls";
import { type Ctx, describe, LogLevel, type Transport, type TransportListener } from "@myqtt/core";
import { certificateFor } from "./certificate-handlers.js";
import { TlsError, toTlsError } from "./errors.js";
import { type PemSource, readPem, samePem, type TlsCertificate } from "./pem.js";
import {
  type CaSource,
  caList,
  certificateOptions,
  certificateOptionsSync,
  secureContext,
  type TlsMinVersion,
} from "./secure-context.js";
import type { CertificateTarget, TlsContext } from "./tls-context.js";
import { TlsTransport } from "./transport.js";

/**
 * Chooses a certificate for the SNI name a client asked for; null (or undefined) keeps the
 * default one. Consulted before the certificate handlers of `ctx`.
 */
export type SniHook = (
  serverName: string,
) => TlsCertificate | null | undefined | Promise<TlsCertificate | null | undefined>;

/** Options of listenTls (also the `transportOptions` of a broker listener with listenTls). */
export interface TlsListenOptions {
  /**
   * The default certificate and its key. Optional: without them a client is served only when
   * SNI finds a certificate (hook, handlers) or a TlsContext gives one; otherwise its handshake
   * fails, as with MyQtt.
   */
  cert?: PemSource;
  key?: PemSource;
  /** Intermediate CA certificates sent after `cert`. */
  chain?: PemSource | null;
  /** The CAs that client certificates must chain to (mutual TLS). */
  ca?: CaSource;
  /**
   * Asks clients for a certificate but accepts them without one, or with one that does not
   * verify: tlsPeer() of the connection says what was found, for the CONNECT hook to decide.
   */
  requestCert?: boolean;
  /**
   * Mutual TLS (MyQtt's listener "verify on"): a client certificate chaining to `ca` is
   * required; a client without one, or with another, is refused during the handshake.
   */
  requireClientCert?: boolean;
  /** Picks certificates by SNI name (before the certificate handlers of `ctx`). */
  sni?: SniHook;
  /**
   * The MyQtt context: its certificate handlers (setCertificateHandlers) choose certificates by
   * SNI name, and handshake failures are logged through it.
   */
  ctx?: Ctx;
  /** A default certificate that can be replaced while the listener runs (overrides cert/key). */
  context?: TlsContext;
  /** Default "TLSv1.2". */
  minVersion?: TlsMinVersion;
  /** A client that has not completed its handshake by then is dropped (default 10000). */
  handshakeTimeoutMs?: number;
  /** listen() backlog (default 511). */
  backlog?: number;
  /** How many SNI names keep a loaded certificate (default 256; clients choose the names). */
  sniCacheSize?: number;
  /** Called on each failed handshake (besides the log line on `ctx`). */
  onHandshakeError?: (error: unknown, peer: { address: string; port: number }) => void;
}

interface CachedContext {
  source: TlsCertificate;
  context: SecureContext;
}

function sameCertificate(a: TlsCertificate, b: TlsCertificate): boolean {
  return samePem(a.cert, b.cert) && samePem(a.key, b.key) && samePem(a.chain, b.chain);
}

/**
 * A listening TLS endpoint ("mqtts"). Its default certificate can be replaced while it runs
 * (setCertificate); certificates chosen by SNI are kept per name until then.
 */
export class TlsListener implements TransportListener, CertificateTarget {
  readonly scheme = "mqtts";
  host = "";
  port = 0;
  connections = 0;
  private readonly sniCache = new Map<string, CachedContext>();
  /** Bumped when the cache is dropped: a certificate loaded across that is not kept. */
  private sniGeneration = 0;
  private closed = false;

  /** @internal */
  constructor(
    private readonly server: Server,
    private readonly base: SecureContextOptions,
    private readonly options: TlsListenOptions,
  ) {}

  /**
   * Replaces the default certificate (MyQtt's myqtt_tls_set_certificate): new connections get
   * it, open ones keep theirs. Paths are read now; throws TlsError "BAD_CERTIFICATE" when the
   * certificate cannot be used, and then nothing changes.
   */
  setCertificate(cert: PemSource, key: PemSource, chain?: PemSource | null): void {
    this.prepareCertificate({ cert, key, chain: chain ?? null })();
  }

  /** @internal CertificateTarget: loads now, switches when the returned function is called. */
  prepareCertificate(certificate: TlsCertificate): () => void {
    const options = certificateOptionsSync(this.base, certificate);
    // Built here only to validate: setSecureContext builds its own from the same options.
    secureContext(options);
    return () => {
      this.server.setSecureContext(options);
      // Files behind SNI names may have been renewed together with the default certificate.
      this.clearSniCache();
    };
  }

  /** Forgets the certificates loaded for SNI names (they are loaded again on next use). */
  clearSniCache(): void {
    this.sniCache.clear();
    this.sniGeneration++;
  }

  /** @internal The context for an SNI name; undefined keeps the default certificate. */
  async contextFor(serverName: string): Promise<SecureContext | undefined> {
    const generation = this.sniGeneration;
    let chosen = (await this.options.sni?.(serverName)) ?? null;
    if (chosen === null && this.options.ctx !== undefined) {
      chosen = await certificateFor(this.options.ctx, serverName);
    }
    if (chosen === null) return undefined;
    const cached = this.sniCache.get(serverName);
    if (cached !== undefined && sameCertificate(cached.source, chosen)) {
      // Most recently used last: the oldest entry is the one dropped when the cache is full.
      this.sniCache.delete(serverName);
      this.sniCache.set(serverName, cached);
      return cached.context;
    }
    const context = secureContext(await certificateOptions(this.base, chosen));
    // Read before a renewal finished: good for this handshake, not for the next ones.
    if (generation !== this.sniGeneration) return context;
    this.sniCache.set(serverName, { source: chosen, context });
    const limit = this.options.sniCacheSize ?? 256;
    while (this.sniCache.size > limit) {
      const oldest = this.sniCache.keys().next().value;
      if (oldest === undefined) break;
      this.sniCache.delete(oldest);
    }
    return context;
  }

  /** @internal Logs (on `ctx`) and reports a handshake that failed. */
  report(error: unknown, socket: TLSSocket): void {
    // Once destroyed a TLSSocket forgets its peer; the TCP socket under it still knows.
    const raw = (socket as { _parent?: { remoteAddress?: string; remotePort?: number } })._parent;
    const peer = {
      address: socket.remoteAddress ?? raw?.remoteAddress ?? "",
      port: socket.remotePort ?? raw?.remotePort ?? 0,
    };
    const where = `${peer.address}:${peer.port}`;
    // Node.js refuses an unverified client certificate by closing without an alert, and then
    // reports only "socket hang up": the verification result says why.
    const verifyCode = socket.authorizationError as unknown;
    const failure =
      typeof verifyCode === "string" && (error as { code?: unknown }).code === "ECONNRESET"
        ? toTlsError(
            Object.assign(new Error(`client certificate refused: ${verifyCode}`), {
              code: verifyCode,
            }),
            where,
          )
        : toTlsError(error, where);
    try {
      this.options.onHandshakeError?.(failure, peer);
    } catch {
      // a failing observer must not take the listener down
    }
    const ctx = this.options.ctx;
    if (ctx === undefined) return;
    // A peer that goes away mid-handshake is ordinary; a refused handshake is worth a warning.
    const tls = TlsError.is(failure);
    ctx.log(
      tls ? LogLevel.WARNING : LogLevel.DEBUG,
      "tls/listener",
      `${this.scheme}://${this.host}:${this.port}: TLS handshake with ${where} failed${tls ? ` (${failure.code})` : ""}: ${failure instanceof Error ? failure.message : String(failure)}`,
    );
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.options.context?.detach(this);
      // The listening socket stops at once; open connections are left to their owners.
      this.server.close();
    }
    return Promise.resolve();
  }
}

async function baseOptions(options: TlsListenOptions): Promise<SecureContextOptions> {
  const ca = await Promise.all(caList(options.ca).map((source) => readPem(source)));
  return {
    minVersion: options.minVersion ?? "TLSv1.2",
    ...(ca.length > 0 ? { ca } : {}),
  };
}

async function defaultCertificate(
  base: SecureContextOptions,
  options: TlsListenOptions,
): Promise<SecureContextOptions> {
  const fromContext = options.context?.certificate ?? null;
  if (fromContext !== null) return certificateOptions(base, fromContext);
  if (options.cert !== undefined && options.key !== undefined) {
    return certificateOptions(base, {
      cert: options.cert,
      key: options.key,
      chain: options.chain ?? null,
    });
  }
  if (options.cert !== undefined || options.key !== undefined) {
    throw new TypeError("listenTls: `cert` and `key` go together");
  }
  return base;
}

/**
 * Listens for MQTT over TLS ("mqtts") on `host:port` (port 0 picks a free one) and hands each
 * connection to `onTransport` once its handshake succeeded. A failed handshake (a plain TCP
 * client, an untrusted client certificate...) closes that connection only and is logged on
 * `options.ctx`. Rejects when the address cannot be bound or a certificate cannot be used.
 */
export async function listenTls(
  host: string,
  port: number,
  onTransport: (transport: Transport) => void,
  options: TlsListenOptions = {},
): Promise<TlsListener> {
  // A broker hands its transportOptions over unchecked: the shape is verified here.
  if (typeof options !== "object" || options === null)
    throw new TypeError("listenTls: options must be an object");
  const opts = options;
  if (opts.requireClientCert && caList(opts.ca).length === 0) {
    // Without a CA, OpenSSL would check client certificates against the public roots.
    throw new TypeError("listenTls: requireClientCert needs `ca`, the CA of client certificates");
  }
  const base = await baseOptions(opts);
  const serverOptions = await defaultCertificate(base, opts);
  // Fails early, with a clear error, rather than at the first handshake.
  secureContext(serverOptions);
  const required = opts.requireClientCert === true;
  let listener: TlsListener | null = null;
  const server = createServer({
    ...serverOptions,
    noDelay: true,
    requestCert: required || opts.requestCert === true,
    rejectUnauthorized: required,
    handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
    // Without a hook or handlers every client gets the default certificate: no SNI round trip.
    ...(opts.sni !== undefined || opts.ctx !== undefined
      ? {
          SNICallback: (
            serverName: string,
            callback: (error: Error | null, context?: SecureContext) => void,
          ) => {
            if (listener === null) {
              callback(null, undefined);
              return;
            }
            listener.contextFor(serverName).then(
              (context) => callback(null, context),
              (error: unknown) => {
                opts.ctx?.log(
                  LogLevel.CRITICAL,
                  "tls/listener",
                  `cannot load the certificate for ${JSON.stringify(serverName)}, using the default: ${describe(error)}`,
                );
                callback(null, undefined);
              },
            );
          },
        }
      : {}),
  });
  listener = new TlsListener(server, base, opts);
  const self = listener;
  server.on("secureConnection", (socket: TLSSocket) => {
    self.connections++;
    const name = (socket as { servername?: unknown }).servername;
    const transport = new TlsTransport(socket, typeof name === "string" && name ? name : null);
    transport.counter = self;
    onTransport(transport);
  });
  server.on("tlsClientError", (error: Error, socket: TLSSocket) => {
    self.report(error, socket);
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, backlog: opts.backlog ?? 511 }, () => {
      server.off("error", reject);
      // Accept errors (EMFILE and the like) must not crash the process; the listener goes on.
      server.on("error", () => {});
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address : { address: host, port };
  self.host = bound.address;
  self.port = bound.port;
  opts.context?.attach(self);
  return self;
}

/**
 * Replaces the default certificate of a TLS listener, or of every listener using a TlsContext
 * (MyQtt's myqtt_tls_set_certificate). File paths or PEM; see TlsListener.setCertificate.
 */
export function setCertificate(
  target: TlsListener | TlsContext,
  cert: PemSource,
  key: PemSource,
  chain?: PemSource | null,
): void {
  const candidate = target as { setCertificate?: unknown } | null;
  if (typeof candidate?.setCertificate !== "function") {
    throw new TypeError(
      "setCertificate needs the listener returned by listenTls or a TlsContext (a broker Listener: pass a TlsContext in its transportOptions)",
    );
  }
  target.setCertificate(cert, key, chain ?? null);
}
