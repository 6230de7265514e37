import { defineConfig } from "tsup";
import { libraryConfig } from "../../tooling/tsup/library.mjs";

export default defineConfig({ ...libraryConfig({ platform: "node" }) });
