// PyMyQtt manual, "Creating a PyMyQtt MQTT client", steps 1 to 5: receive messages with an
// on_msg handler. It subscribes to "topic", publishes to it and prints the copy it receives.
//
//   MYQTT_HOST=localhost MYQTT_PORT=1883 node client-5-receive.js
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

// 3. subscribe
const [status, subQos] = await conn.sub("topic", myqtt.qos0, 10);
if (!status) {
  console.error("Failed to subscribe");
  process.exit(1);
}
console.log(`Subscription done, sub_qos is: ${subQos}`);

// 5. to receive replies and other requests, configure a message received handler. It is set
// before step 4's publish so that the copy the broker sends back cannot arrive before it.
let received: () => void = () => {};
const firstMessage = new Promise<void>((resolve) => {
  received = resolve;
});
conn.setOnMsg((_ctx, _conn, msg, _data) => {
  // messages received asynchronously; msg.payload holds the bytes, msg.content the text
  console.log(`Msg content: ${msg.content}`);
  received();
});

// 4. publish to "topic": QoS 0, retained (true), waiting up to 10 seconds
if (!(await conn.pub("topic", "this is a test message", myqtt.qos0, true, 10))) {
  console.error("Failed to publish");
  process.exit(1);
}
console.log("Publish op done");

// Not in the manual: wait (at most 10 seconds) for the message, then end the program.
let timer: NodeJS.Timeout | undefined;
const timedOut = new Promise<boolean>((resolve) => {
  timer = setTimeout(() => resolve(true), 10_000);
});
if (await Promise.race([firstMessage.then(() => false), timedOut])) {
  console.error("ERROR: no message received within 10 seconds");
  process.exit(1);
}
clearTimeout(timer);
await conn.close();
await ctx.exit();
