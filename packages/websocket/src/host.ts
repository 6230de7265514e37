/**
 * The name in an HTTP Host header, without the port: "broker.example:1918" → "broker.example",
 * "[::1]:1918" → "::1". Null when there is no usable name.
 */
export function serverNameFromHost(host: string | undefined): string | null {
  if (host === undefined) return null;
  const value = host.trim();
  if (value === "") return null;
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    return end > 1 ? value.slice(1, end) : null;
  }
  const colon = value.indexOf(":");
  // More than one colon without brackets: a bare IPv6 address (not valid in Host, but seen).
  if (colon >= 0 && value.indexOf(":", colon + 1) >= 0) return value;
  const name = colon >= 0 ? value.slice(0, colon) : value;
  return name === "" ? null : name;
}

/** `host` as the authority part of a URL: IPv6 literals go in brackets. */
export function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** The path of a request target ("/mqtt?x=1" → "/mqtt"); absolute-form targets too. */
export function pathOf(target: string | undefined): string {
  if (target === undefined || target === "") return "/";
  if (target.startsWith("/")) {
    const q = target.search(/[?#]/);
    return q < 0 ? target : target.slice(0, q);
  }
  try {
    return new URL(target).pathname;
  } catch {
    return target;
  }
}
