// PyMyQtt manual, "Creating a MQTT server with Python", steps 1 and 2: configure the storage and
// start a listener. Step 3 (listener-3-wait) is what keeps it running; this one stops again.
//
//   MYQTT_HOST=0.0.0.0 MYQTT_PORT=1883 MYQTT_STORAGE_PATH=.myqtt-listener node listener-2-start.js
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

// 2. configure storage
ctx.storageSetPath(storagePath, 4096);

// create a listener (never throws)
console.log(`Starting listener at ${host}:${port}`);
const listener = await myqtt.createListener(ctx, host, port);

// check listener started
if (!listener.isOk()) {
  console.error(
    `ERROR: failed to start listener. Maybe there is another instance running at ${port}? (${listener.errorMsg})`,
  );
  process.exit(1);
}
console.log(`Listener started at ${listener.host}:${listener.port}`);

// maybe start more listeners here by calling to myqtt.createListener

// Not in the manual: without step 3 the program ends here; exit() stops the listener.
await ctx.exit();
console.log("Listener stopped");
