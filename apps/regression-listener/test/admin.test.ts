// The admin topics of the C regression listener (reference §5.1), over plain MQTT: exact
// payloads, the 1 s delays, the sort order of the subscription lists, close/conn.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { hasOpenssl, removeTempDirs, tempDir } from "./env.js";
import { killAllListeners, type Listener, sleep, startListener } from "./listener.js";
import { ask, type Client, closeAllClients, connect, end, waitFor } from "./mqtt.js";

describe.skipIf(!hasOpenssl)("admin topics", () => {
  let certs = "";
  let l: Listener;
  let url = "";
  beforeAll(() => {
    certs = tempDir();
  });
  // A listener per test: the ctx-wide lists must not see other tests' clients.
  beforeEach(async () => {
    l = await startListener(certs, tempDir());
    url = `mqtt://127.0.0.1:${l.ports.plain}`;
  });
  afterEach(async () => {
    closeAllClients();
    await killAllListeners();
  });
  afterAll(removeTempDirs);

  it("answers get-client-identifier after about 1 s, to the asker only, without routing it", async () => {
    const spy = await connect(url, { clientId: "spy" });
    await spy.client.subscribeAsync("#", { qos: 0 });
    const c = await connect(url, { clientId: "test_06.identifier" });
    const reply = await ask(c, "myqtt/admin/get-client-identifier");
    expect(reply.payload).toBe("test_06.identifier");
    expect(reply.ms).toBeGreaterThanOrEqual(900);
    expect(reply.ms).toBeLessThan(2500);
    await sleep(100);
    expect(spy.messages).toEqual([]);
  });

  it("gives a client without an id its generated id", async () => {
    const c = await connect(url, { clientId: "", clean: true });
    const reply = await ask(c, "myqtt/admin/get-client-identifier");
    expect(reply.payload.length).toBeGreaterThan(0);
  });

  it("answers get-conn-user after about 1 s; empty without a user name", async () => {
    const user = await connect(url, { clientId: "u1", username: "aspl", password: "test" });
    const reply = await ask(user, "myqtt/admin/get-conn-user");
    expect(reply).toMatchObject({ payload: "aspl" });
    expect(reply.ms).toBeGreaterThanOrEqual(900);
    const anonymous = await connect(url, { clientId: "u2" });
    expect((await ask(anonymous, "myqtt/admin/get-conn-user")).payload).toBe("");
  });

  it("does not hold other clients up while a delayed answer waits", async () => {
    const slow = await connect(url, { clientId: "slow" });
    const fast = await connect(url, { clientId: "fast" });
    const pending = ask(slow, "myqtt/admin/get-client-identifier");
    const quick = await ask(fast, "myqtt/admin/get-tls-status");
    expect(quick.payload).toBe("tls is not enabled brother");
    expect(quick.ms).toBeLessThan(500);
    // The same connection too: its later packets are not held back by the wait.
    const same = await ask(slow, "myqtt/admin/get-server-name");
    expect(same).toMatchObject({ payload: "" });
    expect(same.ms).toBeLessThan(500);
    expect((await pending).payload).toBe("slow");
  });

  it("lists subscriptions as test_24 expects: exact then wildcard, each sorted", async () => {
    const clean = await connect(url, { clientId: "test_24", clean: true });
    expect((await ask(clean, "get-subscriptions")).payload).toBe("");
    expect((await ask(clean, "get-subscriptions-ctx")).payload).toBe("");
    await end(clean);

    const c = await connect(url, { clientId: "test_24", clean: false });
    for (const filter of ["myqtt/test/b/+", "myqtt/test/b", "myqtt/test/b/#", "myqtt/test/a"])
      await c.client.subscribeAsync(filter, { qos: 0 });
    expect((await ask(c, "get-subscriptions")).payload).toBe(
      "myqtt/test/a.0,myqtt/test/b.0,myqtt/test/b/#.0,myqtt/test/b/+.0",
    );
    expect((await ask(c, "get-subscriptions-ctx")).payload).toBe(
      "myqtt/test/a.num-conns=1,myqtt/test/b.num-conns=1,myqtt/test/b/#.num-conns=1,myqtt/test/b/+.num-conns=1",
    );
    await end(c);

    // A clean reconnect drops the session; a persistent one after it finds nothing.
    for (const cleanSession of [true, false]) {
      const again = await connect(url, { clientId: "test_24", clean: cleanSession });
      expect((await ask(again, "get-subscriptions")).payload).toBe("");
      expect((await ask(again, "get-subscriptions-ctx")).payload).toBe("");
      await end(again);
    }
  });

  it("shows each subscription's QoS, and counts only online connections in the ctx list", async () => {
    const away = await connect(url, { clientId: "away", clean: false });
    await away.client.subscribeAsync("x/offline", { qos: 1 });
    await end(away);
    const a = await connect(url, { clientId: "a" });
    const b = await connect(url, { clientId: "b" });
    await a.client.subscribeAsync({ "x/1": { qos: 1 }, "x/2": { qos: 2 }, "x/#": { qos: 0 } });
    await b.client.subscribeAsync({ "x/1": { qos: 0 }, "x/+": { qos: 2 } });
    expect((await ask(a, "get-subscriptions")).payload).toBe("x/1.1,x/2.2,x/#.0");
    expect((await ask(b, "get-subscriptions")).payload).toBe("x/1.0,x/+.2");
    expect((await ask(a, "get-subscriptions-ctx")).payload).toBe(
      "x/1.num-conns=2,x/2.num-conns=1,x/#.num-conns=1,x/+.num-conns=1",
    );
  });

  it("answers get-conn-subs with the exact subscriptions, one line each, after about 1 s", async () => {
    const c = await connect(url, { clientId: "test11@identifier.com", clean: false });
    for (const filter of ["a/subs/3", "a/subs/1", "a/subs/#", "a/subs/2"])
      await c.client.subscribeAsync(filter, { qos: 0 });
    await end(c);
    const back = await connect(url, { clientId: "test11@identifier.com", clean: false });
    expect(back.sessionPresent).toBe(true);
    const reply = await ask(back, "myqtt/admin/get-conn-subs");
    expect(reply.payload).toBe("0: a/subs/1\n0: a/subs/2\n0: a/subs/3\n");
    expect(reply.ms).toBeGreaterThanOrEqual(900);
    await back.client.subscribeAsync("a/subs/2", { qos: 1 });
    expect((await ask(back, "myqtt/admin/get-conn-subs")).payload).toBe(
      "0: a/subs/1\n1: a/subs/2\n0: a/subs/3\n",
    );
  });

  it("counts the queued messages of the client id in the payload (test_15: 30)", async () => {
    const id = "test15@identifier.com";
    const sub = await connect(url, { clientId: id, clean: false });
    for (const n of [1, 2, 3]) await sub.client.subscribeAsync(`test/message/${n}`, { qos: 2 });
    await end(sub);
    const pub = await connect(url, { clientId: "test15-publisher" });
    for (let i = 0; i < 10; i++) {
      await pub.client.publishAsync("test/message/1", `m${i}`, { qos: 0 });
      await pub.client.publishAsync("test/message/2", `m${i}`, { qos: 1 });
      await pub.client.publishAsync("test/message/3", `m${i}`, { qos: 2 });
    }
    const reply = await ask(pub, "myqtt/admin/get-queued-msgs", id);
    expect(reply.payload).toBe("30");
    expect(reply.ms).toBeGreaterThanOrEqual(900);
    expect((await ask(pub, "myqtt/admin/get-queued-msgs", "nobody")).payload).toBe("0");

    const back = await connect(url, { clientId: id, clean: false });
    await waitFor("30 messages", () => back.messages.length === 30);
    const byQos = [0, 1, 2].map((q) => back.messages.filter((m) => m.qos === q).length);
    expect(byQos).toEqual([10, 10, 10]);
    await sleep(100);
    expect((await ask(pub, "myqtt/admin/get-queued-msgs", id)).payload).toBe("0");
  });

  it("answers get-tls-status and get-server-name on plain MQTT", async () => {
    const c = await connect(url, { clientId: "plain" });
    expect((await ask(c, "myqtt/admin/get-tls-status")).payload).toBe("tls is not enabled brother");
    expect((await ask(c, "myqtt/admin/get-server-name")).payload).toBe("");
  });

  it("routes other topics as usual", async () => {
    const sub = await connect(url, { clientId: "test_03" });
    await sub.client.subscribeAsync("myqtt/test", { qos: 0 });
    await sub.client.publishAsync("myqtt/test", "This is test message....", { qos: 0 });
    await waitFor("the message", () => sub.messages.length === 1);
    expect(sub.messages[0]).toMatchObject({
      topic: "myqtt/test",
      payload: "This is test message....",
    });
  });

  it("drops the publisher's connection on close/conn, at any QoS, within 2 s, will included", async () => {
    const watcher = await connect(url, { clientId: "watcher" });
    await watcher.client.subscribeAsync("I lost connection", { qos: 0 });
    for (const qos of [2, 1, 0] as const) {
      const c: Client = await connect(url, {
        clientId: "test_01",
        will: {
          topic: "I lost connection",
          payload: Buffer.from(`qos ${qos}`),
          qos: 0,
          retain: false,
        },
      });
      let closed = false;
      c.client.once("close", () => {
        closed = true;
      });
      const started = performance.now();
      c.client.publish("close/conn", "", { qos, retain: true });
      await waitFor("the connection to close", () => closed, 2000);
      expect(performance.now() - started).toBeLessThan(2000);
      // Shut down, not closed with DISCONNECT: the will goes out.
      await waitFor("the will", () => watcher.messages.some((m) => m.payload === `qos ${qos}`));
    }
  });
});
