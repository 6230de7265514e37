// PyMyQtt manual, "Creating a MQTT server with Python", step 1: create the listener's context,
// as a client does.
//
//   node listener-1-create-ctx.js
import * as myqtt from "myqtt";

// create a context
const ctx = new myqtt.Ctx();

// init context
if (!(await ctx.init())) {
  console.error("Unable to init ctx, failed to start listener");
  process.exit(1);
}
console.log("ctx created");

// Not in the manual: the program ends here, so the context is released.
await ctx.exit();
