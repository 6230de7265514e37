#!/usr/bin/env node
// Fails when a package imports what the layering of architecture.md forbids, or when
// @myqtt/codec gains a runtime dependency or a Node built-in import.
//   node scripts/layer-check.mjs [repo-root]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

// Direct arrows ("may import"); what they import may be imported too.
const DIRECT = {
  "@myqtt/codec": [],
  "@myqtt/core": ["@myqtt/codec"],
  "@myqtt/storage": ["@myqtt/core"],
  "@myqtt/storage-redis": ["@myqtt/storage"],
  "@myqtt/broker": ["@myqtt/storage", "@myqtt/core"],
  "@myqtt/client": ["@myqtt/core"],
  "@myqtt/tls": ["@myqtt/core"],
  "@myqtt/websocket": ["@myqtt/core"],
};
const LIBRARIES = Object.keys(DIRECT);
const UMBRELLA = "myqtt";

function closure(name, seen = new Set()) {
  for (const dep of DIRECT[name] ?? []) {
    if (!seen.has(dep)) {
      seen.add(dep);
      closure(dep, seen);
    }
  }
  return seen;
}

/** What a workspace package may import from the workspace. */
function allowedFor(name, isApp) {
  if (isApp || name === UMBRELLA) return new Set([...LIBRARIES, UMBRELLA]);
  if (name in DIRECT) return closure(name);
  return null; // unknown package: reported
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const IMPORT_PATTERNS = [
  /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*["']([^"']+)["']/g,
  /\bimport\s*["']([^"']+)["']/g,
  /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g,
];

function specifiers(source) {
  const out = new Set();
  for (const pattern of IMPORT_PATTERNS) {
    for (const m of source.matchAll(pattern)) out.add(m[1]);
  }
  return out;
}

function sourceFiles(dir) {
  const out = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (entry === "node_modules" || entry === "dist") continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(c|m)?[jt]s$/.test(entry) && !entry.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

function packageName(spec) {
  if (spec.startsWith("@")) return spec.split("/").slice(0, 2).join("/");
  return spec.split("/")[0];
}

const WORKSPACE = new Set([...LIBRARIES, UMBRELLA]);

export function checkLayers(root) {
  const problems = [];
  for (const group of ["packages", "apps"]) {
    let dirs;
    try {
      dirs = readdirSync(join(root, group));
    } catch {
      continue;
    }
    for (const dir of dirs) {
      const pkgDir = join(root, group, dir);
      let manifest;
      try {
        manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
      } catch {
        continue;
      }
      const name = manifest.name;
      const isApp = group === "apps";
      const allowed = allowedFor(name, isApp);
      const where = relative(root, pkgDir);
      if (allowed === null) {
        problems.push(
          `${where}: package ${name} has no place in the layering (tooling/scripts/layer-check.mjs)`,
        );
        continue;
      }
      const runtimeDeps = {
        ...manifest.dependencies,
        ...manifest.peerDependencies,
        ...manifest.optionalDependencies,
      };
      if (name === "@myqtt/codec" && Object.keys(runtimeDeps).length > 0) {
        problems.push(
          `${where}/package.json: @myqtt/codec must have no runtime dependency, has ${Object.keys(runtimeDeps).join(", ")}`,
        );
      }
      for (const dep of Object.keys(runtimeDeps)) {
        if (WORKSPACE.has(dep) && dep !== name && !allowed.has(dep)) {
          problems.push(`${where}/package.json: ${name} may not depend on ${dep}`);
        }
      }
      // Tests and benchmarks of a package may use Node; its shipped sources are what count.
      for (const file of sourceFiles(join(pkgDir, "src"))) {
        const rel = relative(root, file);
        const isTest = /\.test\.[cm]?[jt]s$/.test(file);
        for (const spec of specifiers(readFileSync(file, "utf8"))) {
          if (spec.startsWith(".")) {
            const target = resolve(dirname(file), spec);
            if (!target.startsWith(pkgDir + sep)) {
              problems.push(
                `${rel}: relative import ${spec} leaves the package; import the package by name`,
              );
            }
            continue;
          }
          const dep = packageName(spec);
          if (WORKSPACE.has(dep)) {
            if (dep !== name && !allowed.has(dep))
              problems.push(`${rel}: ${name} may not import ${dep}`);
          } else if (name === "@myqtt/codec" && !isTest) {
            if (NODE_BUILTINS.has(spec) || spec.startsWith("node:")) {
              problems.push(`${rel}: @myqtt/codec may not import the Node built-in ${spec}`);
            } else {
              problems.push(
                `${rel}: @myqtt/codec may not import ${spec} (no runtime dependencies)`,
              );
            }
          }
        }
      }
    }
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(
    process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..", ".."),
  );
  const problems = checkLayers(root);
  if (problems.length > 0) {
    console.error(`layer check: ${problems.length} problem(s)`);
    for (const p of problems) console.error(`  ${p}`);
    process.exit(1);
  }
  console.log("layer check: ok");
}
