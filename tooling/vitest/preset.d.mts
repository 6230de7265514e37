import type { ViteUserConfig } from "vitest/config";

export declare const testPreset: NonNullable<ViteUserConfig["test"]>;
