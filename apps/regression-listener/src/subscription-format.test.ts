import { describe, expect, it } from "vitest";
import {
  formatConnSubscriptions,
  formatCtxSubscriptions,
  formatExactSubscriptions,
  isWildcard,
  mqttOrder,
} from "./subscription-format.js";

describe("subscription lists", () => {
  it("puts exact filters first, then wildcard ones, each sorted ('#' before '+')", () => {
    expect(mqttOrder(["myqtt/test/b/+", "myqtt/test/b", "myqtt/test/b/#", "myqtt/test/a"])).toEqual(
      ["myqtt/test/a", "myqtt/test/b", "myqtt/test/b/#", "myqtt/test/b/+"],
    );
    expect(isWildcard("a/+/b")).toBe(true);
    expect(isWildcard("#")).toBe(true);
    expect(isWildcard("a/b")).toBe(false);
  });

  it("formats get-subscriptions as test_24 expects", () => {
    const subs = ["myqtt/test/b/#", "myqtt/test/a", "myqtt/test/b/+", "myqtt/test/b"].map(
      (filter) => ({ filter, qos: 0 }),
    );
    expect(formatConnSubscriptions(subs)).toBe(
      "myqtt/test/a.0,myqtt/test/b.0,myqtt/test/b/#.0,myqtt/test/b/+.0",
    );
    expect(formatConnSubscriptions([])).toBe("");
  });

  it("formats get-subscriptions-ctx with the number of connections", () => {
    const counts = new Map([
      ["myqtt/test/b/+", 1],
      ["myqtt/test/a", 2],
    ]);
    expect(formatCtxSubscriptions(counts)).toBe(
      "myqtt/test/a.num-conns=2,myqtt/test/b/+.num-conns=1",
    );
    expect(formatCtxSubscriptions(new Map())).toBe("");
  });

  it("formats get-conn-subs with exact subscriptions only, one line each", () => {
    const subs = [
      { filter: "a/subs/3", qos: 0 },
      { filter: "a/subs/#", qos: 2 },
      { filter: "a/subs/1", qos: 1 },
    ];
    expect(formatExactSubscriptions(subs)).toBe("1: a/subs/1\n0: a/subs/3\n");
    expect(formatExactSubscriptions([])).toBe("");
  });
});
