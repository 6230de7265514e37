// test_20 (MQTT over ws://) and test_20b (over wss://).
import * as myqtt from "myqtt";
import { check, equal } from "../../check.js";
import { test } from "../../registry.js";
import { ask, connOpts, mustConnect, publish, withCtx, wsOptions } from "./helpers.js";

test("c", "test_20", async (env) => {
  await withCtx(async (ctx) => {
    const conn = await mustConnect(`ws://${env.host}:${env.wsPort}`, () =>
      myqtt.websocket.createConn(
        ctx,
        env.host,
        env.wsPort,
        null,
        false,
        30,
        connOpts(),
        wsOptions(),
      ),
    );
    await publish(conn, "this/is/a/test/19", "Test message 1", myqtt.qos2, true);
    await publish(conn, "this/is/a/test/19", "Test message 2", myqtt.qos2, true);
    check(conn.isOk(), "the connection broke after publishing");
    await conn.close();
  });
});

test("c", "test_20b", async (env) => {
  await withCtx(async (ctx) => {
    const conn = await mustConnect(`wss://${env.host}:${env.wssPort}`, () =>
      myqtt.websocket.createConn(
        ctx,
        env.host,
        env.wssPort,
        null,
        false,
        30,
        connOpts(),
        wsOptions({ verifyPeer: false }),
      ),
    );
    await publish(conn, "this/is/a/test/19", "Test message 1", myqtt.qos2, true);
    await publish(conn, "this/is/a/test/19", "Test message 2", myqtt.qos2, true);
    check(conn.isOk(), "the connection broke after publishing");
    equal(
      (await ask(conn, "myqtt/admin/get-tls-status")).content,
      "tls-on-bro!",
      "the listener's TLS status of a wss connection",
    );
    await conn.close();
  });
});
