import { hasWildcard } from "./topics.js";

const DOLLAR = 0x24;

class TrieNode<T> {
  children: Map<string, TrieNode<T>> | null = null;
  /** The '+' child. */
  plus: TrieNode<T> | null = null;
  /** The '#' child: its values match this level and everything below it. */
  hash: TrieNode<T> | null = null;
  /** Values of the filter that ends at this node (the same Set as in `byFilter`). */
  values: Set<T> | null = null;

  isEmpty(): boolean {
    return (
      this.values === null && this.plus === null && this.hash === null && this.children === null
    );
  }
}

/**
 * Topic filters with values, matched against topic names. Filters without wildcards are found
 * with one hash look-up; wildcard filters sit in a trie walked level by level, so matching costs
 * grow with the depth of the topic, not with the number of filters. The `$` rule of 4.7.2 holds.
 * Filters are assumed valid (see validateTopicFilter); `$share/` prefixes are the caller's.
 */
export class SubscriptionTrie<T> {
  private readonly byFilter = new Map<string, Set<T>>();
  private readonly root = new TrieNode<T>();
  private pairs = 0;

  /** How many (filter, value) pairs are stored. */
  get size(): number {
    return this.pairs;
  }

  /** How many distinct filters are stored. */
  get filterCount(): number {
    return this.byFilter.size;
  }

  /** Adds `value` under `filter`; false when it was there already. */
  add(filter: string, value: T): boolean {
    let set = this.byFilter.get(filter);
    if (set === undefined) {
      set = new Set();
      this.byFilter.set(filter, set);
      if (hasWildcard(filter)) this.nodeFor(filter).values = set;
    } else if (set.has(value)) {
      return false;
    }
    set.add(value);
    this.pairs++;
    return true;
  }

  /** Removes `value` from `filter`; false when it was not there. */
  remove(filter: string, value: T): boolean {
    const set = this.byFilter.get(filter);
    if (set === undefined || !set.delete(value)) return false;
    this.pairs--;
    if (set.size === 0) {
      this.byFilter.delete(filter);
      if (hasWildcard(filter)) this.prune(filter);
    }
    return true;
  }

  /** Whether `value` is stored under `filter`. */
  has(filter: string, value: T): boolean {
    return this.byFilter.get(filter)?.has(value) ?? false;
  }

  /** The values stored under exactly `filter`. */
  get(filter: string): ReadonlySet<T> | undefined {
    return this.byFilter.get(filter);
  }

  /** Every filter with its values, in insertion order. */
  entries(): IterableIterator<[string, ReadonlySet<T>]> {
    return this.byFilter.entries();
  }

  /** Calls `fn` once for each (value, filter) pair whose filter matches `topic`. */
  forEachMatch(topic: string, fn: (value: T) => void): void {
    const exact = this.byFilter.get(topic);
    if (exact !== undefined) for (const v of exact) fn(v);
    if (this.root.isEmpty()) return;
    visit(this.root, topic, 0, topic.charCodeAt(0) === DOLLAR, fn);
  }

  /** The values whose filters match `topic` (a value appears once per matching filter). */
  match(topic: string): T[] {
    const out: T[] = [];
    this.forEachMatch(topic, (v) => out.push(v));
    return out;
  }

  /** Removes everything. */
  clear(): void {
    this.byFilter.clear();
    const root = this.root;
    root.children = null;
    root.plus = null;
    root.hash = null;
    root.values = null;
    this.pairs = 0;
  }

  private nodeFor(filter: string): TrieNode<T> {
    let node = this.root;
    for (const level of filter.split("/")) {
      if (level === "+") {
        node.plus ??= new TrieNode();
        node = node.plus;
      } else if (level === "#") {
        node.hash ??= new TrieNode();
        node = node.hash;
      } else {
        node.children ??= new Map();
        let child = node.children.get(level);
        if (child === undefined) {
          child = new TrieNode();
          node.children.set(level, child);
        }
        node = child;
      }
    }
    return node;
  }

  private prune(filter: string): void {
    const levels = filter.split("/");
    const path: TrieNode<T>[] = [this.root];
    let node: TrieNode<T> | null | undefined = this.root;
    for (const level of levels) {
      node = level === "+" ? node.plus : level === "#" ? node.hash : node.children?.get(level);
      if (!node) return;
      path.push(node);
    }
    node.values = null;
    for (let i = levels.length; i > 0; i--) {
      const child = path[i]!;
      if (!child.isEmpty()) return;
      const parent = path[i - 1]!;
      const level = levels[i - 1]!;
      if (level === "+") parent.plus = null;
      else if (level === "#") parent.hash = null;
      else {
        parent.children!.delete(level);
        if (parent.children!.size === 0) parent.children = null;
      }
    }
  }
}

function emit<T>(set: Set<T> | null, fn: (value: T) => void): void {
  if (set !== null) for (const v of set) fn(v);
}

/**
 * Walks the trie below `node` for the levels of `topic` from index `start` on (past its end:
 * every level was consumed). A level's string is cut out only when a node has named children
 * to look it up in, so a topic matched by `prefix/#` costs one cut, not one per level.
 */
function visit<T>(
  node: TrieNode<T>,
  topic: string,
  start: number,
  dollar: boolean,
  fn: (value: T) => void,
): void {
  // A wildcard in the first level never matches a '$' topic [MQTT-4.7.2-1].
  const wild = start > 0 || !dollar;
  if (node.hash !== null && wild) emit(node.hash.values, fn);
  if (start > topic.length) {
    emit(node.values, fn);
    return;
  }
  const children = node.children;
  const plus = wild ? node.plus : null;
  if (children === null && plus === null) return;
  let end = topic.indexOf("/", start);
  if (end === -1) end = topic.length;
  if (children !== null) {
    const child = children.get(topic.slice(start, end));
    if (child !== undefined) visit(child, topic, end + 1, dollar, fn);
  }
  if (plus !== null) visit(plus, topic, end + 1, dollar, fn);
}
