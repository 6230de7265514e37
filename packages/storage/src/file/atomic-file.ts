import { mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content:
 * written to a temporary file, flushed to disk when `sync`, then renamed over the old one.
 */
export async function writeAtomically(
  path: string,
  data: Uint8Array,
  sync: boolean,
): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, "w", 0o600).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    // The new directory's entry must be on disk too, or the file could vanish with it.
    if (sync) await syncDirectory(dirname(dirname(path)));
    return open(tmp, "w", 0o600);
  });
  try {
    await fh.writeFile(data);
    if (sync) await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** Removes `path`; true when it existed (a file already gone is fine). */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/** Flushes a directory's entries (renames, removals) to disk. */
export async function syncDirectory(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
