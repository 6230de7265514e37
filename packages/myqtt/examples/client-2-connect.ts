// PyMyQtt manual, "Creating a PyMyQtt MQTT client", steps 1 and 2: connect to a listener.
//
//   MYQTT_HOST=localhost MYQTT_PORT=1883 node client-2-connect.js
import * as myqtt from "myqtt";

// Where the listener is. The manual's client text says port 1602 while its listener listens on
// 1883; 1883 (as in architecture.md) lets this example talk to the listener examples as is.
const host = process.env.MYQTT_HOST ?? "localhost";
const port = process.env.MYQTT_PORT ?? "1883";

// 1. create a myqtt.Ctx object and init it
const ctx = new myqtt.Ctx();
if (!(await ctx.init())) {
  console.error("ERROR: Unable to init ctx, failed to continue");
  process.exit(1);
}

// 2. create a MQTT session connected to host:port (never throws)
const conn = await myqtt.Conn.connect(ctx, host, port);

// check connection status
if (!conn.isOk()) {
  console.error(`ERROR: Failed to create connection with '${host}':${port}: ${conn.errorMsg}`);
  process.exit(1);
}
console.log(`Connected to '${host}':${port} as ${conn.clientId}`);

// Not in the manual: the program ends here, so the session and the context are closed.
await conn.close();
await ctx.exit();
