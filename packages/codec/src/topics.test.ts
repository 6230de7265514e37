import { describe, expect, it } from "vitest";
import { InvalidTopicError } from "./errors.js";
import {
  isValidTopicFilter,
  isValidTopicName,
  match,
  parseSharedSubscription,
  validateTopicFilter,
  validateTopicName,
} from "./topics.js";

// MyQtt regression test_00_d (reference §3.4) and the examples of MQTT 3.1.1 / 5.0 section 4.7:
// [filter, topic, matches].
const MATCHING: [string, string, boolean][] = [
  // '#' matches everything, the parent level included
  ["#", "sport", true],
  ["#", "sport/tennis", true],
  ["#", "/", true],
  ["#", "a/b/c/d/e", true],
  ["sport/#", "sport", true],
  ["sport/#", "sport/", true],
  ["sport/#", "sport/tennis", true],
  ["sport/tennis/player1/#", "sport/tennis/player1", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true],
  ["sport/tennis/player1/#", "sport/tennis", false],
  ["sport/tennis/player1/#", "sport/tennis/player2", false],
  ["sport/#", "sports", false],
  ["a/#", "a", true],
  ["a/#", "ab", false],
  // '+' matches exactly one level, an empty one included
  ["sport/tennis/+", "sport/tennis/player1", true],
  ["sport/tennis/+", "sport/tennis/player2", true],
  ["sport/tennis/+", "sport/tennis/player1/ranking", false],
  ["sport/+", "sport", false],
  ["sport/+", "sport/", true],
  ["+", "sport", true],
  ["+", "/finance", false],
  ["+/+", "/finance", true],
  ["/+", "/finance", true],
  ["+/tennis/#", "sport/tennis", true],
  ["+/tennis/#", "sport/tennis/player1", true],
  ["+/tennis/#", "sport/golf", false],
  ["sport/+/player1", "sport/tennis/player1", true],
  ["sport/+/player1", "sport/tennis/player2", false],
  ["a/+/topic", "a//topic", true],
  ["+/+/+", "a/b/c", true],
  ["+/+/+", "a/b", false],
  ["+/#", "a", true],
  // literal levels are compared exactly, case-sensitively
  ["finance", "/finance", false],
  ["/finance", "finance", false],
  ["myqtt/test", "myqtt/test", true],
  ["myqtt/test", "myqtt/Test", false],
  ["ACCOUNTS", "Accounts", false],
  ["myqtt/test", "myqtt/test/", false],
  ["myqtt/test/", "myqtt/test", false],
  ["a/b", "a/bc", false],
  ["a/bc", "a/b", false],
  // a wildcard in the first level never matches a '$' topic [MQTT-4.7.2-1]
  ["#", "$SYS/monitor/Clients", false],
  ["+/monitor/Clients", "$SYS/monitor/Clients", false],
  ["$SYS/#", "$SYS/monitor/Clients", true],
  ["$SYS/monitor/+", "$SYS/monitor/Clients", true],
  ["$SYS/#", "$SYS/", true],
  ["$SYS/#", "$SYS", true],
  ["+", "$SYS", false],
  ["a/+", "a/$b", true],
];

describe("match (MyQtt test_00_d and spec 4.7)", () => {
  it("holds at least the 45 vectors of the MyQtt suite", () => {
    expect(MATCHING.length).toBeGreaterThanOrEqual(45);
  });
  it.each(MATCHING)("%s ~ %s is %s", (filter, topic, expected) => {
    expect(isValidTopicFilter(filter)).toBe(true);
    expect(isValidTopicName(topic)).toBe(true);
    expect(match(filter, topic)).toBe(expected);
  });
});

describe("topic filters", () => {
  const valid = [
    "#",
    "+",
    "sport/tennis/#",
    "+/tennis/#",
    "sport/+/player1",
    "/",
    "//",
    "+/+",
    "/+",
    "$SYS/#",
    "$share/group/a/+",
    "$share/g/#",
    "a/b/c",
    "Camión/Здраво",
  ];
  // MyQtt test_00_d's invalid filters first, then the spec's other rules.
  const invalid = [
    "sport/tennis#",
    "sport/tennis/#/ranking",
    "sport+",
    "",
    "+sport",
    "#sport",
    "sport/#/",
    "a/b+/c",
    "a\u0000b",
    "$share/",
    "$share//a",
    "$share/group",
    "$share/group/",
    "$share/gr+oup/a",
    "$share/gr#oup/a",
    "$share/group/a#",
  ];

  it.each(valid)("accepts %s", (filter) => {
    expect(isValidTopicFilter(filter)).toBe(true);
    expect(() => validateTopicFilter(filter)).not.toThrow();
  });

  it.each(invalid)("refuses %j with INVALID_TOPIC_FILTER (0x8F)", (filter) => {
    expect(isValidTopicFilter(filter)).toBe(false);
    expect(() => validateTopicFilter(filter)).toThrowError(
      expect.objectContaining({ code: "INVALID_TOPIC_FILTER", reasonCode: 0x8f }),
    );
  });
});

describe("topic names", () => {
  it.each(["a", "/", "a/b", "$SYS/x", "a//b", " "])("accepts %j", (topic) => {
    expect(isValidTopicName(topic)).toBe(true);
  });

  it.each(["", "a/+", "#", "a/#", "+", "a\u0000"])(
    "refuses %j with INVALID_TOPIC_NAME (0x90)",
    (topic) => {
      expect(isValidTopicName(topic)).toBe(false);
      expect(() => validateTopicName(topic)).toThrow(InvalidTopicError);
      expect(() => validateTopicName(topic)).toThrowError(
        expect.objectContaining({ code: "INVALID_TOPIC_NAME", reasonCode: 0x90 }),
      );
    },
  );
});

describe("shared subscriptions", () => {
  it("takes $share/<group>/<filter> apart", () => {
    expect(parseSharedSubscription("$share/g1/sport/+")).toEqual({
      group: "g1",
      topicFilter: "sport/+",
    });
    expect(parseSharedSubscription("$share/g/#")).toEqual({ group: "g", topicFilter: "#" });
    expect(parseSharedSubscription("$share/g//x")).toEqual({ group: "g", topicFilter: "/x" });
  });

  it("returns null for a plain filter", () => {
    expect(parseSharedSubscription("sport/#")).toBeNull();
    expect(parseSharedSubscription("$SYS/#")).toBeNull();
    expect(parseSharedSubscription("$sharex/a/b")).toBeNull();
  });

  it("throws for a malformed shared subscription", () => {
    for (const bad of ["$share/", "$share/g", "$share//a", "$share/g+/a", "$share/g/a#"]) {
      expect(() => parseSharedSubscription(bad), bad).toThrowError(
        expect.objectContaining({ code: "INVALID_TOPIC_FILTER" }),
      );
    }
  });
});
