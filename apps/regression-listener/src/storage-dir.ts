// Empties the broker's storage directory at start, as MyQtt's regression listener does: every
// run begins without the sessions and retained messages of the last one.
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";

/** Whether `pid` is a running process (EPERM: running, someone else's). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True when `a` is `b` or one of its parents. */
function containsOrIs(a: string, b: string): boolean {
  const rel = relative(a, b);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/**
 * Deletes everything in `dir` (creating it when missing) and returns its absolute path.
 * Refuses a directory that holds the working directory or the home directory (a mistyped
 * --storage must not wipe a tree), and one whose storage LOCK belongs to a running process.
 */
export async function clearStorageDir(dir: string): Promise<string> {
  const path = resolve(dir);
  if (path === dirname(path)) throw new Error(`refusing to empty ${path}: it is a root directory`);
  for (const kept of [process.cwd(), homedir()]) {
    if (containsOrIs(path, resolve(kept)))
      throw new Error(`refusing to empty ${path}: it contains ${kept}`);
  }
  const owner = Number.parseInt(await readFile(join(path, "LOCK"), "utf8").catch(() => ""), 10);
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner))
    throw new Error(`storage ${path} is in use by process ${owner}`);
  await mkdir(path, { recursive: true });
  for (const entry of await readdir(path))
    await rm(join(path, entry), { recursive: true, force: true });
  return path;
}
