import { InvalidTopicError, type MqttErrorOptions } from "./errors.js";

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;
const SHARE_PREFIX = "$share/";

/** Why `topic` is not a valid topic name, or null when it is. */
function topicNameProblem(topic: string): string | null {
  if (topic.length === 0) return "must be at least one character long [MQTT-4.7.3-1]";
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return "wildcards are not allowed in a topic name [MQTT-4.7.0-1]";
    if (c === 0) return "contains U+0000 [MQTT-4.7.3-2]";
  }
  return null;
}

/** Why `filter` (no `$share/` prefix) is not a valid topic filter, or null when it is. */
function plainFilterProblem(filter: string): string | null {
  const n = filter.length;
  if (n === 0) return "must be at least one character long [MQTT-4.7.3-1]";
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === HASH) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== SLASH) || i !== n - 1) {
        return "'#' must be the last character and occupy a whole level [MQTT-4.7.1-1]";
      }
    } else if (c === PLUS) {
      if (
        (i > 0 && filter.charCodeAt(i - 1) !== SLASH) ||
        (i < n - 1 && filter.charCodeAt(i + 1) !== SLASH)
      ) {
        return "'+' must occupy a whole level [MQTT-4.7.1-2]";
      }
    } else if (c === 0) {
      return "contains U+0000 [MQTT-4.7.3-2]";
    }
  }
  return null;
}

/** A `$share/<group>/<filter>` subscription taken apart (v5 4.8.2). */
export interface SharedSubscription {
  /** The share name. */
  group: string;
  /** The filter the members share. */
  topicFilter: string;
}

function sharedProblem(filter: string): string | null {
  const slash = filter.indexOf("/", SHARE_PREFIX.length);
  const group = filter.slice(SHARE_PREFIX.length, slash === -1 ? undefined : slash);
  if (group.length === 0) return "the share name must be at least one character [MQTT-4.8.2-1]";
  if (/[+#]/.test(group)) return "the share name must not contain '+' or '#' [MQTT-4.8.2-2]";
  if (slash === -1)
    return "a shared subscription needs a topic filter after the share name [MQTT-4.8.2-2]";
  return plainFilterProblem(filter.slice(slash + 1));
}

function filterProblem(filter: string): string | null {
  return filter.startsWith(SHARE_PREFIX) ? sharedProblem(filter) : plainFilterProblem(filter);
}

/** Whether `topic` may be the topic of a PUBLISH: non-empty, no wildcards, no U+0000. */
export function isValidTopicName(topic: string): boolean {
  return topicNameProblem(topic) === null;
}

/** Throws InvalidTopicError (INVALID_TOPIC_NAME, reason 0x90) unless `topic` is valid. */
export function validateTopicName(topic: string, options?: MqttErrorOptions): void {
  const problem = topicNameProblem(topic);
  if (problem !== null) throw new InvalidTopicError("INVALID_TOPIC_NAME", topic, problem, options);
}

/** Whether `filter` is a valid topic filter, `$share/<group>/<filter>` included. */
export function isValidTopicFilter(filter: string): boolean {
  return filterProblem(filter) === null;
}

/** Throws InvalidTopicError (INVALID_TOPIC_FILTER, reason 0x8F) unless `filter` is valid. */
export function validateTopicFilter(filter: string, options?: MqttErrorOptions): void {
  const problem = filterProblem(filter);
  if (problem !== null)
    throw new InvalidTopicError("INVALID_TOPIC_FILTER", filter, problem, options);
}

/** Whether `filter` contains a '+' or '#' wildcard. */
export function hasWildcard(filter: string): boolean {
  return filter.includes("+") || filter.includes("#");
}

/** Whether `filter` is a shared subscription (`$share/...`). */
export function isSharedSubscription(filter: string): boolean {
  return filter.startsWith(SHARE_PREFIX);
}

/**
 * Takes a `$share/<group>/<filter>` subscription apart. Returns null when `filter` is not a
 * shared subscription; throws InvalidTopicError when it is one, but malformed.
 */
export function parseSharedSubscription(filter: string): SharedSubscription | null {
  if (!filter.startsWith(SHARE_PREFIX)) return null;
  const problem = sharedProblem(filter);
  if (problem !== null) throw new InvalidTopicError("INVALID_TOPIC_FILTER", filter, problem);
  const slash = filter.indexOf("/", SHARE_PREFIX.length);
  return { group: filter.slice(SHARE_PREFIX.length, slash), topicFilter: filter.slice(slash + 1) };
}

/**
 * Whether the topic name `topic` matches the topic filter `filter` (4.7). '#' also matches the
 * parent level ("a/#" matches "a"); '+' matches one level, an empty one included. A filter that
 * starts with a wildcard never matches a topic that starts with '$' [MQTT-4.7.2-1]. Both are
 * assumed valid; a `$share/` filter must be taken apart first.
 */
export function match(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === DOLLAR) {
    const f0 = filter.charCodeAt(0);
    if (f0 === PLUS || f0 === HASH) return false;
  }
  const fl = filter.length;
  const tl = topic.length;
  let fi = 0;
  let ti = 0;
  while (fi < fl) {
    const fc = filter.charCodeAt(fi);
    if (fc === HASH) return true;
    if (fc === PLUS) {
      while (ti < tl && topic.charCodeAt(ti) !== SLASH) ti++;
      fi++;
    } else {
      while (fi < fl) {
        const c = filter.charCodeAt(fi);
        if (c === SLASH) break;
        if (ti >= tl || topic.charCodeAt(ti) !== c) return false;
        fi++;
        ti++;
      }
      if (ti < tl && topic.charCodeAt(ti) !== SLASH) return false;
    }
    // Both now stand at the end of a level.
    if (fi >= fl) return ti >= tl;
    fi++; // past the filter's '/'
    if (ti >= tl) {
      // The topic has no more levels: only a final "/#" still matches (the parent level).
      return fi === fl - 1 && filter.charCodeAt(fi) === HASH;
    }
    ti++; // past the topic's '/'
  }
  return ti === tl;
}
