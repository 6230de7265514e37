import { describe, expect, it } from "vitest";
import { pathOf, serverNameFromHost, urlHost } from "./host.js";

describe("serverNameFromHost", () => {
  it.each([
    ["broker.example:1918", "broker.example"],
    ["broker.example", "broker.example"],
    ["127.0.0.1:80", "127.0.0.1"],
    ["[::1]:1918", "::1"],
    ["[::1]", "::1"],
    ["::1", "::1"],
    ["  spaced.example:1  ", "spaced.example"],
    ["", null],
    [":1918", null],
    ["[]:1", null],
    [undefined, null],
  ])("%j → %j", (host, name) => {
    expect(serverNameFromHost(host)).toBe(name);
  });
});

describe("urlHost", () => {
  it("brackets IPv6 literals only", () => {
    expect(urlHost("::1")).toBe("[::1]");
    expect(urlHost("[::1]")).toBe("[::1]");
    expect(urlHost("127.0.0.1")).toBe("127.0.0.1");
    expect(urlHost("localhost")).toBe("localhost");
  });
});

describe("pathOf", () => {
  it.each([
    ["/mqtt", "/mqtt"],
    ["/mqtt?token=1", "/mqtt"],
    ["/mqtt#x", "/mqtt"],
    ["/", "/"],
    ["", "/"],
    [undefined, "/"],
    ["http://h:1/mqtt?x", "/mqtt"],
    ["*", "*"],
  ])("%j → %j", (target, path) => {
    expect(pathOf(target)).toBe(path);
  });
});
