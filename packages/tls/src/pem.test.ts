import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { TlsError } from "./errors.js";
import { pemFile, readPem, readPemSync, samePem, withChain } from "./pem.js";

const PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
const dir = mkdtempSync(join(tmpdir(), "myqtt-pem-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("PEM sources", () => {
  test("PEM text and bytes are used as they are; other strings are paths", async () => {
    const path = join(dir, "a.crt");
    writeFileSync(path, PEM);
    expect(readPemSync(PEM).toString()).toBe(PEM);
    expect(readPemSync(new TextEncoder().encode(PEM)).toString()).toBe(PEM);
    expect(readPemSync(path).toString()).toBe(PEM);
    expect((await readPem(pemFile(path))).toString()).toBe(PEM);
  });

  test("a missing file is a BAD_CERTIFICATE TlsError naming it", async () => {
    const missing = join(dir, "missing.key");
    expect(() => readPemSync(missing)).toThrow(TlsError);
    await expect(readPem(missing)).rejects.toMatchObject({
      code: "BAD_CERTIFICATE",
      message: expect.stringContaining("missing.key"),
    });
  });

  test("samePem compares paths and contents without reading files", () => {
    expect(samePem("a.crt", pemFile("a.crt"))).toBe(true);
    expect(samePem("a.crt", "b.crt")).toBe(false);
    expect(samePem(PEM, Buffer.from(PEM))).toBe(true);
    expect(samePem(PEM, "a.crt")).toBe(false);
    expect(samePem(null, undefined)).toBe(true);
    expect(samePem(null, "a.crt")).toBe(false);
  });

  test("withChain appends the chain after the certificate", () => {
    expect(withChain(Buffer.from("A"), null).toString()).toBe("A");
    expect(withChain(Buffer.from("A"), Buffer.from("B")).toString()).toBe("A\nB");
  });
});
