// The myqttd command. V8's young generation is sized first (young-generation.ts): the daemon's
// own modules would grow it as they load, so they are imported only after.
import { holdYoungGeneration } from "./young-generation.js";

const youngGeneration = holdYoungGeneration();
const { runDaemon } = await import("./daemon.js");
await runDaemon(youngGeneration);
