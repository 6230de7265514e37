import { describe, expect, it } from "vitest";
import { optionsFromUrl, resolveClientOptions } from "./options.js";

describe("optionsFromUrl", () => {
  it("reads host, port and credentials of an mqtt:// URL", () => {
    expect(optionsFromUrl("mqtt://u%40x:p@127.0.0.1:1884")).toEqual({
      host: "127.0.0.1",
      port: 1884,
      username: "u@x",
      password: "p",
    });
  });

  it("says which connector an mqtts://, ws:// or wss:// URL needs", () => {
    expect(() => optionsFromUrl("mqtts://broker")).toThrow(/connectTls from @myqtt\/tls/);
    expect(() => optionsFromUrl("wss://broker")).toThrow(/connectWebSocket from @myqtt\/websocket/);
    expect(() => optionsFromUrl("gopher://broker")).toThrow(/unsupported scheme gopher:/);
  });

  it("with a connector, takes those schemes with their default ports", () => {
    expect(optionsFromUrl("mqtts://broker", true)).toEqual({ host: "broker", port: 8883 });
    expect(optionsFromUrl("ws://broker", true)).toEqual({ host: "broker", port: 80 });
    expect(optionsFromUrl("wss://broker:9001", true)).toEqual({ host: "broker", port: 9001 });
  });
});

describe("maxOutgoingBytes", () => {
  it("defaults to 1 MiB and takes an integer of at least 1024", () => {
    expect(resolveClientOptions({}).maxOutgoingBytes).toBe(1024 * 1024);
    expect(resolveClientOptions({ maxOutgoingBytes: 1024 }).maxOutgoingBytes).toBe(1024);
    for (const bad of [0, 1023, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => resolveClientOptions({ maxOutgoingBytes: bad })).toThrow(RangeError);
  });
});
