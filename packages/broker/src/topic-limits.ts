import type { ResolvedOptions } from "./options.js";

/** Why `topic` breaks the broker's topic length or depth limits, or null. */
export function topicProblem(topic: string, options: ResolvedOptions): string | null {
  // Cheap bounds first: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (
    topic.length * 3 > options.maxTopicLength &&
    Buffer.byteLength(topic, "utf8") > options.maxTopicLength
  ) {
    return `is longer than ${options.maxTopicLength} bytes`;
  }
  let levels = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 0x2f) levels++;
  if (levels > options.maxTopicLevels) return `has more than ${options.maxTopicLevels} levels`;
  return null;
}
