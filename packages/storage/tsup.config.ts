import { defineConfig } from "tsup";
import { libraryConfig } from "../../tooling/tsup/library.mjs";

// Two entries: the backends, and the conformance suite that other backends run (./testing).
export default defineConfig({
  ...libraryConfig({ platform: "node" }),
  entry: ["src/index.ts", "src/testing.ts"],
  external: ["vitest"],
});
