import { isIP } from "node:net";

/**
 * Whether a request's Host header names this machine's loopback interface. A dashboard without a token serves only
 * on loopback, and only such names: DNS rebinding points a site's own name at 127.0.0.1, so its pages would read
 * the API (and write to it: the Origin is then "same-site") with the Host set to that site's name.
 */
export function isLoopbackHost(hostHeader: string | null | undefined): boolean {
  if (!hostHeader) return false;
  const h = hostHeader.trim().toLowerCase();
  let name: string;
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    if (end < 0 || !/^(:\d{1,5})?$/.test(h.slice(end + 1))) return false;
    name = h.slice(1, end);
  } else {
    const m = /^([^:]+)(:\d{1,5})?$/.exec(h);
    if (!m) return false;
    name = m[1] as string;
  }
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  if (isIP(name) === 4) return name.startsWith("127.");
  if (isIP(name) === 6) return name === "::1" || name === "0:0:0:0:0:0:0:1";
  return false;
}
