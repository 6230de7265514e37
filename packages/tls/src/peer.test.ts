import type { TlsPeer, Transport } from "@myqtt/core";
import { describe, expect, test } from "vitest";
import { getDigest, isOn, peerCertificateDigest, transportOf, verifyCert } from "./peer.js";

function fakeTransport(tls: boolean, peer: TlsPeer | null): Transport {
  return {
    remoteAddress: "127.0.0.1",
    remotePort: 1,
    localAddress: "127.0.0.1",
    localPort: 2,
    serverName: null,
    tls,
    writableLength: 0,
    closed: false,
    start() {},
    write: () => true,
    pause() {},
    resume() {},
    end() {},
    destroy() {},
    ...(peer !== null ? { tlsPeer: () => peer } : {}),
  };
}

const DER = new Uint8Array([1, 2, 3, 4]);
const verified: TlsPeer = {
  authorized: true,
  authorizationError: null,
  certificate: DER,
  protocol: "TLSv1.3",
};

describe("getDigest", () => {
  test("colon-separated upper-case hex, as MyQtt and openssl -fingerprint print", () => {
    expect(getDigest("md5", "abc")).toBe("90:01:50:98:3C:D2:4F:B0:D6:96:3F:7D:28:E1:7F:72");
    expect(getDigest("sha1", "abc")).toBe(
      "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D",
    );
    expect(getDigest("sha256", "")).toMatch(/^E3:B0:C4:42:(?:[0-9A-F]{2}:){27}55$/);
  });

  test("unknown methods are refused", () => {
    expect(() => getDigest("sha512" as never, "x")).toThrow(RangeError);
  });
});

describe("transportOf and the helpers on it", () => {
  const transport = fakeTransport(true, verified);

  test("finds the transport of a transport, a ServerConn/MqttClient, a Conn", () => {
    expect(transportOf(transport)).toBe(transport);
    expect(transportOf({ transport })).toBe(transport);
    expect(transportOf({ client: { transport } })).toBe(transport);
    expect(transportOf({ client: null })).toBeNull();
    expect(transportOf({ transport: null })).toBeNull();
    expect(transportOf(null)).toBeNull();
    expect(transportOf("conn")).toBeNull();
  });

  test("isOn, verifyCert, peerCertificateDigest", () => {
    expect(isOn({ transport })).toBe(true);
    expect(verifyCert({ transport })).toBe(true);
    expect(peerCertificateDigest({ transport }, "md5")).toBe(getDigest("md5", DER));
    expect(peerCertificateDigest({ transport })).toBe(getDigest("sha1", DER));

    const plain = fakeTransport(false, null);
    expect(isOn(plain)).toBe(false);
    expect(verifyCert(plain)).toBe(false);
    expect(peerCertificateDigest(plain)).toBeNull();

    const unverified = fakeTransport(true, { ...verified, authorized: false });
    expect(verifyCert(unverified)).toBe(false);
    expect(peerCertificateDigest(unverified)).not.toBeNull();
    const noCertificate = fakeTransport(true, { ...verified, certificate: null });
    expect(verifyCert(noCertificate)).toBe(false);
    expect(peerCertificateDigest(noCertificate)).toBeNull();
  });
});
