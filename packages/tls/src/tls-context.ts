import type { PemSource, TlsCertificate } from "./pem.js";

/** @internal A listener that a TlsContext drives: loads a certificate, then switches to it. */
export interface CertificateTarget {
  /** Loads `certificate` (throws when unusable) and returns what switches to it. */
  prepareCertificate(certificate: TlsCertificate): () => void;
}

/**
 * The default certificate of one or more TLS listeners, replaceable while they run. The broker's
 * Listener keeps its transport listener private, so this is how a broker's certificate is
 * renewed: create a TlsContext, hand it to `createListener(..., { transport: listenTls,
 * transportOptions: { context } })`, later call `context.setCertificate(...)`.
 */
export class TlsContext {
  private current: TlsCertificate | null;
  private readonly targets = new Set<CertificateTarget>();

  /** `certificate`, when given, is the default certificate of every listener using it. */
  constructor(certificate?: TlsCertificate) {
    this.current = certificate ?? null;
  }

  /** The certificate set last (null: the listeners use their `cert`/`key` options). */
  get certificate(): TlsCertificate | null {
    return this.current;
  }

  /** How many running listeners use this context. */
  get listeners(): number {
    return this.targets.size;
  }

  /**
   * Replaces the default certificate of every listener using this context (and of those that
   * start later). New connections get it; open ones keep theirs. Throws TlsError
   * "BAD_CERTIFICATE" when it cannot be used, and then nothing changes.
   */
  setCertificate(cert: PemSource, key: PemSource, chain?: PemSource | null): void {
    const certificate: TlsCertificate = { cert, key, chain: chain ?? null };
    // Every listener loads it first, so one bad file changes none of them.
    const commits = [...this.targets].map((t) => t.prepareCertificate(certificate));
    for (const commit of commits) commit();
    this.current = certificate;
  }

  /** @internal */
  attach(target: CertificateTarget): void {
    this.targets.add(target);
  }

  /** @internal */
  detach(target: CertificateTarget): void {
    this.targets.delete(target);
  }
}
