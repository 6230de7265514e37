// The LOCK file of a FileStorage directory: one process (and one instance) at a time; a lock
// left by a process that died is taken over.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StorageError } from "../src/errors.js";
import { FileStorage } from "../src/file/file-storage.js";
import { delivery, openFile, removeTempDirs, stateOf, tempDir } from "./file-helpers.js";

afterEach(removeTempDirs);

/** The rejection of `promise` (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (error: unknown) => error,
  );
}

/** Runs a node process that exits at once; resolves its pid once it is gone. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", () => resolve(child.pid!));
  });
}

describe("FileStorage directory lock", () => {
  it("a second FileStorage on an open directory rejects open() with LOCKED; the first goes on", async () => {
    const root = await tempDir();
    const first = await openFile(root);
    expect(await readFile(join(root, "LOCK"), "utf8")).toBe(`${process.pid}\n`);

    const second = new FileStorage({ path: root });
    const error = await rejection(second.open());
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe("LOCKED");
    expect((error as StorageError).message).toMatch(/already open in this process/);
    expect(second.isOpen).toBe(false);
    // The refused instance took nothing away from the first one.
    expect(await readFile(join(root, "LOCK"), "utf8")).toBe(`${process.pid}\n`);
    await first.write({ op: "delivery", clientId: "a", delivery: delivery(1) });
    expect((await first.readClient("a"))?.deliveries).toHaveLength(1);
    await second.close();
    expect(existsSync(join(root, "LOCK"))).toBe(true);
    await first.close();
  });

  it("after close(), the lock is released and another instance opens and sees the data", async () => {
    const root = await tempDir();
    const first = await openFile(root);
    await first.write({ op: "delivery", clientId: "a", delivery: delivery(1) });
    await first.close();
    expect(existsSync(join(root, "LOCK"))).toBe(false);

    const second = await openFile(root);
    expect((await stateOf(second)).clients.map((c) => c.clientId)).toEqual(["a"]);
    expect(await readFile(join(root, "LOCK"), "utf8")).toBe(`${process.pid}\n`);
    await second.close();
  });

  it("a LOCK holding the pid of a dead process is taken over", async () => {
    const root = await tempDir();
    const first = await openFile(root);
    await first.write({ op: "delivery", clientId: "a", delivery: delivery(1) });
    await first.close();
    const pid = await deadPid();
    expect(pid).not.toBe(process.pid);
    await writeFile(join(root, "LOCK"), `${pid}\n`);

    const storage = await openFile(root);
    expect(await readFile(join(root, "LOCK"), "utf8")).toBe(`${process.pid}\n`);
    expect((await stateOf(storage)).clients.map((c) => c.clientId)).toEqual(["a"]);
    await storage.close();
  });

  it("a LOCK holding the pid of a live process is refused, and taken over once it died", async () => {
    const root = await tempDir();
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 10000)"], {
      stdio: "ignore",
    });
    try {
      await writeFile(join(root, "LOCK"), `${child.pid}\n`);
      const error = await rejection(new FileStorage({ path: root }).open());
      expect((error as StorageError).code).toBe("LOCKED");
      expect((error as StorageError).message).toContain(`in use by process ${child.pid}`);
      expect(await readFile(join(root, "LOCK"), "utf8")).toBe(`${child.pid}\n`);
    } finally {
      const exited = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    const storage = await openFile(root);
    expect(await readFile(join(root, "LOCK"), "utf8")).toBe(`${process.pid}\n`);
    await storage.close();
  });

  it("an empty or garbage LOCK (a crash while it was written) is taken over", async () => {
    for (const content of ["", "not a pid\n", "-5\n", "0\n"]) {
      const root = await tempDir();
      await openFile(root).then((s) => s.close());
      await writeFile(join(root, "LOCK"), content);
      const storage = await openFile(root);
      expect(await readFile(join(root, "LOCK"), "utf8"), JSON.stringify(content)).toBe(
        `${process.pid}\n`,
      );
      await storage.close();
    }
  });

  it("an instance whose open() was refused cannot write, and its close() leaves the lock alone", async () => {
    const root = await tempDir();
    const first = await openFile(root);
    const second = new FileStorage({ path: root });
    await second.open().catch(() => {});
    const error = await rejection(
      second.write({ op: "delivery", clientId: "b", delivery: delivery(1) }),
    );
    expect((error as StorageError).code).toBe("CLOSED");
    await second.close();
    expect(await readFile(join(root, "LOCK"), "utf8")).toBe(`${process.pid}\n`);
    await first.close();
  });
});
