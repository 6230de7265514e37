// PyMyQtt manual, "Enabling server side authentication": a listener whose on_connect handler
// refuses a CONNECT with a username and password other than aspl:test (CONNACK 4). As in the
// manual's code, a CONNECT without username and password is accepted.
//
//   MYQTT_HOST=0.0.0.0 MYQTT_PORT=1883 MYQTT_STORAGE_PATH=.myqtt-listener node listener-on-connect.js
import * as myqtt from "myqtt";

// Where to listen (port 0 picks a free one) and where to keep sessions and retained messages.
const host = process.env.MYQTT_HOST ?? "0.0.0.0";
const port = process.env.MYQTT_PORT ?? "1883";
const storagePath = process.env.MYQTT_STORAGE_PATH ?? ".myqtt-listener";

// create a context and init it
const ctx = new myqtt.Ctx();
if (!(await ctx.init())) {
  console.error("Unable to init ctx, failed to start listener");
  process.exit(1);
}

// configure on connect handler which is called every time a new connection is received. See
// also the documentation of ctx.setOnConnect.
ctx.setOnConnect(onConnect);

// then, somewhere in your code place the on_connect handler like this. It may be async: a real
// one would look the user up in a file or a database.
async function onConnect(
  _ctx: myqtt.Ctx,
  conn: myqtt.ServerConnection,
  _data: unknown,
): Promise<myqtt.ConnectReply> {
  // very simple example where aspl:test is the only authorized user
  console.log("Called on connect handler..");

  if (conn.username && conn.password) {
    // username and password were defined, handle them
    if (conn.username !== "aspl" || conn.password !== "test") {
      return myqtt.CONNACK_BAD_USERNAME_OR_PASSWORD;
    }
  }

  return myqtt.CONNACK_ACCEPTED;
}

// configure storage and create a listener
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

// wait for requests (SIGINT or SIGTERM unlocks the wait)
await myqtt.waitListeners(ctx, { unlockOnSignal: true });

// Not in the manual: once unlocked, stop the listener and close its connections.
await ctx.exit();
console.log("Listener stopped");
