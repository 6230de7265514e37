// The on_connect rule (aspl/test only when both are given), the deferred CONNACK of test_23,
// duplicate client ids refused, and the Python variant (reference §5.1, §5.3).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hasOpenssl, removeTempDirs, tempDir } from "./env.js";
import { killAllListeners, type Listener, sleep, startListener } from "./listener.js";
import { ask, closeAllClients, connect, refusal, waitFor } from "./mqtt.js";

describe.skipIf(!hasOpenssl)("on_connect of the C listener", () => {
  let l: Listener;
  let url = "";
  beforeAll(async () => {
    l = await startListener(tempDir(), tempDir());
    url = `mqtt://127.0.0.1:${l.ports.plain}`;
  });
  afterEach(closeAllClients);
  afterAll(async () => {
    await killAllListeners();
    removeTempDirs();
  });

  it("defers the CONNACK of test_23 by about 2 s, then works as usual", async () => {
    const c = await connect(url, { clientId: "test_23", connectTimeout: 10_000 });
    expect(c.connackMs).toBeGreaterThanOrEqual(1800);
    expect(c.connackMs).toBeLessThan(4000);
    await c.client.subscribeAsync("myqtt/test/deferred", { qos: 0 });
    await c.client.publishAsync("myqtt/test/deferred", "This is test message....", { qos: 0 });
    await waitFor("the message", () => c.messages.length === 1);
    expect(c.messages[0]!.payload).toHaveLength(24);
  });

  it("answers other clients at once", async () => {
    const c = await connect(url, { clientId: "test_01" });
    expect(c.connackMs).toBeLessThan(1000);
  });

  it("refuses aspl with a wrong password, and any other user with a password (CONNACK 4)", async () => {
    expect(
      await refusal(url, { clientId: "a1", username: "aspl", password: "wrong-password" }),
    ).toBe(4);
    expect(await refusal(url, { clientId: "a2", username: "other", password: "test" })).toBe(4);
  });

  it("accepts aspl/test, a user name alone, and no credentials", async () => {
    const ok = await connect(url, { clientId: "b1", username: "aspl", password: "test" });
    expect((await ask(ok, "myqtt/admin/get-conn-user")).payload).toBe("aspl");
    const alone = await connect(url, { clientId: "b2", username: "someone" });
    expect((await ask(alone, "myqtt/admin/get-conn-user")).payload).toBe("someone");
    await connect(url, { clientId: "b3" });
  });

  it("refuses a second connection with a client id in use (CONNACK 2); the first stays", async () => {
    const first = await connect(url, { clientId: "test_06.identifier" });
    expect(await refusal(url, { clientId: "test_06.identifier" })).toBe(2);
    expect((await ask(first, "myqtt/admin/get-client-identifier")).payload).toBe(
      "test_06.identifier",
    );
  });
});

describe.skipIf(!hasOpenssl)("the Python variant (--python)", () => {
  let url = "";
  beforeAll(async () => {
    const l = await startListener(tempDir(), tempDir(), ["--python"]);
    url = `mqtt://127.0.0.1:${l.ports.plain}`;
  });
  afterEach(closeAllClients);
  afterAll(async () => {
    await killAllListeners();
    removeTempDirs();
  });

  it("keeps the auth rule and does not defer test_23", async () => {
    expect(await refusal(url, { clientId: "p1", username: "aspl", password: "nope" })).toBe(4);
    const c = await connect(url, { clientId: "test_23" });
    expect(c.connackMs).toBeLessThan(1000);
  });

  it("answers get-server-name with the peer address when there is no SNI name", async () => {
    const c = await connect(url, { clientId: "p2" });
    expect((await ask(c, "myqtt/admin/get-server-name")).payload).toBe("127.0.0.1");
    const id = await ask(c, "myqtt/admin/get-client-identifier");
    expect(id.payload).toBe("p2");
    expect(id.ms).toBeGreaterThanOrEqual(900);
  });

  it("routes close/conn and the C-only admin topics as ordinary messages", async () => {
    const c = await connect(url, { clientId: "p3" });
    await c.client.subscribeAsync("close/conn", { qos: 0 });
    await c.client.publishAsync("close/conn", "routed", { qos: 1 });
    await waitFor("close/conn routed back", () => c.messages.some((m) => m.topic === "close/conn"));
    await c.client.publishAsync("get-subscriptions", "", { qos: 0 });
    await sleep(300);
    expect(c.messages.map((m) => m.topic)).toEqual(["close/conn"]);
    expect(c.client.connected).toBe(true);
  });
});
