import { describe, expect, it } from "vitest";
import { AsyncQueue } from "./async-queue.js";

// PyMyQtt regression test_00_a, and MyQtt's timedpop (microseconds).
describe("AsyncQueue", () => {
  it("pops 1, 2, 3 in order", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    q.push(3);
    expect(q.length).toBe(3);
    expect([await q.pop(), await q.pop(), await q.pop()]).toEqual([1, 2, 3]);
    expect(q.length).toBe(0);
  });

  it("keeps 1000 integers in FIFO order", async () => {
    const q = new AsyncQueue<number>();
    for (let i = 0; i < 1000; i++) q.push(i);
    for (let i = 0; i < 1000; i++) expect(await q.pop()).toBe(i);
  });

  it("keeps mixed items (tuples, strings, lists) x1000 in order", async () => {
    const q = new AsyncQueue<unknown>();
    const items: unknown[] = [[2, 3], "This is an string", [1, 2, 3, 4]];
    for (let i = 0; i < 1000; i++) for (const item of items) q.push(item);
    for (let i = 0; i < 1000; i++) for (const item of items) expect(await q.pop()).toBe(item);
  });

  it("hands an item to a consumer that was already waiting", async () => {
    const q = new AsyncQueue<string>();
    const popped = q.pop();
    expect(q.waiting).toBe(1);
    q.push("late");
    expect(await popped).toBe("late");
    expect(q.waiting).toBe(0);
  });

  it("timedpop returns null after the timeout and leaves no waiter behind", async () => {
    const q = new AsyncQueue<number>();
    const start = Date.now();
    expect(await q.timedpop(50_000)).toBeNull();
    expect(Date.now() - start).toBeGreaterThanOrEqual(45);
    expect(q.waiting).toBe(0);
    q.push(7);
    expect(await q.timedpop(1_000_000)).toBe(7);
  });

  it("timedpop gets an item pushed while it waits", async () => {
    const q = new AsyncQueue<number>();
    const pending = q.timedpop(5_000_000);
    setTimeout(() => q.push(9), 10);
    expect(await pending).toBe(9);
  });

  it("priorityPush puts an item at the head", async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    await q.pop();
    q.priorityPush(0);
    expect(q.toArray()).toEqual([0, 2]);
    expect(q.tryPop()).toBe(0);
    expect(q.tryPop()).toBe(2);
    expect(q.tryPop()).toBeUndefined();
  });

  it("stays correct across the internal compaction", () => {
    const q = new AsyncQueue<number>();
    for (let i = 0; i < 5000; i++) q.push(i);
    for (let i = 0; i < 3000; i++) expect(q.tryPop()).toBe(i);
    for (let i = 5000; i < 6000; i++) q.push(i);
    for (let i = 3000; i < 6000; i++) expect(q.tryPop()).toBe(i);
    expect(q.length).toBe(0);
  });
});

describe("AsyncQueue.timedpop with a very long wait", () => {
  it("waits: a delay past what a Node timer takes (24.8 days) does not fire after 1 ms", async () => {
    const q = new AsyncQueue<string>();
    setTimeout(() => q.push("late"), 50);
    expect(await q.timedpop(3e12)).toBe("late");
  });
});
