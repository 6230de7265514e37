import { describe, expect, it } from "vitest";
import { client, mosquitto, startBroker } from "./helpers.js";

describe("client smoke", () => {
  for (const [name, start] of [
    ["our broker", () => startBroker()],
    ["Mosquitto", () => mosquitto()],
  ] as const) {
    it(`publishes and receives QoS 0, 1 and 2 through ${name}, 3.1.1 and 5.0`, async () => {
      const server = await start();
      for (const protocolVersion of [4, 5] as const) {
        const c = await client(server, { protocolVersion });
        const sub = await c.subscribe(`smoke/${protocolVersion}/#`, { qos: 2 });
        expect(sub.granted).toEqual([2]);
        for (const qos of [0, 1, 2] as const)
          await c.publish(`smoke/${protocolVersion}/q`, `q${qos}`, { qos });
        const got: [string, number][] = [];
        for await (const msg of sub) {
          got.push([msg.content, msg.qos]);
          if (got.length === 3) break;
        }
        expect(got).toEqual([
          ["q0", 0],
          ["q1", 1],
          ["q2", 2],
        ]);
        await c.end();
      }
    });
  }
});
