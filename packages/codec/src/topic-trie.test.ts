import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SubscriptionTrie } from "./topic-trie.js";
import { isValidTopicFilter, match } from "./topics.js";

describe("SubscriptionTrie", () => {
  it("matches exact and wildcard filters, '$' rule included", () => {
    const trie = new SubscriptionTrie<string>();
    for (const f of ["a/b", "a/+", "a/#", "#", "+/b", "$SYS/#", "+/+", "/+"]) trie.add(f, f);
    expect(trie.match("a/b").sort()).toEqual(["#", "+/+", "+/b", "a/#", "a/+", "a/b"]);
    expect(trie.match("a").sort()).toEqual(["#", "a/#"]);
    expect(trie.match("$SYS/b").sort()).toEqual(["$SYS/#"]);
    expect(trie.match("/x").sort()).toEqual(["#", "+/+", "/+"]);
  });

  it("keeps several values per filter and reports each once per filter", () => {
    const trie = new SubscriptionTrie<number>();
    expect(trie.add("x/+", 1)).toBe(true);
    expect(trie.add("x/+", 2)).toBe(true);
    expect(trie.add("x/+", 1)).toBe(false);
    expect(trie.add("x/#", 1)).toBe(true);
    expect(trie.size).toBe(3);
    expect(trie.filterCount).toBe(2);
    expect(trie.match("x/y").sort()).toEqual([1, 1, 2]);
    expect([...(trie.get("x/+") ?? [])]).toEqual([1, 2]);
    expect(trie.has("x/#", 1)).toBe(true);
  });

  it("forgets removed values and prunes empty branches", () => {
    const trie = new SubscriptionTrie<number>();
    trie.add("a/+/c", 1);
    trie.add("a/+/c", 2);
    trie.add("a/#", 3);
    expect(trie.remove("a/+/c", 1)).toBe(true);
    expect(trie.remove("a/+/c", 1)).toBe(false);
    expect(trie.remove("nope", 1)).toBe(false);
    expect(trie.match("a/b/c").sort()).toEqual([2, 3]);
    trie.remove("a/+/c", 2);
    trie.remove("a/#", 3);
    expect(trie.size).toBe(0);
    expect(trie.filterCount).toBe(0);
    expect(trie.match("a/b/c")).toEqual([]);
    // the root is empty again: a later add works from scratch
    trie.add("a/+/c", 4);
    expect(trie.match("a/b/c")).toEqual([4]);
    trie.clear();
    expect(trie.match("a/b/c")).toEqual([]);
  });

  it("agrees with match() on random filters and topics", () => {
    const level = fc.constantFrom("a", "b", "c", "", "$x", "long-level-name");
    const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join("/"));
    const filterLevel = fc.constantFrom("a", "b", "c", "", "+", "$x");
    const filter = fc
      .tuple(fc.array(filterLevel, { minLength: 1, maxLength: 5 }), fc.boolean())
      .map(([levels, hash]) => (hash ? [...levels, "#"] : levels).join("/"))
      .filter(isValidTopicFilter);
    fc.assert(
      fc.property(
        fc.uniqueArray(filter, { maxLength: 30 }),
        fc.array(topic, { maxLength: 20 }),
        (filters, topics) => {
          const trie = new SubscriptionTrie<string>();
          for (const f of filters) trie.add(f, f);
          for (const t of topics) {
            expect(trie.match(t).sort()).toEqual(filters.filter((f) => match(f, t)).sort());
          }
          // remove half, check again
          for (const f of filters.filter((_, i) => i % 2 === 0)) trie.remove(f, f);
          const left = filters.filter((_, i) => i % 2 === 1);
          for (const t of topics)
            expect(trie.match(t).sort()).toEqual(left.filter((f) => match(f, t)).sort());
        },
      ),
      { seed: 20261125, numRuns: 400 },
    );
  });

  it("routes among 50,000 filters by walking only the matching branches", () => {
    const trie = new SubscriptionTrie<number>();
    for (let i = 0; i < 25_000; i++) {
      trie.add(`devices/${i}/telemetry`, i);
      trie.add(`devices/${i}/+`, i);
    }
    trie.add("devices/#", -1);
    expect(trie.filterCount).toBe(50_001);
    expect(trie.match("devices/123/telemetry").sort((a, b) => a - b)).toEqual([-1, 123, 123]);
    expect(trie.match("devices/999999/telemetry")).toEqual([-1]);
  });
});
