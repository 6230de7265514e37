import { describe, expect, it } from "vitest";
import { OptionsError, parseOptions } from "./options.js";

describe("parseOptions", () => {
  it("defaults to the C listener's ports on 127.0.0.1", () => {
    expect(parseOptions([])).toEqual({
      host: "127.0.0.1",
      port: 1909,
      tlsPort: 1910,
      mtlsPort: 1911,
      wsPort: 1918,
      wssPort: 1919,
      certs: ".myqtt-regression-certs",
      storage: ".myqtt-listener",
      python: false,
      logLevel: "info",
    });
  });

  it("takes every flag", () => {
    const config = parseOptions(
      ["--host", "0.0.0.0", "--port", "0", "--tls-port", "2", "--mtls-port", "3"].concat(
        ["--ws-port", "4", "--wss-port", "5", "--certs", "c", "--storage", "s", "--python"],
        ["--log-level", "debug"],
      ),
    );
    expect(config).toMatchObject({ host: "0.0.0.0", port: 0, tlsPort: 2, mtlsPort: 3 });
    expect(config).toMatchObject({ wsPort: 4, wssPort: 5, certs: "c", storage: "s" });
    expect(config).toMatchObject({ python: true, logLevel: "debug" });
  });

  it("returns null for --help and throws OptionsError on bad input", () => {
    expect(parseOptions(["--help"])).toBeNull();
    expect(() => parseOptions(["--port", "x"])).toThrow(OptionsError);
    expect(() => parseOptions(["--port", "65536"])).toThrow(/--port/);
    expect(() => parseOptions(["--log-level", "loud"])).toThrow(/quiet, info or debug/);
    expect(() => parseOptions(["--nope"])).toThrow(OptionsError);
    expect(() => parseOptions(["--storage", " "])).toThrow(/--storage/);
  });
});
