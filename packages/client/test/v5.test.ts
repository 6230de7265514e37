// MQTT 5.0 in @myqtt/client: the server's announcements honoured (Receive Maximum, Maximum
// Packet Size, Topic Alias Maximum, Server Keep Alive, Assigned Client Identifier), server
// redirection, enhanced authentication and re-authentication, request/response.
import { PacketTooLargeError, ReasonCode } from "@myqtt/codec";
import { PublishCode } from "@myqtt/core";
import { describe, expect, it } from "vitest";
import {
  AbortedError,
  ConnackError,
  ConnectionError,
  connect,
  TimeoutError,
} from "../src/index.js";
import { occurrences, recordingProxy, SERVERS, settledWithin, take } from "./api-helpers.js";
import { client, mosquitto, onCleanup, sleep, startBroker, until } from "./helpers.js";

const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString();

describe("Receive Maximum", () => {
  it("never more QoS 1/2 publishes in flight than the server's Receive Maximum", async () => {
    const held: Array<() => void> = [];
    const server = await startBroker({ receiveMaximum: 3 }, (ctx) =>
      ctx.setOnPublish((_ctx, _conn, msg) => {
        if (!msg.topic.startsWith("rm/")) return PublishCode.OK;
        // The acknowledgement waits until the test releases it.
        return new Promise((resolve) => held.push(() => resolve(PublishCode.OK)));
      }),
    );
    const receiver = await client(server, { protocolVersion: 5 });
    const sub = await receiver.subscribe("rm/#", { qos: 2 });
    // What the client puts on the wire, counted between it and the broker.
    const proxy = await recordingProxy(server.port);
    const c = await client(proxy, { protocolVersion: 5 });
    const sentPublishes = (): number => occurrences(proxy.toServer(), "rm/");
    const events: string[] = [];
    c.on("disconnect", (code) => events.push(`disconnect ${code}`));
    c.on("close", () => events.push("close"));
    expect(c.serverProperties.receiveMaximum).toBe(3);

    let completed = 0;
    const all = Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        c.publish(`rm/${i}`, `m${i}`, { qos: i % 2 === 0 ? 1 : 2 }).then((r) => {
          completed++;
          return r;
        }),
      ),
    );
    all.catch(() => {});
    await until(() => sentPublishes() === 3 && held.length === 1, 2000, "three publishes sent");
    await sleep(150);
    // The fourth one waits in the client, not on the wire.
    expect(sentPublishes()).toBe(3);
    expect(c.pendingPublishes).toBe(10);
    let maxInFlight = 0;
    while (completed < 10) {
      await until(() => held.length > 0 || completed === 10, 2000, "a held publish");
      held.shift()?.();
      await sleep(10);
      maxInFlight = Math.max(maxInFlight, sentPublishes() - completed);
      expect(sentPublishes() - completed).toBeLessThanOrEqual(3);
    }
    const results = await all;
    expect(results.map((r) => r.reasonCode)).toEqual(Array(10).fill(0));
    expect(sentPublishes()).toBe(10);
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(events).toEqual([]);
    expect(c.connected).toBe(true);
    // Order is kept through the window.
    expect((await take(sub, 10)).map((m) => m.content)).toEqual(
      Array.from({ length: 10 }, (_, i) => `m${i}`),
    );
  });

  it("a queued publish aborted before it was sent is never sent", async () => {
    const held: Array<() => void> = [];
    const seen: string[] = [];
    const server = await startBroker({ receiveMaximum: 1 }, (ctx) =>
      ctx.setOnPublish((_ctx, _conn, msg) => {
        seen.push(msg.content);
        return new Promise((resolve) => held.push(() => resolve(PublishCode.OK)));
      }),
    );
    const c = await client(server, { protocolVersion: 5 });
    const first = c.publish("q/1", "first", { qos: 1 });
    const controller = new AbortController();
    const second = c.publish("q/2", "second", { qos: 1, signal: controller.signal });
    const third = c.publish("q/3", "third", { qos: 1 });
    await until(() => held.length === 1);
    controller.abort();
    await expect(second).rejects.toBeInstanceOf(AbortedError);
    held.shift()?.();
    await first;
    await until(() => held.length === 1);
    held.shift()?.();
    await third;
    expect(seen).toEqual(["first", "third"]);
    expect(c.pendingPublishes).toBe(0);
  });
});

describe("Maximum Packet Size", () => {
  it("a publish larger than the server's maximum rejects locally; the connection stays up", async () => {
    const server = await startBroker({ maximumPacketSize: 1024 });
    const receiver = await client(server, { protocolVersion: 5 });
    const sub = await receiver.subscribe("big/#", { qos: 1 });
    const proxy = await recordingProxy(server.port);
    const c = await client(proxy, { protocolVersion: 5 });
    expect(c.serverProperties.maximumPacketSize).toBe(1024);
    for (const qos of [0, 1, 2] as const) {
      const error = await c.publish("big/one", "x".repeat(2000), { qos }).catch((e: unknown) => e);
      expect(error, `QoS ${qos}`).toBeInstanceOf(PacketTooLargeError);
      expect((error as PacketTooLargeError).limit).toBe(1024);
    }
    // A packet of exactly the limit still goes; nothing is stuck in the client.
    expect(c.pendingPublishes).toBe(0);
    expect(proxy.toServer().includes(Buffer.from("xxxxxxxxxx"))).toBe(false);
    await c.publish("big/small", "y".repeat(900), { qos: 1 });
    expect(c.connected).toBe(true);
    const [msg] = await take(sub, 1);
    expect(msg?.topic).toBe("big/small");
    expect(msg?.size).toBe(900);
  });
});

describe("Topic Alias Maximum", () => {
  it("the client uses aliases by itself; the server sees full topics and routes correctly", async () => {
    const seen: [string, number | undefined][] = [];
    const server = await startBroker({ topicAliasMaximum: 2 }, (ctx) =>
      ctx.setOnPublish((_ctx, _conn, msg) => {
        seen.push([msg.topic, msg.properties.topicAlias]);
        return PublishCode.OK;
      }),
    );
    const receiver = await client(server, { protocolVersion: 5 });
    const sub = await receiver.subscribe("alias/#", { qos: 1 });
    const proxy = await recordingProxy(server.port);
    const c = await client(proxy, { protocolVersion: 5 });
    expect(c.serverProperties.topicAliasMaximum).toBe(2);
    const topics = [
      "alias/first/a-rather-long-topic-name",
      "alias/second/a-rather-long-topic-name",
      "alias/third/a-rather-long-topic-name",
    ];
    const sent: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const topic of topics) {
        await c.publish(topic, `${round}`, { qos: 1 });
        sent.push(topic);
      }
    }
    expect(seen.map(([topic]) => topic)).toEqual(sent);
    // Two aliases available: the first two topics get one, the third goes in full each time.
    const aliasesOf = (topic: string) => seen.filter(([t]) => t === topic).map(([, a]) => a);
    const a1 = aliasesOf(topics[0]!);
    const a2 = aliasesOf(topics[1]!);
    expect(new Set(a1).size).toBe(1);
    expect(a1[0]).toBeGreaterThanOrEqual(1);
    expect(a1[0]).toBeLessThanOrEqual(2);
    expect(new Set(a2).size).toBe(1);
    expect(a2[0]).not.toBe(a1[0]);
    expect(aliasesOf(topics[2]!)).toEqual([undefined, undefined, undefined]);
    // On the wire, aliased topics travel once.
    const wire = proxy.toServer();
    expect(occurrences(wire, topics[0]!)).toBe(1);
    expect(occurrences(wire, topics[1]!)).toBe(1);
    expect(occurrences(wire, topics[2]!)).toBe(3);
    const got = await take(sub, 9);
    expect(got.map((m) => m.topic)).toEqual(sent);
  });

  it("aliases the server uses towards the client resolve to the right topics", async () => {
    const server = await startBroker();
    const proxy = await recordingProxy(server.port);
    const receiver = await client(proxy, {
      protocolVersion: 5,
      properties: { topicAliasMaximum: 5 },
    });
    const sub = await receiver.subscribe("in/#", { qos: 1 });
    const sender = await client(server, { protocolVersion: 5 });
    const sent: string[] = [];
    for (let i = 0; i < 6; i++) {
      const topic = `in/${i % 2 === 0 ? "even" : "odd"}/some-long-topic-level`;
      sent.push(topic);
      await sender.publish(topic, `${i}`, { qos: i % 3 === 0 ? 0 : 1 });
    }
    const got = await take(sub, 6);
    expect(got.map((m) => [m.topic, m.content])).toEqual(sent.map((t, i) => [t, `${i}`]));
    // The broker did use aliases (each topic crossed the wire once).
    expect(occurrences(proxy.toClient(), "in/even/some-long-topic-level")).toBe(1);
  });

  it("topicAliases: false sends full topics", async () => {
    const seen: (number | undefined)[] = [];
    const server = await startBroker({ topicAliasMaximum: 10 }, (ctx) =>
      ctx.setOnPublish((_ctx, _conn, msg) => {
        seen.push(msg.properties.topicAlias);
        return PublishCode.OK;
      }),
    );
    const c = await client(server, { protocolVersion: 5, topicAliases: false });
    for (let i = 0; i < 3; i++) await c.publish("no/alias", "x", { qos: 1 });
    expect(seen).toEqual([undefined, undefined, undefined]);
  });
});

describe("Server Keep Alive", () => {
  it("the client keeps the shorter keep alive the server imposes", async () => {
    const server = await startBroker({ maxKeepAlive: 1 });
    const c = await client(server, { protocolVersion: 5, keepAlive: 60 });
    expect(c.serverProperties.serverKeepAlive).toBe(1);
    const events: string[] = [];
    c.on("disconnect", (code) => events.push(`disconnect 0x${code.toString(16)}`));
    c.on("close", () => events.push("close"));
    // Idle for longer than 1.5 × 1 s: the broker would drop a client that kept 60 s.
    await sleep(2300);
    expect(events).toEqual([]);
    expect(c.connected).toBe(true);
    await c.ping();
  });
});

describe("Assigned Client Identifier", () => {
  it("our broker: an empty client id becomes the one the server assigned", async () => {
    let hookSaw = "";
    const server = await startBroker({}, (ctx) =>
      ctx.setOnConnect((_ctx, conn) => {
        hookSaw = conn.clientId;
        return 0;
      }),
    );
    const c = await client(server, { protocolVersion: 5, clientId: "" });
    expect(hookSaw).not.toBe("");
    expect(c.serverProperties.assignedClientIdentifier).toBe(hookSaw);
    expect(c.clientId).toBe(hookSaw);
  });

  it("Mosquitto: an empty client id becomes the one the server assigned", async () => {
    const server = await mosquitto();
    const c = await client(server, { protocolVersion: 5, clientId: "" });
    const assigned = c.serverProperties.assignedClientIdentifier;
    expect(assigned).toBeTruthy();
    expect(c.clientId).toBe(assigned);
  });
});

describe("server redirection", () => {
  async function twoBrokers(code: number) {
    const target = await startBroker();
    const targetSaw: string[] = [];
    target.ctx.setOnConnect((_ctx, conn) => {
      targetSaw.push(conn.clientId);
      return 0;
    });
    const reference = `127.0.0.1:${target.port}`;
    const first = await startBroker({}, (ctx) =>
      ctx.setOnConnect(() => ({ reasonCode: code, properties: { serverReference: reference } })),
    );
    return { first, target, targetSaw, reference };
  }

  for (const code of [ReasonCode.USE_ANOTHER_SERVER, ReasonCode.SERVER_MOVED]) {
    it(`followRedirects follows 0x${code.toString(16)} to the referenced server`, async () => {
      const { first, target, targetSaw } = await twoBrokers(code);
      const c = await client(first, {
        protocolVersion: 5,
        clientId: "redirected",
        followRedirects: true,
      });
      expect(c.connected).toBe(true);
      expect(c.serverPort).toBe(target.port);
      expect(targetSaw).toEqual(["redirected"]);
      const sub = await c.subscribe("r/x", { qos: 1 });
      await c.publish("r/x", "here", { qos: 1 });
      expect((await take(sub, 1)).map((m) => m.content)).toEqual(["here"]);
    });
  }

  it("without followRedirects, connect rejects with ConnackError carrying the reference", async () => {
    const { first, targetSaw, reference } = await twoBrokers(ReasonCode.USE_ANOTHER_SERVER);
    const error = await connect(first.url, { protocolVersion: 5, reconnect: false }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnackError);
    expect((error as ConnackError).reasonCode).toBe(ReasonCode.USE_ANOTHER_SERVER);
    expect((error as ConnackError).serverReference).toBe(reference);
    expect(targetSaw).toEqual([]);
  });
});

describe("enhanced authentication", () => {
  function authBroker() {
    const steps: string[] = [];
    return startBroker({}, (ctx) =>
      ctx.setOnAuth((_ctx, _conn, request) => {
        steps.push(
          `${request.reauthenticate ? "re" : ""}auth ${request.method} step ${request.step}: ${text(request.data)}`,
        );
        if (request.step === 0) {
          return {
            reasonCode: ReasonCode.CONTINUE_AUTHENTICATION,
            data: Buffer.from(`challenge-${request.reauthenticate ? "2" : "1"}`),
          };
        }
        const expected = `response-to-challenge-${request.reauthenticate ? "2" : "1"}`;
        return text(request.data) === expected
          ? { reasonCode: ReasonCode.SUCCESS, data: Buffer.from("welcome") }
          : { reasonCode: ReasonCode.NOT_AUTHORIZED };
      }),
    ).then((server) => ({ server, steps }));
  }

  it("a two-step exchange through the auth option, then reauthenticate()", async () => {
    const { server, steps } = await authBroker();
    const handled: string[] = [];
    const c = await client(server, {
      protocolVersion: 5,
      auth: {
        method: "X-CHALLENGE",
        data: Buffer.from("hello"),
        handler: (serverData, step) => {
          handled.push(`${step}: ${text(serverData)}`);
          return Buffer.from(`response-to-${text(serverData)}`);
        },
      },
    });
    expect(c.connected).toBe(true);
    expect(handled).toEqual(["1: challenge-1"]);
    expect(steps).toEqual([
      "auth X-CHALLENGE step 0: hello",
      "auth X-CHALLENGE step 1: response-to-challenge-1",
    ]);
    expect(c.serverProperties.authenticationMethod).toBe("X-CHALLENGE");
    expect(text(c.serverProperties.authenticationData)).toBe("welcome");

    await c.reauthenticate(Buffer.from("again"));
    expect(handled).toEqual(["1: challenge-1", "1: challenge-2"]);
    expect(steps.slice(2)).toEqual([
      "reauth X-CHALLENGE step 0: again",
      "reauth X-CHALLENGE step 1: response-to-challenge-2",
    ]);
    expect(c.connected).toBe(true);
    const sub = await c.subscribe("after/reauth", { qos: 1 });
    await c.publish("after/reauth", "still here", { qos: 1 });
    expect((await take(sub, 1)).map((m) => m.content)).toEqual(["still here"]);
  });

  it("a failed exchange rejects connect with ConnackError and the server's reason code", async () => {
    const { server } = await authBroker();
    const error = await connect(server.url, {
      protocolVersion: 5,
      reconnect: false,
      auth: { method: "X-CHALLENGE", handler: () => Buffer.from("wrong answer") },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnackError);
    expect((error as ConnackError).reasonCode).toBe(ReasonCode.NOT_AUTHORIZED);
  });

  it("a server asking for steps the client has no handler for rejects with ConnectionError", async () => {
    const { server } = await authBroker();
    const error = await connect(server.url, {
      protocolVersion: 5,
      reconnect: false,
      auth: { method: "X-CHALLENGE" },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
  });
});

describe("subscription identifiers", () => {
  it("one PUBLISH is delivered once to a subscription whose filters overlap", async () => {
    // Our broker sends a single copy carrying the identifier of each matching subscription
    // (here the same one twice, [MQTT-3.3.4-4]); the Subscription must yield it once.
    const server = await startBroker();
    const proxy = await recordingProxy(server.port);
    const c = await client(proxy, { protocolVersion: 5 });
    const sub = await c.subscribe(["ovl/#", "ovl/+"], { qos: 1 });
    let events = 0;
    c.on("message", () => events++);
    await c.publish("ovl/x", "once", { qos: 1 });
    expect((await take(sub, 1)).map((m) => m.content)).toEqual(["once"]);
    await sleep(100);
    expect(occurrences(proxy.toClient(), "ovl/x")).toBe(1);
    expect(events).toBe(1);
    expect(sub.buffered).toBe(0);
  });
});

describe.each(SERVERS)("request/response against %s", (_name, start) => {
  it("request() gets the answer of a responder; concurrent requests are matched", async () => {
    const server = await start();
    const responder = await client(server, { protocolVersion: 5 });
    const requests = await responder.subscribe("svc/echo", { qos: 1 });
    void (async () => {
      for await (const msg of requests) {
        const { responseTopic, correlationData } = msg.properties;
        if (responseTopic === undefined) continue;
        // Answer the later requests first, to prove the correlation.
        const delay = msg.content === "a" ? 60 : 0;
        setTimeout(() => {
          responder
            .publish(responseTopic, `echo:${msg.content}`, {
              qos: 1,
              properties: correlationData === undefined ? {} : { correlationData },
            })
            .catch(() => {});
        }, delay);
      }
    })();
    const requester = await client(server, { protocolVersion: 5 });
    const [a, b, c] = await Promise.all(
      ["a", "b", "c"].map((p) => requester.request("svc/echo", p, { timeoutMs: 2000 })),
    );
    expect([a?.content, b?.content, c?.content]).toEqual(["echo:a", "echo:b", "echo:c"]);
    const d = await requester.request("svc/echo", "d", { timeoutMs: 2000 });
    expect(d.content).toBe("echo:d");
  });

  it("request() rejects with TimeoutError after timeoutMs when nobody answers", async () => {
    const server = await start();
    const requester = await client(server, { protocolVersion: 5 });
    const started = Date.now();
    const error = await requester
      .request("svc/nobody", "hello?", { timeoutMs: 300 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    expect(requester.connected).toBe(true);
  });

  it("request() with an AbortSignal stops waiting", async () => {
    const server = await start();
    const requester = await client(server, { protocolVersion: 5 });
    const controller = new AbortController();
    const p = requester.request("svc/nobody", "x", { timeoutMs: 5000, signal: controller.signal });
    await sleep(50);
    controller.abort();
    const settled = await settledWithin(p, 500);
    expect(settled !== "pending" && settled.status === "rejected" && settled.reason).toBeInstanceOf(
      AbortedError,
    );
  });
});

describe.each(SERVERS)("MQTT 5.0 properties against %s", (_name, start) => {
  it("user properties, content type and the payload format travel with a message", async () => {
    const server = await start();
    const c = await client(server, { protocolVersion: 5 });
    const sub = await c.subscribe("props/x", { qos: 1 });
    await c.publish("props/x", '{"a":1}', {
      qos: 1,
      properties: {
        contentType: "application/json",
        payloadFormatIndicator: 1,
        userProperties: [
          ["k", "v"],
          ["k", "w"],
        ],
      },
    });
    const [msg] = await take(sub, 1);
    expect(msg?.properties.contentType).toBe("application/json");
    expect(msg?.properties.payloadFormatIndicator).toBe(1);
    expect(msg?.properties.userProperties).toEqual([
      ["k", "v"],
      ["k", "w"],
    ]);
    expect(msg?.properties.subscriptionIdentifiers).toEqual([sub.identifier]);
    onCleanup(() => sub.unsubscribe());
  });
});

describe.each(SERVERS)(
  "5.0 subscription options and DISCONNECT reasons against %s",
  (_name, start) => {
    it("noLocal keeps a client's own messages from it; others still get them", async () => {
      const server = await start();
      const c = await client(server, { protocolVersion: 5 });
      const other = await client(server, { protocolVersion: 5 });
      const mine = await c.subscribe("nl/#", { qos: 1, noLocal: true });
      const theirs = await other.subscribe("nl/#", { qos: 1 });
      await c.publish("nl/1", "from c", { qos: 1 });
      await other.publish("nl/2", "from other", { qos: 1 });
      expect((await take(mine, 1)).map((m) => m.content)).toEqual(["from other"]);
      expect((await take(theirs, 2)).map((m) => m.content).sort()).toEqual([
        "from c",
        "from other",
      ]);
      await sleep(50);
      expect(mine.buffered).toBe(0);
    });

    it("retainHandling 2 sends no retained message; retainAsPublished keeps the RETAIN flag", async () => {
      const server = await start();
      const publisher = await client(server, { protocolVersion: 5 });
      await publisher.publish("rh/kept", "retained", { qos: 1, retain: true });
      const c1 = await client(server, { protocolVersion: 5 });
      const c2 = await client(server, { protocolVersion: 5 });
      const none = await c1.subscribe("rh/#", { qos: 1, retainHandling: 2 });
      const asPublished = await c2.subscribe("rh/+", { qos: 1, retainAsPublished: true });
      // retainHandling 0 (the default) on c2: the retained message, flagged.
      const [retained] = await take(asPublished, 1);
      expect(retained?.content).toBe("retained");
      expect(retained?.retain).toBe(true);
      await publisher.publish("rh/kept", "live", { qos: 1, retain: true });
      const [live] = await take(asPublished, 1);
      expect(live?.content).toBe("live");
      expect(live?.retain).toBe(true);
      // c1 got no retained message, and the live one with RETAIN cleared [MQTT-3.3.1-12].
      const [plain] = await take(none, 1);
      expect(plain?.content).toBe("live");
      expect(plain?.retain).toBe(false);
      await publisher.publish("rh/kept", "", { qos: 1, retain: true });
    });

    it("end({ reasonCode: 0x04 }) disconnects with the will message", async () => {
      const server = await start();
      const watcher = await client(server, { protocolVersion: 5 });
      const wills = await watcher.subscribe("will/#", { qos: 1 });
      const c = await client(server, {
        protocolVersion: 5,
        will: { topic: "will/v5", payload: "sent on purpose", qos: 1 },
      });
      await c.end({ reasonCode: ReasonCode.DISCONNECT_WITH_WILL_MESSAGE });
      expect(c.state).toBe("closed");
      const [will] = await take(wills, 1);
      expect(will?.topic).toBe("will/v5");
      expect(will?.content).toBe("sent on purpose");
    });
  },
);
