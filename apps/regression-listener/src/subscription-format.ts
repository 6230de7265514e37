// The admin replies that list subscriptions. MyQtt prints its hash tables in hash order; sorting
// within each group (exact filters, then wildcard ones) reproduces every string the regression
// tests expect (reference §5.1), e.g. "#" (0x23) before "+" (0x2B).

/** A subscription as the admin replies show it. */
export interface SubscriptionView {
  filter: string;
  qos: number;
}

/** Whether a filter has a wildcard level ("+" and "#" cannot appear inside a level). */
export function isWildcard(filter: string): boolean {
  return filter.includes("+") || filter.includes("#");
}

function byFilter(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Exact filters first, then wildcard ones, each group in lexicographic order. */
export function mqttOrder(filters: Iterable<string>): string[] {
  const exact: string[] = [];
  const wild: string[] = [];
  for (const f of filters) (isWildcard(f) ? wild : exact).push(f);
  return [...exact.sort(byFilter), ...wild.sort(byFilter)];
}

/** `get-subscriptions`: "filter.qos" comma-separated, "" when none. */
export function formatConnSubscriptions(subs: readonly SubscriptionView[]): string {
  const qos = new Map(subs.map((s) => [s.filter, s.qos]));
  return mqttOrder(qos.keys())
    .map((f) => `${f}.${qos.get(f)}`)
    .join(",");
}

/** `get-subscriptions-ctx`: "filter.num-conns=N" comma-separated, "" when none. */
export function formatCtxSubscriptions(counts: ReadonlyMap<string, number>): string {
  return mqttOrder(counts.keys())
    .map((f) => `${f}.num-conns=${counts.get(f)}`)
    .join(",");
}

/** `myqtt/admin/get-conn-subs`: one "<qos>: <filter>\n" line per exact subscription. */
export function formatExactSubscriptions(subs: readonly SubscriptionView[]): string {
  const qos = new Map(subs.filter((s) => !isWildcard(s.filter)).map((s) => [s.filter, s.qos]));
  return mqttOrder(qos.keys())
    .map((f) => `${qos.get(f)}: ${f}\n`)
    .join("");
}
