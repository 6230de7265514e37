import { link, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { StorageError } from "../errors.js";

/**
 * Makes sure one process at a time uses a storage directory: two brokers writing the same log
 * would corrupt it. The lock file holds the owner's pid and is created atomically (a hard link
 * of a private file, which fails if the lock exists). A lock left by a process that died
 * (kill -9) is taken over: renamed away (only one of several racing processes can rename that
 * file) and checked to be the dead one's before it is removed.
 */
export async function lockDirectory(root: string): Promise<() => Promise<void>> {
  const path = join(root, "LOCK");
  const mine = join(root, `LOCK.${process.pid}.${Math.random().toString(36).slice(2)}`);
  await writeFile(mine, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(mine, path);
        return () => unlink(path).catch(() => {});
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const owner = await ownerOf(path);
      if (owner === process.pid)
        throw new StorageError("LOCKED", `storage ${root} is already open in this process`);
      if (owner !== null && isAlive(owner))
        throw new StorageError("LOCKED", `storage ${root} is in use by process ${owner}`);
      await takeOver(path, owner);
    }
    throw new StorageError("LOCKED", `cannot lock storage ${root}`);
  } finally {
    await unlink(mine).catch(() => {});
  }
}

/** Removes a stale lock of `deadOwner`, unless another process replaced it meanwhile. */
async function takeOver(path: string, deadOwner: number | null): Promise<void> {
  const aside = `${path}.stale.${process.pid}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return; // someone else took it
    throw error;
  }
  const owner = await ownerOf(aside);
  if (owner !== deadOwner && owner !== null && isAlive(owner)) {
    // A live process locked it between our read and our rename: give it back.
    await link(aside, path).catch(() => {});
  }
  await unlink(aside).catch(() => {});
}

async function ownerOf(path: string): Promise<number | null> {
  const text = await readFile(path, "utf8").catch(() => "");
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
