import { defineConfig } from "vitest/config";
import { testPreset } from "../../tooling/vitest/preset.mjs";

export default defineConfig({ test: { ...testPreset } });
