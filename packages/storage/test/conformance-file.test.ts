import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStorage } from "../src/file/file-storage.js";
import { describeStorageConformance } from "../src/testing.js";
import type { Durability } from "../src/types.js";

// The file backend in each durability mode, and once with a tiny log so that compaction runs
// in the middle of the suite's writes.
const variants: [string, Durability, number | undefined][] = [
  ["fsync", "fsync", undefined],
  ["async", "async", undefined],
  ["none", "none", undefined],
  ["fsync, compacting every 4 KiB", "fsync", 4096],
];

for (const [name, durability, compactAfterBytes] of variants) {
  describeStorageConformance(
    `FileStorage (${name})`,
    async () => {
      const path = await mkdtemp(join(tmpdir(), "myqtt-file-storage-"));
      const make = async (): Promise<FileStorage> => {
        const storage = new FileStorage({
          path,
          hashSize: 64,
          durability,
          ...(compactAfterBytes === undefined ? {} : { compactAfterBytes }),
        });
        await storage.open();
        return storage;
      };
      let current = await make();
      return {
        storage: current,
        reopen: async () => {
          await current.close();
          current = await make();
          return current;
        },
        cleanup: () => rm(path, { recursive: true, force: true }),
      };
    },
    { durable: true },
  );
}
