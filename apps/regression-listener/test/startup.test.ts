// Start-up: the certificates made with openssl (and kept when usable), the storage directory
// emptied, the command line and its errors.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { hasOpenssl, removeTempDirs, tempDir } from "./env.js";
import { killAllListeners, run, startListener, stopListener } from "./listener.js";
import { ask, closeAllClients, connect, end } from "./mqtt.js";

const CERTS = ["root.pem", "server.pem", "client.pem", "test-certificate.crt"];
CERTS.push("localhost-server.crt", "test19a-localhost-server.crt");
const KEYS = ["root.key", "server.key", "client.key", "test-private.key"];
KEYS.push("localhost-server.key", "test19a-localhost-server.key");

afterEach(async () => {
  closeAllClients();
  await killAllListeners();
});
afterAll(removeTempDirs);

describe.skipIf(!hasOpenssl)("certificates", () => {
  it("makes the set: 2048-bit RSA, SHA-256, ten years, signed by root.pem but for test-certificate", async () => {
    const certs = tempDir();
    const l = await startListener(certs, tempDir());
    expect(l.stdout).toMatch(/generating certificates in /);
    const root = new X509Certificate(readFileSync(join(certs, "root.pem")));
    expect(root.ca).toBe(true);
    for (const name of CERTS) {
      const x = new X509Certificate(readFileSync(join(certs, name)));
      expect(x.publicKey.asymmetricKeyDetails?.modulusLength, name).toBeGreaterThanOrEqual(2048);
      const years = (Date.parse(x.validTo) - Date.now()) / (365.25 * 86_400_000);
      expect(years, name).toBeGreaterThan(9.9);
      const signedByRoot = name !== "root.pem" && name !== "test-certificate.crt";
      if (signedByRoot) expect(x.verify(root.publicKey), name).toBe(true);
      if (name === "test-certificate.crt") expect(x.checkIssued(root), name).toBe(false);
    }
    const server = new X509Certificate(readFileSync(join(certs, "server.pem")));
    expect(server.subject).toMatch(/CN=localhost/);
    expect(server.subjectAltName).toMatch(/DNS:localhost/);
    expect(server.subjectAltName).toMatch(/IP Address:127\.0\.0\.1/);
    const sni = new X509Certificate(readFileSync(join(certs, "test19a-localhost-server.crt")));
    expect(sni.subjectAltName).toBe("DNS:test19a.localhost");
    for (const key of KEYS) expect(statSync(join(certs, key)).mode & 0o077, key).toBe(0);
    for (const name of CERTS) {
      const text = execFileSync("openssl", ["x509", "-noout", "-text", "-in", join(certs, name)]);
      expect(text.toString(), name).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
    }
    // Nothing left behind: no serial file, no scratch directory.
    expect(readdirSync(certs).sort()).toEqual([...CERTS, ...KEYS].sort());
  });

  it("keeps a usable set and remakes a broken one", async () => {
    const certs = tempDir();
    await stopListener(await startListener(certs, tempDir()));
    const before = readFileSync(join(certs, "client.pem"), "utf8");
    const kept = await startListener(certs, tempDir());
    expect(kept.stdout).not.toMatch(/generating/);
    expect(readFileSync(join(certs, "client.pem"), "utf8")).toBe(before);
    await stopListener(kept);

    writeFileSync(join(certs, "root.pem"), "not a certificate\n");
    const remade = await startListener(certs, tempDir());
    expect(remade.stdout).toMatch(/root\.pem is not a certificate/);
    expect(readFileSync(join(certs, "client.pem"), "utf8")).not.toBe(before);
  }, 60_000);
});

it("fails with a clear message when certificates are needed and openssl is missing", async () => {
  // An empty PATH: no openssl to be found.
  const r = run(
    [
      "--port",
      "0",
      "--tls-port",
      "0",
      "--mtls-port",
      "0",
      "--ws-port",
      "0",
      "--wss-port",
      "0",
    ].concat(["--certs", join(tempDir(), "certs"), "--storage", tempDir()]),
    { env: { ...process.env, PATH: tempDir() } },
  );
  expect(await r.exit).toBe(1);
  expect(r.stderr).toMatch(/openssl.*not found on PATH/);
});

describe.skipIf(!hasOpenssl)("storage", () => {
  it("empties the storage directory at start", async () => {
    const storage = tempDir();
    writeFileSync(join(storage, "junk"), "x");
    mkdirSync(join(storage, "old", "deep"), { recursive: true });
    await startListener(tempDir(), storage);
    expect(existsSync(join(storage, "junk"))).toBe(false);
    expect(existsSync(join(storage, "old"))).toBe(false);
  });

  it("starts without the sessions of the previous run", async () => {
    const certs = tempDir();
    const storage = tempDir();
    const first = await startListener(certs, storage);
    const c = await connect(`mqtt://127.0.0.1:${first.ports.plain}`, {
      clientId: "persistent",
      clean: false,
    });
    await c.client.subscribeAsync("kept/topic", { qos: 1 });
    await end(c);
    expect(await stopListener(first)).toBe(0);

    const second = await startListener(certs, storage);
    const back = await connect(`mqtt://127.0.0.1:${second.ports.plain}`, {
      clientId: "persistent",
      clean: false,
    });
    expect(back.sessionPresent).toBe(false);
    expect((await ask(back, "get-subscriptions")).payload).toBe("");
  });

  it("refuses a storage directory in use by a running process", async () => {
    const storage = tempDir();
    writeFileSync(join(storage, "LOCK"), `${process.pid}\n`);
    const r = run(["--port", "0", "--storage", storage, "--certs", tempDir()]);
    expect(await r.exit).toBe(1);
    expect(r.stderr).toMatch(/in use by process/);
    expect(existsSync(join(storage, "LOCK"))).toBe(true);
  });

  it("refuses to empty a directory that holds the working directory", async () => {
    // Inside a scratch tree, so that a broken guard could only wipe that.
    const base = tempDir();
    const cwd = join(base, "work");
    mkdirSync(cwd);
    writeFileSync(join(base, "sentinel"), "x");
    const r = run(["--port", "0", "--storage", "..", "--certs", join(base, "certs")], { cwd });
    expect(await r.exit).toBe(1);
    expect(r.stderr).toMatch(/refusing to empty/);
    expect(existsSync(join(base, "sentinel"))).toBe(true);
  });
});

describe("command line", () => {
  it("prints the usage with --help", async () => {
    const r = run(["--help"]);
    expect(await r.exit).toBe(0);
    expect(r.stdout).toMatch(/--mtls-port P/);
  });

  it("exits 2 on an unknown flag or a bad port", async () => {
    const a = run(["--bogus"]);
    expect(await a.exit).toBe(2);
    expect(a.stderr).toMatch(/bogus/);
    const b = run(["--port", "70000"]);
    expect(await b.exit).toBe(2);
    expect(b.stderr).toMatch(/--port must be a port number/);
  });

  it.skipIf(!hasOpenssl)("exits 1 naming the listener whose port is taken", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = run(
        [
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--tls-port",
          String(port),
          "--mtls-port",
          "0",
        ].concat([
          "--ws-port",
          "0",
          "--wss-port",
          "0",
          "--certs",
          tempDir(),
          "--storage",
          tempDir(),
        ]),
      );
      expect(await r.exit).toBe(1);
      expect(r.stderr).toMatch(/tls listener: .*EADDRINUSE/);
    } finally {
      busy.close();
    }
  });
});
