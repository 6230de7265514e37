/** Why a storage call failed. */
export type StorageErrorCode =
  /** An empty client id, or one that is not a string. */
  | "INVALID_CLIENT_ID"
  /** The storage was closed (or never opened). */
  | "CLOSED"
  /** The disk or the server failed a read or a write. */
  | "IO"
  /** Another process (or another open instance) uses the same storage directory. */
  | "LOCKED";

/** A storage call that failed; `code` says why, `cause` holds the underlying error. */
export class StorageError extends Error {
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageError";
    this.code = code;
  }
}

/** Throws unless `clientId` is a non-empty string (MyQtt refuses an empty id everywhere). */
export function checkClientId(clientId: unknown): asserts clientId is string {
  if (typeof clientId !== "string" || clientId.length === 0) {
    throw new StorageError("INVALID_CLIENT_ID", "a client id must be a non-empty string");
  }
}

/** A short description of any thrown value. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
