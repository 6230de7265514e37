import { describe, expect, test } from "vitest";
import { TlsError, tlsErrorCode, toTlsError } from "./errors.js";

describe("tlsErrorCode", () => {
  test.each([
    ["CERT_HAS_EXPIRED", "CERT_HAS_EXPIRED"],
    ["CERT_NOT_YET_VALID", "CERT_NOT_YET_VALID"],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "UNTRUSTED"],
    ["SELF_SIGNED_CERT_IN_CHAIN", "UNTRUSTED"],
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNTRUSTED"],
    ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNTRUSTED"],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "HOSTNAME_MISMATCH"],
    ["ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED", "NO_CLIENT_CERT"],
    ["ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE", "NO_CLIENT_CERT"],
    ["ERR_SSL_TLSV1_ALERT_UNKNOWN_CA", "CERT_REJECTED"],
    ["ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE", "CERT_REJECTED"],
    ["ERR_SSL_WRONG_VERSION_NUMBER", "HANDSHAKE"],
    ["ERR_SSL_NO_SHARED_CIPHER", "HANDSHAKE"],
    ["ERR_TLS_HANDSHAKE_TIMEOUT", "HANDSHAKE"],
  ] as const)("%s is %s", (sslCode, code) => {
    expect(tlsErrorCode(sslCode)).toBe(code);
  });

  test("what is not TLS maps to null", () => {
    expect(tlsErrorCode("ECONNREFUSED")).toBeNull();
    expect(tlsErrorCode("ECONNRESET")).toBeNull();
    expect(tlsErrorCode(undefined)).toBeNull();
  });
});

describe("toTlsError", () => {
  test("names the host and the address, keeps the cause and OpenSSL's code", () => {
    const cause = Object.assign(new Error("certificate has expired"), { code: "CERT_HAS_EXPIRED" });
    const error = toTlsError(cause, "broker.example", "10.0.0.1:8883") as TlsError;
    expect(error).toBeInstanceOf(TlsError);
    expect(error.name).toBe("TlsError");
    expect(error.code).toBe("CERT_HAS_EXPIRED");
    expect(error.sslCode).toBe("CERT_HAS_EXPIRED");
    expect(error.host).toBe("broker.example");
    expect(error.cause).toBe(cause);
    expect(error.message).toContain("broker.example (10.0.0.1:8883)");
    expect(error.message).toContain("expired");
  });

  test("leaves other errors and TlsErrors as they are", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(toTlsError(refused, "h")).toBe(refused);
    const tls = new TlsError("TIMEOUT", "timed out");
    expect(toTlsError(tls, "h")).toBe(tls);
    expect(toTlsError("just text", "h")).toBe("just text");
  });

  test("TlsError.is recognises copies by their marker", () => {
    expect(TlsError.is(new TlsError("HANDSHAKE", "x"))).toBe(true);
    expect(TlsError.is({ [Symbol.for("myqtt.tls-error")]: true })).toBe(true);
    expect(TlsError.is(new Error("x"))).toBe(false);
    expect(TlsError.is(null)).toBe(false);
  });
});
