// PyMyQtt manual, "Creating a MQTT server with Python", step 4: a listener whose on_publish
// handler decides what is published: "discard/this/topic" is dropped, and so is everything a
// connection publishes beyond a limit (MYQTT_PUBLISH_LIMIT, default 1000); the rest is routed.
//
//   MYQTT_HOST=0.0.0.0 MYQTT_PORT=1883 MYQTT_STORAGE_PATH=.myqtt-listener node listener-on-publish.js
import * as myqtt from "myqtt";

// Where to listen (port 0 picks a free one) and where to keep sessions and retained messages.
const host = process.env.MYQTT_HOST ?? "0.0.0.0";
const port = process.env.MYQTT_PORT ?? "1883";
const storagePath = process.env.MYQTT_STORAGE_PATH ?? ".myqtt-listener";
const publishLimit = Number(process.env.MYQTT_PUBLISH_LIMIT ?? "1000");

/** The manual's some_limit_reached_for(conn): here, a count of the connection's publishes. */
function someLimitReachedFor(conn: myqtt.ServerConnection): boolean {
  const published = (conn.getData<number>("published") ?? 0) + 1;
  conn.setData("published", published);
  return published > publishLimit;
}

// 4. the on_publish handler. (The manual spells the topic "disard/this/topic", a typo.)
function onPublish(_ctx: myqtt.Ctx, conn: myqtt.ServerConnection, msg: myqtt.Msg) {
  console.log(`Topic received: ${msg.topic}`);

  if (msg.topic === "discard/this/topic") return myqtt.PUBLISH_DISCARD;

  if (someLimitReachedFor(conn)) return myqtt.PUBLISH_DISCARD;

  // for the rest of cases
  return myqtt.PUBLISH_OK;
}

// 1. create a context and init it
const ctx = new myqtt.Ctx();
if (!(await ctx.init())) {
  console.error("Unable to init ctx, failed to start listener");
  process.exit(1);
}

// configure on publish
ctx.setOnPublish(onPublish);

// 2. configure storage and create a listener
ctx.storageSetPath(storagePath, 4096);
console.log(`Starting listener at ${host}:${port}`);
const listener = await myqtt.createListener(ctx, host, port);
if (!listener.isOk()) {
  console.error(
    `ERROR: failed to start listener. Maybe there is another instance running at ${port}? (${listener.errorMsg})`,
  );
  process.exit(1);
}
console.log(`Listener started at ${listener.host}:${listener.port}`);

// 3. wait for requests (SIGINT or SIGTERM unlocks the wait)
await myqtt.waitListeners(ctx, { unlockOnSignal: true });

// Not in the manual: once unlocked, stop the listener and close its connections.
await ctx.exit();
console.log("Listener stopped");
