import { createHash } from "node:crypto";

/**
 * The bucket of a client id or topic: MyQtt's hash (axl_hash_string, the PJW/ELF hash over
 * signed chars) modulo the hash size, so keys spread over `hashSize` directories or files.
 */
export function bucketOf(key: string, hashSize: number): number {
  let h = 0;
  for (const byte of Buffer.from(key, "utf8")) {
    const c = byte > 127 ? byte - 256 : byte;
    h = ((h << 4) + c) >>> 0;
    const g = h & 0xf0000000;
    if (g !== 0) h = (h ^ (g >>> 24) ^ g) >>> 0;
  }
  return h % hashSize;
}

const SAFE = /^[a-z0-9_-]$/;
const MAX_NAME = 180;

/**
 * A client id as a file name that cannot leave its directory and stays distinct on
 * case-insensitive file systems: lower-case letters, digits, `_` and `-` are kept, every
 * other UTF-8 byte becomes `%XX` (so `../x` is `%2E%2E%2Fx`, `A` is `%41`). A name that
 * would exceed 180 characters is cut and suffixed with `~` and a SHA-256 of the whole id.
 * The id itself is stored inside the file; the name is never decoded.
 */
export function clientFileName(clientId: string): string {
  let name = "";
  for (const ch of clientId) {
    if (SAFE.test(ch)) {
      name += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, "utf8"))
      name += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (name.length > MAX_NAME) {
    const digest = createHash("sha256").update(clientId, "utf8").digest("hex");
    name = `${name.slice(0, MAX_NAME - 65)}~${digest}`;
  }
  return name;
}
