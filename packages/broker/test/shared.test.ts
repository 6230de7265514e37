import { describe, expect, it } from "vitest";
import { getBroker } from "../src/index.js";
import {
  payloads,
  type Recording,
  rawConnected,
  rawSubscribe,
  recorder,
  untilGone,
} from "./flow-helpers.js";
import { client, sleep, startBroker, type TestBroker, until } from "./helpers.js";

async function members(
  broker: TestBroker,
  filter: string,
  count: number,
  protocolVersion: 4 | 5,
): Promise<Recording[]> {
  const out: Recording[] = [];
  for (let i = 0; i < count; i++) {
    const r = await recorder(broker, { protocolVersion });
    await r.c.subscribeAsync(filter, { qos: 1 });
    out.push(r);
  }
  return out;
}

const total = (rs: Recording[]): number => rs.reduce((n, r) => n + r.got.length, 0);
const all = (rs: Recording[]): string[] => rs.flatMap((r) => payloads(r.got)).sort();
const nine = Array.from({ length: 9 }, (_, i) => `m${i}`).sort();

describe.each([4, 5] as const)("shared subscriptions, MQTT level %i", (protocolVersion) => {
  it("gives each message to one member, round robin (3 members, 9 messages: 3 each)", async () => {
    const broker = await startBroker();
    const group = await members(broker, "$share/workers/jobs/+", 3, protocolVersion);
    const publisher = await client(broker, { protocolVersion });
    for (let i = 0; i < 9; i++) await publisher.publishAsync("jobs/a", `m${i}`, { qos: 1 });
    await until(() => total(group) >= 9);
    await sleep(150);
    expect(group.map((r) => r.got.length)).toEqual([3, 3, 3]);
    expect(all(group)).toEqual(nine);
    expect(group.flatMap((r) => r.got.map((m) => m.topic))).toEqual(Array(9).fill("jobs/a"));
  });

  it("gives every message to each group and to plain subscribers of the same filter", async () => {
    const broker = await startBroker();
    const g1 = await members(broker, "$share/one/multi/#", 2, protocolVersion);
    const g2 = await members(broker, "$share/two/multi/#", 3, protocolVersion);
    const plain = await recorder(broker, { protocolVersion });
    await plain.c.subscribeAsync("multi/#", { qos: 1 });
    const publisher = await client(broker, { protocolVersion });
    for (let i = 0; i < 9; i++) await publisher.publishAsync("multi/x", `m${i}`, { qos: 1 });
    await until(() => total(g1) >= 9 && total(g2) >= 9 && plain.got.length >= 9);
    await sleep(150);
    expect(all(g1)).toEqual(nine);
    expect(all(g2)).toEqual(nine);
    expect(payloads(plain.got).sort()).toEqual(nine);
    expect(g1.map((r) => r.got.length)).toEqual([5, 4]);
    expect(g2.map((r) => r.got.length)).toEqual([3, 3, 3]);
  });

  it("sends no retained messages to a shared subscription", async () => {
    const broker = await startBroker();
    const publisher = await client(broker, { protocolVersion });
    await publisher.publishAsync("kept/x", "retained", { qos: 1, retain: true });
    await sleep(50);
    const [member] = await members(broker, "$share/g/kept/#", 1, protocolVersion);
    await sleep(200);
    expect(member!.got).toEqual([]);
    await publisher.publishAsync("kept/x", "live", { qos: 1 });
    await until(() => member!.got.length === 1);
    expect(member!.got.map((m) => [m.payload, m.retain])).toEqual([["live", false]]);
  });

  it("gives what a clean-session member held unacknowledged to another member when it goes (v5 4.8.2)", async () => {
    const broker = await startBroker();
    // A member that takes its messages and never acknowledges them (nor reads more than two:
    // the rest waits in its queue behind its in-flight window).
    const { raw: holder } = await rawConnected(broker, protocolVersion, {
      clientId: "holder",
      ...(protocolVersion === 5 ? { properties: { receiveMaximum: 2 } } : {}),
    });
    expect(await rawSubscribe(holder, [{ topicFilter: "$share/h/work/#", qos: 1 }])).toEqual([1]);
    const [other] = await members(broker, "$share/h/work/#", 1, protocolVersion);
    const publisher = await client(broker, { protocolVersion });
    for (let i = 0; i < 9; i++) await publisher.publishAsync("work/a", `m${i}`, { qos: 1 });
    await until(() => other!.got.length >= 4, 2000, "the other member's share");
    const held = payloads(other!.got).length;
    expect(held).toBeLessThan(9);
    holder.destroy();
    // Every message reaches a member that acknowledges it: none is lost with the session.
    await until(() => other!.got.length === 9, 3000, "the holder's messages");
    expect(all([other!])).toEqual(nine);
  });

  it("keeps serving the remaining members when one leaves", async () => {
    const broker = await startBroker();
    const group = await members(broker, "$share/g/leave/#", 3, protocolVersion);
    const gone = group[1]!;
    const goneId = gone.c.options.clientId!;
    await gone.c.endAsync();
    await untilGone(broker, goneId);
    const publisher = await client(broker, { protocolVersion });
    for (let i = 0; i < 8; i++) await publisher.publishAsync("leave/x", `m${i}`, { qos: 1 });
    const stay = [group[0]!, group[2]!];
    await until(() => total(stay) >= 8);
    await sleep(150);
    expect(gone.got).toEqual([]);
    expect(stay.map((r) => r.got.length)).toEqual([4, 4]);
  });

  it("forgets a group with its last member while plain subscribers of the filter stay", async () => {
    // Each group keeps a round-robin position; a broker that kept it for every group that
    // ever existed would grow with each new group name (found by fuzzing).
    const broker = await startBroker();
    const groups = (): number => getBroker(broker.ctx).sharedGroupCount;
    const plain = await recorder(broker, { protocolVersion });
    await plain.c.subscribeAsync("churn/t", { qos: 1 });
    const publisher = await client(broker, { protocolVersion });
    for (let i = 0; i < 10; i++) {
      const [member] = await members(broker, `$share/g${i}/churn/t`, 1, protocolVersion);
      expect(groups()).toBe(1);
      await publisher.publishAsync("churn/t", `m${i}`, { qos: 1 });
      await until(() => member!.got.length === 1);
      if (i % 2 === 0) {
        // Leaving by unsubscribing, or with the session when the client goes.
        await member!.c.unsubscribeAsync(`$share/g${i}/churn/t`);
        expect(groups()).toBe(0);
        await member!.c.endAsync();
      } else {
        const id = member!.c.options.clientId!;
        await member!.c.endAsync();
        await untilGone(broker, id);
      }
      expect(groups()).toBe(0);
    }
    expect(plain.got.length).toBe(10);
  });
});
