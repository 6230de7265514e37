import type { Options } from "tsup";

/** The tsup options of a library package (ESM + CJS + types). */
export declare function libraryConfig(options?: { platform?: "node" | "neutral" }): Options;
