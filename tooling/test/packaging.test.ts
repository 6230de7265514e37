// Every published package: its build imports as ESM and as CJS with the same exports, its
// types resolve for both, publint finds nothing to fix, and it packs the repository's LICENSE.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { publint } from "publint";
import { formatMessage } from "publint/utils";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(import.meta.url);
const tooling = JSON.parse(readFileSync(join(ROOT, "tooling", "package.json"), "utf8")) as {
  devDependencies: Record<string, string>;
};

interface Manifest {
  name: string;
  private?: boolean;
}

const published = readdirSync(join(ROOT, "packages")).flatMap((dir) => {
  const manifest = JSON.parse(
    readFileSync(join(ROOT, "packages", dir, "package.json"), "utf8"),
  ) as Manifest;
  return manifest.private
    ? []
    : [{ dir: join(ROOT, "packages", dir), name: manifest.name, manifest }];
});

// The codec runs anywhere, so its types must compile without Node's; the other packages are for
// Node and their consumers have @types/node.
const RUNTIME_NEUTRAL = new Set(["@myqtt/codec"]);

/** Resolves `name` the way TypeScript does for an ESM or a CJS consumer; returns diagnostics. */
function typeCheckConsumer(
  name: string,
  format: "esm" | "cjs",
): { resolved: string; errors: string[] } {
  const file = join(ROOT, "tooling", format === "esm" ? "consumer.mts" : "consumer.cts");
  const source =
    format === "esm"
      ? `import * as pkg from "${name}";\nexport const keys: string[] = Object.keys(pkg);\n`
      : `import pkg = require("${name}");\nexport const keys: string[] = Object.keys(pkg);\n`;
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    types: RUNTIME_NEUTRAL.has(name) ? [] : ["node"],
    skipLibCheck: false,
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (path) => (path === file ? source : readFile(path));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (path) => path === file || fileExists(path);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (path, lang, ...rest) =>
    path === file ? ts.createSourceFile(path, source, lang) : getSourceFile(path, lang, ...rest);
  const program = ts.createProgram([file], options, host);
  const mode = format === "esm" ? ts.ModuleKind.ESNext : ts.ModuleKind.CommonJS;
  const resolution = ts.resolveModuleName(name, file, options, host, undefined, undefined, mode);
  const errors = ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
  return { resolved: resolution.resolvedModule?.resolvedFileName ?? "", errors };
}

describe("packaging", () => {
  it("finds the published packages, each a devDependency of the tooling package", () => {
    expect(published.length).toBeGreaterThan(0);
    for (const p of published) expect(tooling.devDependencies, p.name).toHaveProperty([p.name]);
  });

  for (const p of published) {
    describe(p.name, () => {
      it("imports as ESM and as CJS with the same named exports", async () => {
        const esm = (await import(p.name)) as Record<string, unknown>;
        const cjs = require(p.name) as Record<string, unknown>;
        const esmKeys = Object.keys(esm).filter((k) => k !== "default" && k !== "module.exports");
        expect(esmKeys.length).toBeGreaterThan(0);
        expect(Object.keys(cjs).sort()).toEqual(esmKeys.sort());
        expect(require.resolve(p.name)).toMatch(/dist[\\/]index\.cjs$/);
      });

      it("resolves its types for ESM and for CJS consumers", () => {
        const esm = typeCheckConsumer(p.name, "esm");
        expect(esm.resolved).toMatch(/dist[\\/]index\.d\.ts$/);
        expect(esm.errors).toEqual([]);
        const cjs = typeCheckConsumer(p.name, "cjs");
        expect(cjs.resolved).toMatch(/dist[\\/]index\.d\.cts$/);
        expect(cjs.errors).toEqual([]);
      });

      it("packs the repository's LICENSE (copied in by prepack)", () => {
        // npm runs prepack for a dry run too; its banner goes to stderr, the JSON to stdout.
        const out = execFileSync("npm", ["pack", "--dry-run", "--json"], {
          cwd: p.dir,
          encoding: "utf8",
          stdio: ["ignore", "pipe", "ignore"],
        });
        const [packed] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
        expect(packed!.files.map((f) => f.path)).toContain("LICENSE");
        expect(readFileSync(join(p.dir, "LICENSE"), "utf8")).toBe(
          readFileSync(join(ROOT, "LICENSE"), "utf8"),
        );
      });

      it("passes publint (strict)", async () => {
        const { messages, pkg } = await publint({
          pkgDir: p.dir,
          strict: true,
          level: "suggestion",
          // pnpm runs through npx here, so it is not on PATH; npm packs the same files.
          pack: "npm",
        });
        expect(messages.map((m) => formatMessage(m, pkg))).toEqual([]);
      });
    });
  }
});
