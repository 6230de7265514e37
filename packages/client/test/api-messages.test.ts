// client.messages(): every message the client receives, whichever subscription brought it, as
// one async iterable (architecture.md's `for await (const msg of conn.messages())`). Against
// our broker and a real Mosquitto, MQTT 3.1.1 and 5.0.
import { Decoder, PacketType } from "@myqtt/codec";
import { describe, expect, it } from "vitest";
import { connect } from "../src/index.js";
import { recordingProxy, SERVERS, take } from "./api-helpers.js";
import { onCleanup } from "./helpers.js";

describe.each(SERVERS)("client.messages() against %s", (_name, start) => {
  describe.each([4, 5] as const)("MQTT level %i", (protocolVersion) => {
    it("yields the messages of every subscription, in arrival order", async () => {
      const server = await start();
      const c = await connect(server.url, { protocolVersion, reconnect: false });
      onCleanup(() => c.destroy());
      const all = c.messages();
      const a = await c.subscribe("m/a", { qos: 1 });
      await c.subscribe("m/b/+", { qos: 0, iterate: false });
      await c.publish("m/a", "one", { qos: 1 });
      await c.publish("m/b/x", "two", { qos: 0 });
      await c.publish("m/a", "three", { qos: 1 });
      const got = await take(all, 3);
      expect(got.map((m) => `${m.topic} ${m.content}`)).toEqual([
        "m/a one",
        "m/b/x two",
        "m/a three",
      ]);
      // The subscription's own iteration still has its messages.
      expect((await take(a, 2)).map((m) => m.content)).toEqual(["one", "three"]);
    });

    it("ending it sends no UNSUBSCRIBE; the client's close ends it too", async () => {
      const server = await start();
      const proxy = await recordingProxy(server.port);
      const c = await connect(proxy.url, { protocolVersion, reconnect: false });
      onCleanup(() => c.destroy());
      await c.subscribe("m/kept", { qos: 0, iterate: false });
      const first = c.messages();
      await first.unsubscribe();
      expect(await first.next()).toEqual({ value: undefined, done: true });
      // Breaking out of a loop ends it the same way.
      const second = c.messages();
      await c.publish("m/kept", "x", { qos: 1 });
      for await (const msg of second) {
        expect(msg.content).toBe("x");
        break;
      }
      await c.ping();
      // No UNSUBSCRIBE went out, and the subscription still delivers.
      const sent: number[] = [];
      new Decoder((p) => sent.push(p.type), { protocolVersion }).push(proxy.toServer());
      expect(sent).toContain(PacketType.SUBSCRIBE);
      expect(sent).not.toContain(PacketType.UNSUBSCRIBE);
      const third = c.messages();
      await c.publish("m/kept", "still", { qos: 1 });
      expect((await take(third, 1))[0]?.content).toBe("still");
      await c.end();
      expect(await third.next()).toEqual({ value: undefined, done: true });
      expect(await c.messages().next()).toEqual({ value: undefined, done: true });
    });
  });
});
