// The on_publish hook: admin topics the regression client asks the broker about (reference
// §5.1, §5.3). Each is answered with a QoS 0 publish on the same topic to the asking
// connection only, and DISCARDed (not routed, not acknowledged, as MyQtt does).
import * as myqtt from "myqtt";
import { onlineFilterCounts, queuedMessages, subscriptionsOf } from "./broker-view.js";
import {
  formatConnSubscriptions,
  formatCtxSubscriptions,
  formatExactSubscriptions,
} from "./subscription-format.js";

/** Which regression listener to behave as. */
export type Variant = "c" | "python";

/** How an admin topic is answered: computed when the reply is sent, after `delayMs`. */
interface AdminTopic {
  delayMs: number;
  reply(ctx: myqtt.Ctx, conn: myqtt.ServerConnection, msg: myqtt.Msg): string;
}

/** The C listener slept 1 s in its handler before these answers; the tests time them. */
const SLOW_MS = 1000;

const C_TOPICS: Record<string, AdminTopic> = {
  "get-subscriptions": {
    delayMs: 0,
    reply: (ctx, conn) => formatConnSubscriptions(subscriptionsOf(ctx, conn.clientId)),
  },
  "get-subscriptions-ctx": {
    delayMs: 0,
    reply: (ctx) => formatCtxSubscriptions(onlineFilterCounts(ctx)),
  },
  "myqtt/admin/get-server-name": { delayMs: 0, reply: (_ctx, conn) => conn.serverName ?? "" },
  "myqtt/admin/get-tls-status": {
    delayMs: 0,
    reply: (_ctx, conn) => (conn.tls ? "tls-on-bro!" : "tls is not enabled brother"),
  },
  "myqtt/admin/get-client-identifier": { delayMs: SLOW_MS, reply: (_ctx, conn) => conn.clientId },
  "myqtt/admin/get-conn-user": { delayMs: SLOW_MS, reply: (_ctx, conn) => conn.username ?? "" },
  "myqtt/admin/get-conn-subs": {
    delayMs: SLOW_MS,
    reply: (ctx, conn) => formatExactSubscriptions(subscriptionsOf(ctx, conn.clientId)),
  },
  "myqtt/admin/get-queued-msgs": {
    delayMs: SLOW_MS,
    // The client id asked about is the payload, not the asker.
    reply: (ctx, _conn, msg) => String(queuedMessages(ctx, msg.content)),
  },
};

const PYTHON_TOPICS: Record<string, AdminTopic> = {
  "myqtt/admin/get-conn-user": C_TOPICS["myqtt/admin/get-conn-user"]!,
  "myqtt/admin/get-client-identifier": C_TOPICS["myqtt/admin/get-client-identifier"]!,
  // The Python listener falls back to the peer's address.
  "myqtt/admin/get-server-name": {
    delayMs: 0,
    reply: (_ctx, conn) => conn.serverName || conn.host,
  },
};

/** The topic that makes the C listener drop the publisher's connection (test_21). */
export const CLOSE_CONN_TOPIC = "close/conn";

/** The on_publish hook of the C or the Python regression listener. */
export function makeOnPublish(variant: Variant): myqtt.OnPublishHandler {
  const topics = new Map(Object.entries(variant === "c" ? C_TOPICS : PYTHON_TOPICS));
  // Synchronous on purpose: an async hook would hold the connection's later packets back.
  return (ctx, conn, msg) => {
    if (variant === "c" && msg.topic === CLOSE_CONN_TOPIC) {
      ctx.log(myqtt.LogLevel.DEBUG, "regression-listener", `close/conn from ${conn.clientId}`);
      conn.shutdown();
      return myqtt.PUBLISH_DISCARD;
    }
    const admin = topics.get(msg.topic);
    if (admin === undefined) return myqtt.PUBLISH_OK;
    ctx.log(myqtt.LogLevel.DEBUG, "regression-listener", `${msg.topic} from ${conn.clientId}`);
    const answer = (): void => conn.publish(msg.topic, admin.reply(ctx, conn, msg), 0, false);
    if (admin.delayMs === 0) answer();
    else {
      // A one-shot event of the context: a timer, so other clients are served meanwhile.
      ctx.newEvent(admin.delayMs * 1000, () => {
        answer();
        return true;
      });
    }
    return myqtt.PUBLISH_DISCARD;
  };
}
