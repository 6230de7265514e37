import { describe, expect, it } from "vitest";
import { MQTT_SUBPROTOCOLS } from "./constants.js";
import { chooseSubprotocol } from "./subprotocol.js";

describe("chooseSubprotocol", () => {
  it.each([
    [["mqtt"], "mqtt"],
    [["mqttv3.1"], "mqttv3.1"],
    [["mqttv3.1", "mqtt"], "mqttv3.1"],
    [["x", "mqtt"], "mqtt"],
    [["MQTT"], false],
    [[], false],
  ])("offered %j → %j", (offered, chosen) => {
    expect(chooseSubprotocol(new Set(offered), MQTT_SUBPROTOCOLS)).toBe(chosen);
  });

  it("only what the listener accepts", () => {
    expect(chooseSubprotocol(new Set(["mqttv3.1"]), ["mqtt"])).toBe(false);
  });
});
