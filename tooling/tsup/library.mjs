// The build of every library package: ESM + CJS + .d.ts from src/index.ts.
/** @param {{ platform?: "node" | "neutral" }} [options] */
export function libraryConfig(options = {}) {
  return {
    entry: ["src/index.ts"],
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "es2022",
    platform: options.platform ?? "node",
  };
}
