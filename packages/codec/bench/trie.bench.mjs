// SubscriptionTrie.forEachMatch: the broker's routing look-up, once per published message.
//   pnpm --filter @myqtt/codec bench      (after the codec bench; measures dist/)
// No peer here: mqtt-packet has no matcher. A topic under a `prefix/#` filter is the common
// case (one cut of the topic, no split); a deep topic walks a wide level of 1,000 filters.
import { bench, do_not_optimize, run } from "mitata";
import { SubscriptionTrie } from "../dist/index.js";

const trie = new SubscriptionTrie();
trie.add("bench/#", 1);
for (let i = 0; i < 1000; i++) trie.add(`devices/${i}/+`, i);
trie.add("devices/+/telemetry", -1);
const shallow = Array.from({ length: 10 }, (_, i) => `bench/${i}`);
const deep = Array.from({ length: 10 }, (_, i) => `devices/${i * 7}/telemetry`);
let sum = 0;
const add = (v) => {
  sum += v;
};

bench("match 10 topics under bench/#", () => {
  for (const topic of shallow) trie.forEachMatch(topic, add);
  do_not_optimize(sum);
});
bench("match 10 topics devices/N/telemetry among 1,002 filters", () => {
  for (const topic of deep) trie.forEachMatch(topic, add);
  do_not_optimize(sum);
});
await run({ colors: process.stdout.isTTY });
