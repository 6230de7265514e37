// The conformance suite against the memory backend (nothing survives a close, so no durability tests).
import { MemoryStorage } from "../src/memory.js";
import { describeStorageConformance } from "../src/testing.js";

describeStorageConformance("memory", async () => {
  const storage = new MemoryStorage();
  await storage.open();
  return { storage };
});
