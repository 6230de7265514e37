// PyMyQtt manual, "Creating a PyMyQtt MQTT client", step 1: create a MyQtt context.
//
//   node client-1-create-ctx.js
import * as myqtt from "myqtt";

// create a myqtt.Ctx object
const ctx = new myqtt.Ctx();

// now, init the context and check status
if (!(await ctx.init())) {
  console.error("ERROR: Unable to init ctx, failed to continue");
  process.exit(1);
}

// ctx created
console.log("ctx created");

// Not in the manual: the program ends here, so the context is released.
await ctx.exit();
