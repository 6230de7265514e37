import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "scripts", "layer-check.mjs");
let root = "";

function pkg(dir: string, manifest: object, files: Record<string, string>): void {
  const base = join(root, dir);
  mkdirSync(join(base, "src"), { recursive: true });
  writeFileSync(join(base, "package.json"), JSON.stringify(manifest));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(base, "src", name), text);
}

function run(): { status: number; output: string } {
  try {
    return {
      status: 0,
      output: execFileSync("node", [SCRIPT, root], { encoding: "utf8", stdio: "pipe" }),
    };
  } catch (error) {
    const e = error as { status: number; stderr: string };
    return { status: e.status, output: e.stderr };
  }
}

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("layer check", () => {
  function freshTree(): void {
    root = mkdtempSync(join(tmpdir(), "layer-check-"));
    pkg("packages/codec", { name: "@myqtt/codec" }, { "index.ts": 'export * from "./a.js";' });
    pkg(
      "packages/core",
      { name: "@myqtt/core", dependencies: { "@myqtt/codec": "workspace:*" } },
      {
        "index.ts": 'import { encode } from "@myqtt/codec";\nimport { Socket } from "node:net";',
      },
    );
  }

  it("passes a tree that follows the layering", () => {
    freshTree();
    expect(run().status).toBe(0);
  });

  it("fails when the codec imports a Node built-in", () => {
    freshTree();
    pkg(
      "packages/codec",
      { name: "@myqtt/codec" },
      { "index.ts": 'import { Buffer } from "node:buffer";' },
    );
    const { status, output } = run();
    expect(status).toBe(1);
    expect(output).toContain("may not import the Node built-in node:buffer");
  });

  it("fails when the codec imports a bare built-in or a package", () => {
    freshTree();
    pkg(
      "packages/codec",
      { name: "@myqtt/codec" },
      { "index.ts": 'import x from "events";\nimport y from "bl";' },
    );
    const { status, output } = run();
    expect(status).toBe(1);
    expect(output).toContain("Node built-in events");
    expect(output).toContain("may not import bl");
  });

  it("fails when the codec gains a runtime dependency", () => {
    freshTree();
    pkg("packages/codec", { name: "@myqtt/codec", dependencies: { bl: "^6" } }, { "index.ts": "" });
    const { status, output } = run();
    expect(status).toBe(1);
    expect(output).toContain("must have no runtime dependency");
  });

  it("fails when a lower layer imports a higher one", () => {
    freshTree();
    pkg(
      "packages/client",
      { name: "@myqtt/client" },
      { "conn.ts": 'import { createListener } from "@myqtt/broker";' },
    );
    pkg(
      "packages/codec",
      { name: "@myqtt/codec" },
      { "index.ts": 'export type { Ctx } from "@myqtt/core";' },
    );
    const { status, output } = run();
    expect(status).toBe(1);
    expect(output).toContain("@myqtt/client may not import @myqtt/broker");
    expect(output).toContain("@myqtt/codec may not import @myqtt/core");
  });

  it("fails on a relative import into another package", () => {
    freshTree();
    pkg(
      "packages/core",
      { name: "@myqtt/core" },
      { "index.ts": 'import "../../codec/src/index.js";' },
    );
    const { status, output } = run();
    expect(status).toBe(1);
    expect(output).toContain("leaves the package");
  });

  it("lets a codec unit test use Node", () => {
    freshTree();
    pkg(
      "packages/codec",
      { name: "@myqtt/codec" },
      { "x.test.ts": 'import { randomBytes } from "node:crypto";' },
    );
    expect(run().status).toBe(0);
  });
});
