// myqttd holds V8's young generation at its initial size (src/young-generation.ts) unless the
// operator sized it with node's own flags; the debug log reports what the running daemon has.
import { afterEach, describe, expect, it } from "vitest";
import { operatorSizesYoungGeneration } from "../src/young-generation.js";
import { killAllDaemons, startDaemon } from "./daemon.js";

afterEach(() => killAllDaemons());

const REPORT = /V8 young generation (\d+) KiB, (.+)\n/;

describe("the V8 young generation of myqttd", () => {
  it("stays at V8's initial size (two 1 MiB semi-spaces) after the daemon has loaded", async () => {
    const d = await startDaemon(["--storage", "memory", "--log-level", "debug"]);
    const [, kib, sizedBy] = REPORT.exec(d.stdout) ?? [];
    expect(sizedBy).toBe("held at its initial size");
    // Left to grow, V8 reaches 16,384 KiB while the daemon's modules load.
    expect(Number(kib)).toBeGreaterThan(0);
    expect(Number(kib)).toBeLessThanOrEqual(2048);
  });

  it("is left to node when the operator passes a young-generation flag", async () => {
    const d = await startDaemon(["--storage", "memory", "--log-level", "debug"], {
      nodeArgs: ["--max-semi-space-size=4"],
    });
    const [, , sizedBy] = REPORT.exec(d.stdout) ?? [];
    expect(sizedBy).toBe("sized by node's own flags");
  });

  it("is not reported below the debug level", async () => {
    const d = await startDaemon(["--storage", "memory"]);
    expect(d.stdout).not.toMatch(REPORT);
  });

  it("recognises the operator's flags on node's command line and in NODE_OPTIONS", () => {
    expect(operatorSizesYoungGeneration([], undefined)).toBe(false);
    expect(operatorSizesYoungGeneration(["--enable-source-maps"], "--max-old-space-size=512")).toBe(
      false,
    );
    expect(operatorSizesYoungGeneration(["--max-semi-space-size=16"], undefined)).toBe(true);
    expect(operatorSizesYoungGeneration(["--max_semi_space_size=16"], undefined)).toBe(true);
    expect(operatorSizesYoungGeneration([], "--semi-space-growth-factor=2")).toBe(true);
    expect(operatorSizesYoungGeneration([], "--inspect --min-semi-space-size=4")).toBe(true);
  });
});
