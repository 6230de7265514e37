// PyMyQtt manual, "Creating a MQTT server with Python", steps 1 to 3: a working MQTT server that
// allows subscribing and publishing to any topic, until SIGINT or SIGTERM.
//
//   MYQTT_HOST=0.0.0.0 MYQTT_PORT=1883 MYQTT_STORAGE_PATH=.myqtt-listener node listener-3-wait.js
import * as myqtt from "myqtt";

// Where to listen (port 0 picks a free one) and where to keep sessions and retained messages.
const host = process.env.MYQTT_HOST ?? "0.0.0.0";
const port = process.env.MYQTT_PORT ?? "1883";
const storagePath = process.env.MYQTT_STORAGE_PATH ?? ".myqtt-listener";

// 1. create a context and init it
const ctx = new myqtt.Ctx();
if (!(await ctx.init())) {
  console.error("Unable to init ctx, failed to start listener");
  process.exit(1);
}

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
