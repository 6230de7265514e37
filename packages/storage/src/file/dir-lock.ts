import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { StorageError } from "../errors.js";

/**
 * Makes sure one process at a time uses a storage directory: two brokers writing the same log
 * would corrupt it. The lock file holds the owner's pid; a lock left by a process that died
 * (kill -9) is taken over.
 */
export async function lockDirectory(root: string): Promise<() => Promise<void>> {
  const path = join(root, "LOCK");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new StorageError("LOCKED", `storage ${root} is in use by process ${owner}`);
    }
    if (owner === process.pid) {
      throw new StorageError("LOCKED", `storage ${root} is already open in this process`);
    }
    await rm(path, { force: true });
  }
  throw new StorageError("LOCKED", `cannot lock storage ${root}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
