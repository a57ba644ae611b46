import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/**
 * SSRF guard: a job may not reach loopback, private, link-local, metadata or
 * other non-public addresses unless the operator allows it. The check is on the
 * addresses the host resolves to, not on the literal host.
 */

const denied = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16],
  ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15],
  ["198.51.100.0", 24], ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) denied.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128], ["::1", 128], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["2001:db8::", 32], ["64:ff9b::", 96], ["100::", 64],
] as const) denied.addSubnet(net, bits, "ipv6");

/** Why an address is not public, or null when it is. */
export function blockedAddressReason(address: string): string | null {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  if (family === 6) {
    // IPv4-mapped (::ffff:a.b.c.d) is judged as the IPv4 address.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blockedAddressReason(mapped[1] as string);
    return denied.check(address, "ipv6") ? `${address} is a loopback/private/link-local IPv6 address` : null;
  }
  if (address === "169.254.169.254") return `${address} is the cloud metadata address`;
  return denied.check(address, "ipv4") ? `${address} is a loopback/private/link-local/reserved address` : null;
}

export interface TargetPolicy {
  /** Guard off. */
  allowPrivate: boolean;
  /** Host names (exact, or ".suffix") and CIDRs allowed even when private. */
  allowed: readonly string[];
}

export type TargetCheck = { ok: true } | { ok: false; reason: string };
export type Lookup = (host: string) => Promise<string[]>;

const systemLookup: Lookup = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Compiles the allow-list; a bad CIDR is an error naming it. */
function allowList(entries: readonly string[]) {
  const nets = new BlockList();
  const hosts: string[] = [];
  for (const e of entries) {
    const cidr = /^([0-9a-f.:]+)\/(\d{1,3})$/i.exec(e);
    if (cidr) {
      const fam = isIP(cidr[1] as string);
      const bits = Number(cidr[2]);
      if (!fam || bits > (fam === 6 ? 128 : 32)) throw new Error(`allowed targets: ${JSON.stringify(e)} is not a valid CIDR`);
      nets.addSubnet(cidr[1] as string, bits, fam === 6 ? "ipv6" : "ipv4");
    } else if (isIP(e)) nets.addAddress(e, isIP(e) === 6 ? "ipv6" : "ipv4");
    else hosts.push(e.toLowerCase());
  }
  return {
    host: (h: string) => hosts.some((a) => (a.startsWith(".") ? h.endsWith(a) || h === a.slice(1) : h === a)),
    address: (ip: string) => nets.check(ip, isIP(ip) === 6 ? "ipv6" : "ipv4"),
  };
}

/** A host's verdict: the addresses to connect to, all checked, or why not. */
export type HostCheck = { ok: true; addresses: string[] } | { ok: false; reason: string; /** the host has no address (not a refusal) */ unresolved?: true };

/**
 * One guard per job: checks URLs (the scenario's and every request the page
 * makes) and hosts (the job's egress proxy), resolving each host once for the
 * job's lifetime. The proxy connects to exactly the addresses checked here, so
 * a DNS server that answers differently the second time (rebinding) gets no
 * second question.
 */
export function createTargetGuard(policy: TargetPolicy, lookup: Lookup = systemLookup) {
  const allow = allowList(policy.allowed);
  const cache = new Map<string, Promise<HostCheck>>();
  const checkHost = async (host: string): Promise<HostCheck> => {
    let addresses: string[];
    if (isIP(host)) addresses = [host];
    else {
      try {
        addresses = await lookup(host);
      } catch (e) {
        return { ok: false, reason: `cannot resolve ${host}: ${(e as Error).message}`, unresolved: true };
      }
      if (addresses.length === 0) return { ok: false, reason: `${host} resolves to no address`, unresolved: true };
    }
    if (policy.allowPrivate || allow.host(host)) return { ok: true, addresses };
    for (const a of addresses) {
      const why = blockedAddressReason(a);
      if (why && !allow.address(a)) {
        return { ok: false, reason: `${host === a ? "" : `${host} resolves to ${a}: `}${why}; set TROUPE_ALLOW_PRIVATE_TARGETS or list it in TROUPE_ALLOWED_TARGETS` };
      }
    }
    return { ok: true, addresses };
  };
  const host = (h: string): Promise<HostCheck> => {
    const key = h.replace(/^\[|\]$/g, "").toLowerCase();
    let p = cache.get(key);
    if (!p) {
      p = checkHost(key);
      cache.set(key, p);
    }
    return p;
  };
  return {
    /** Whether requests need checking at all (the guard is off when private targets are allowed). */
    active: !policy.allowPrivate,
    host,
    async check(url: string): Promise<TargetCheck> {
      if (policy.allowPrivate) return { ok: true };
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        return { ok: false, reason: `not a valid URL: ${url.slice(0, 200)}` };
      }
      // Schemes without a network request are harmless; others (file:, ftp:, ws: …) need the same check or a refusal.
      if (u.protocol === "data:" || u.protocol === "blob:" || u.protocol === "about:") return { ok: true };
      if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) return { ok: false, reason: `scheme ${u.protocol} is not allowed` };
      const v = await host(u.hostname);
      return v.ok ? { ok: true } : v;
    },
  };
}
export type TargetGuard = ReturnType<typeof createTargetGuard>;
