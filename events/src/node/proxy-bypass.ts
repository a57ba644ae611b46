import { BlockList, isIP } from "node:net";

/**
 * A job proxy's bypass list (`spec.proxy.bypass`), in Chromium's syntax, as
 * the master validates it at submission and the worker's egress proxy
 * applies it: the hosts it matches are reached
 * directly (at the addresses the guard checked), the rest through the job's
 * proxy. Chromium's rules (net/proxy_resolution/proxy_bypass_rules.h):
 *
 * - `[scheme://]host-pattern[:port]`: `*` is a wildcard, a leading `.` means
 *   `*.`; `example.com` matches that host only;
 * - `[scheme://][ipv6][:port]` and IP literals;
 * - `ip/prefix`: hosts that are IP literals in that range (names are not resolved);
 * - `<local>`: host names without a dot that are not IP literals;
 * - `<-loopback>`: loopback (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`)
 *   is no longer bypassed implicitly.
 *
 * A CONNECT tunnel does not say its scheme: a rule with a scheme matches it
 * when that scheme is `https`, `wss` or `ws` (what Chromium tunnels).
 */

export interface BypassTarget {
  /** `http` for a plain request; undefined for a CONNECT tunnel. */
  scheme?: string;
  host: string;
  port: number;
}

type Rule = (t: BypassTarget) => boolean;

const TUNNELLED = ["https", "wss", "ws"];
const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

function isLoopback(host: string): boolean {
  const fam = isIP(host);
  if (fam) return loopback.check(host, fam === 6 ? "ipv6" : "ipv4");
  return host === "localhost" || host.endsWith(".localhost");
}

const schemeMatches = (scheme: string | undefined, t: BypassTarget) =>
  scheme === undefined || (t.scheme === undefined ? TUNNELLED.includes(scheme) : t.scheme === scheme);

/** One rule, or an error naming it. */
function parseRule(raw: string): Rule | "subtract-loopback" {
  const text = raw.trim().toLowerCase();
  if (text === "<-loopback>") return "subtract-loopback";
  if (text === "<local>") return (t) => !t.host.includes(".") && !isIP(t.host) && !t.host.includes(":");
  let rest = text;
  let scheme: string | undefined;
  const s = /^([a-z][a-z0-9+.-]*):\/\//.exec(rest);
  if (s) {
    scheme = s[1];
    rest = rest.slice(s[0].length);
  }
  const cidr = /^([0-9a-f.:]+|\[[0-9a-f.:]+\])\/(\d{1,3})$/.exec(rest);
  if (cidr) {
    const ip = (cidr[1] as string).replace(/^\[|\]$/g, "");
    const fam = isIP(ip);
    const bits = Number(cidr[2]);
    if (!fam || bits > (fam === 6 ? 128 : 32)) throw new Error(`proxy bypass rule ${JSON.stringify(raw)} is not a valid IP range`);
    const net = new BlockList();
    net.addSubnet(ip, bits, fam === 6 ? "ipv6" : "ipv4");
    return (t) => {
      const f = isIP(t.host);
      return schemeMatches(scheme, t) && f !== 0 && net.check(t.host, f === 6 ? "ipv6" : "ipv4");
    };
  }
  let port: number | undefined;
  let host = rest;
  const v6 = /^\[([0-9a-f.:]+)\](?::(\d{1,5}))?$/.exec(rest);
  if (v6) {
    host = v6[1] as string;
    if (v6[2]) port = Number(v6[2]);
  } else {
    // One rule per entry: a host pattern is letters, digits, `-`, `_`, `.` and `*` (no commas, no spaces).
    const hp = /^([a-z0-9*._-]+)(?::(\d{1,5}))?$/.exec(rest);
    if (!hp) throw new Error(`proxy bypass rule ${JSON.stringify(raw)} is not scheme://host:port, ip/prefix, <local> or <-loopback>`);
    host = hp[1] as string;
    if (hp[2]) port = Number(hp[2]);
  }
  if (host.startsWith(".")) host = `*${host}`;
  const pattern = host.replace(/\*+/g, "*");
  return (t) => schemeMatches(scheme, t) && (port === undefined || t.port === port) && globMatch(pattern, t.host);
}

/**
 * Whether `text` matches `pattern`, where `*` stands for any run of
 * characters. Never a regular expression: a pattern like `*a*a*a*…b` against a
 * long host would make one backtrack for seconds, and the egress proxy matches
 * on every request of a job, in the worker's one thread. This takes at most
 * pattern × text steps.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

/** Compiles a bypass list; throws on a rule it cannot read. */
export function bypassMatcher(rules: readonly string[]): (t: BypassTarget) => boolean {
  let implicitLoopback = true;
  const compiled: Rule[] = [];
  for (const r of rules) {
    const rule = parseRule(r);
    if (rule === "subtract-loopback") implicitLoopback = false;
    else compiled.push(rule);
  }
  return (t) => {
    const target = { ...t, host: t.host.replace(/^\[|\]$/g, "").toLowerCase() };
    return (implicitLoopback && isLoopback(target.host)) || compiled.some((r) => r(target));
  };
}

/** The first rule of a bypass list that cannot be read: its index and why, for a submission's refusal. */
export function bypassListError(rules: readonly string[] | undefined): { index: number; message: string } | undefined {
  for (const [index, rule] of (rules ?? []).entries()) {
    try {
      parseRule(rule);
    } catch (e) {
      return { index, message: (e as Error).message };
    }
  }
  return undefined;
}
