// PyMyQtt manual, "Creating a PyMyQtt MQTT client", steps 1 to 3: subscribe to a topic.
//
//   MYQTT_HOST=localhost MYQTT_PORT=1883 node client-3-subscribe.js
import * as myqtt from "myqtt";

// Where the listener is (the manual's client text says 1602, its listener 1883).
const host = process.env.MYQTT_HOST ?? "localhost";
const port = process.env.MYQTT_PORT ?? "1883";

// 1. create a myqtt.Ctx object and init it
const ctx = new myqtt.Ctx();
if (!(await ctx.init())) {
  console.error("ERROR: Unable to init ctx, failed to continue");
  process.exit(1);
}

// 2. create a MQTT session connected to host:port
const conn = await myqtt.Conn.connect(ctx, host, port);
if (!conn.isOk()) {
  console.error(`ERROR: Failed to create connection with '${host}':${port}: ${conn.errorMsg}`);
  process.exit(1);
}

// 3. now subscribe (QoS 0, waiting up to 10 seconds for the SUBACK)
const [status, subQos] = await conn.sub("topic", myqtt.qos0, 10);
if (!status) {
  console.error("Failed to subscribe");
  process.exit(1);
}

console.log(`Subscription done, sub_qos is: ${subQos}`);

// Not in the manual: the program ends here, so the session and the context are closed.
await conn.close();
await ctx.exit();
