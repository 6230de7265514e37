// The on_connect hook (reference §5.1): credentials are checked only when both a user name and
// a password come, and client id test_23 gets its CONNACK 2 s late (DEFERRED).
import * as myqtt from "myqtt";
import type { Variant } from "./admin-topics.js";

export const USERNAME = "aspl";
export const PASSWORD = "test";
/** The client id whose CONNACK is deferred (test_23). */
export const DEFERRED_CLIENT_ID = "test_23";
export const DEFER_MS = 2000;

/** Whether the connection still waits for its deferred CONNACK (it may have gone away). */
function stillDeferred(conn: myqtt.ServerConnection): boolean {
  return conn instanceof myqtt.ServerConn && conn.state === myqtt.ConnState.DEFERRED;
}

/** The on_connect hook of the C or the Python regression listener. */
export function makeOnConnect(variant: Variant): myqtt.OnConnectHandler {
  return (ctx, conn) => {
    const { username, password } = conn;
    // A user name alone, or no credentials at all, is accepted.
    if (username !== null && password !== null && (username !== USERNAME || password !== PASSWORD))
      return myqtt.CONNACK_BAD_USERNAME_OR_PASSWORD;
    if (variant === "c" && conn.clientId === DEFERRED_CLIENT_ID) {
      ctx.newEvent(DEFER_MS * 1000, () => {
        if (stillDeferred(conn)) conn.sendConnectReply(myqtt.CONNACK_ACCEPTED);
        return true;
      });
      return myqtt.CONNACK_DEFERRED;
    }
    return myqtt.CONNACK_ACCEPTED;
  };
}
