// createListener never throws: an out-of-range option, a bad port or a busy address give a
// listener with isOk() false and an errorMsg that names the problem.
import { Ctx } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import { createListener, getBroker, type ListenerOptions } from "../src/index.js";
import { onCleanup, startBroker } from "./helpers.js";
import { brokerOf, Control } from "./negative-helpers.js";

async function freshCtx(): Promise<Ctx> {
  const ctx = new Ctx();
  await ctx.init();
  onCleanup(() => ctx.exit());
  return ctx;
}

const bad: [string, unknown][] = [
  ["maxInflight", 0],
  ["maxInflight", 1.5],
  ["maxInflight", "5"],
  ["maxInflight", Number.NaN],
  ["maxInflight", Number.POSITIVE_INFINITY],
  ["maximumPacketSize", 10],
  ["maximumPacketSize", 268_435_461],
  ["maximumConnectPacketSize", 0],
  ["connectTimeoutMs", 0],
  ["receiveMaximum", 0],
  ["receiveMaximum", 65_536],
  ["maxQueuedMessages", -1],
  ["maxQueuedBytes", -1],
  ["maxOutgoingBytes", 100],
  ["writeTimeoutMs", 0],
  ["maxTopicLength", 0],
  ["maxTopicLength", 65_536],
  ["maxTopicLevels", 0],
  ["maxTopicFiltersPerPacket", 0],
  ["maxSubscriptionsPerClient", 0],
  ["maxTotalSubscriptionBytes", -1],
  ["maxUserPropertiesPerPacket", -1],
  ["maxConnections", 0],
  ["topicAliasMaximum", -1],
  ["topicAliasMaximum", 65_536],
  ["maxKeepAlive", 65_536],
  ["maxSessionExpiryInterval", 2 ** 32],
  ["maxSessions", 0],
  ["duplicateClientId", "drop"],
  ["queueQoS0", "yes"],
  ["retainAvailable", 1],
  ["outboundTopicAliases", null],
  ["notAnOption", 1],
];

describe("invalid BrokerOptions", () => {
  it.each(bad)("createListener with %s = %j is not ok and names the option", async (key, value) => {
    const ctx = await freshCtx();
    const options = { [key]: value } as ListenerOptions;
    const listener = await createListener(ctx, "127.0.0.1", "0", options);
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toContain(key);
    expect(listener.connections).toBe(0);
  });

  it("leaves a running broker and its clients alone when a second listener's options are bad", async () => {
    const broker = await startBroker({ maxInflight: 3 });
    const control = await Control.start(broker);
    const second = await createListener(broker.ctx, "127.0.0.1", "0", { maxInflight: 0 });
    expect(second.isOk()).toBe(false);
    expect(second.errorMsg).toContain("maxInflight");
    expect(brokerOf(broker).options.maxInflight).toBe(3);
    expect(broker.listener.isOk()).toBe(true);
    await control.check();
  });

  it("does not half-apply a set of options of which one is bad", async () => {
    const ctx = await freshCtx();
    const listener = await createListener(ctx, "127.0.0.1", "0", {
      maxInflight: 7,
      receiveMaximum: 0,
    });
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toContain("receiveMaximum");
    const good = await createListener(ctx, "127.0.0.1", "0", {});
    expect(good.isOk()).toBe(true);
    expect(getBroker(ctx).options.maxInflight).toBe(256);
  });
});

describe("createListener's other inputs", () => {
  it.each(["abc", "70000", "-1", "1.5", ""])("reports the bad port %j", async (port) => {
    const ctx = await freshCtx();
    const listener = await createListener(ctx, "127.0.0.1", port);
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toMatch(/invalid port/);
  });

  it("reports a port that is already in use, and the broker on it goes on", async () => {
    const broker = await startBroker();
    const control = await Control.start(broker);
    const ctx = await freshCtx();
    const listener = await createListener(ctx, "127.0.0.1", broker.port);
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toMatch(new RegExp(`cannot listen on 127.0.0.1:${broker.port}`));
    await control.check();
  });

  it("reports a context that is exiting", async () => {
    const ctx = new Ctx();
    await ctx.init();
    await ctx.exit();
    const listener = await createListener(ctx, "127.0.0.1", "0");
    expect(listener.isOk()).toBe(false);
    expect(listener.errorMsg).toMatch(/exiting/);
  });
});
