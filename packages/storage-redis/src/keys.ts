import { StorageError } from "@myqtt/storage";

/** The keys of one client id (see README.md, "Key layout"). */
export interface ClientKeys {
  readonly session: string;
  readonly subs: string;
  readonly msgs: string;
  readonly qos2: string;
  readonly will: string;
}

/**
 * Where everything lives under one prefix. A client id goes into its keys base64url-encoded
 * (UTF-8), so ids holding ":", "{", "/" or ".." cannot collide with each other or with the
 * shared keys; the braces make the id a Redis Cluster hash tag (all keys of a client in one slot).
 */
export class KeyLayout {
  /** SET of the client ids that have data (raw ids, UTF-8). */
  readonly clients: string;
  /** HASH topic → encoded retained message. */
  readonly retained: string;

  constructor(readonly prefix: string) {
    this.clients = `${prefix}clients`;
    this.retained = `${prefix}retained`;
  }

  client(clientId: string): ClientKeys {
    const base = `${this.prefix}c:{${encodeClientId(clientId)}}:`;
    return {
      session: `${base}session`,
      subs: `${base}subs`,
      msgs: `${base}msgs`,
      qos2: `${base}qos2`,
      will: `${base}will`,
    };
  }
}

/** A lone surrogate: such a string has no UTF-8 form, so two of them could share one key. */
const LONE_SURROGATE = /\p{Cs}/u;

/** The id as it appears inside keys; throws for an id that is not well-formed Unicode. */
export function encodeClientId(clientId: string): string {
  checkWellFormed(clientId);
  return Buffer.from(clientId, "utf8").toString("base64url");
}

/** Whether `text` has a UTF-8 form (String.prototype.isWellFormed is not in ES2022). */
export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/** MQTT ids are UTF-8 strings [MQTT-1.5.4-1]; one with a lone surrogate cannot be stored exactly. */
export function checkWellFormed(clientId: string): void {
  if (!isWellFormed(clientId)) {
    throw new StorageError(
      "INVALID_CLIENT_ID",
      "a client id must be well-formed Unicode (it holds a lone surrogate)",
    );
  }
}

/** A Redis glob matching exactly `literal` followed by anything (for HSCAN MATCH). */
export function globPrefix(literal: string): string {
  return `${literal.replace(/[*?[\]\\]/g, "\\$&")}*`;
}
