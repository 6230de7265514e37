// Undoing a test's brokers, clients and sockets after it, whichever way it ended. Importing this
// module registers the afterEach hook in the importing test file.
import { afterEach } from "vitest";

const cleanups = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // best effort: a test's leftovers must not fail the next one
    }
  }
});

export function onCleanup(fn) {
  cleanups.push(fn);
}
