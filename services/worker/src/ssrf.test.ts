import { describe, expect, it } from "vitest";
import { blockedAddressReason, createTargetGuard } from "./ssrf.ts";

const fakeDns = (table: Record<string, string[]>) => async (h: string) => {
  const r = table[h];
  if (!r) throw new Error(`ENOTFOUND ${h}`);
  return r;
};

describe("blockedAddressReason", () => {
  it.each(["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.100.100.200", "0.0.0.0", "::1", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "224.0.0.1"])("refuses %s", (ip) => {
    expect(blockedAddressReason(ip)).toMatch(/address/);
  });
  it.each(["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8"])("allows public %s", (ip) => {
    expect(blockedAddressReason(ip)).toBeNull();
  });
  it("names the metadata address", () => {
    expect(blockedAddressReason("169.254.169.254")).toMatch(/metadata/);
  });
});

describe("createTargetGuard", () => {
  const dns = fakeDns({ "example.com": ["93.184.216.34"], "sneaky.test": ["93.184.216.34", "127.0.0.1"], "intranet.corp": ["10.0.0.5"] });
  const guard = (allowed: string[] = [], allowPrivate = false) => createTargetGuard({ allowPrivate, allowed }, dns);

  it("checks the resolved addresses, not the literal host", async () => {
    expect(await guard().check("https://example.com/x")).toEqual({ ok: true });
    const r = await guard().check("http://sneaky.test/");
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/sneaky\.test resolves to 127\.0\.0\.1/);
  });
  it("refuses literal private, metadata and IPv6 loopback hosts", async () => {
    for (const u of ["http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data", "http://[::1]/"]) {
      expect((await guard().check(u)).ok).toBe(false);
    }
  });
  it("refuses non-web schemes and unresolvable hosts, allows data: URLs", async () => {
    expect(await guard().check("file:///etc/passwd")).toMatchObject({ ok: false, reason: expect.stringMatching(/scheme file:/) });
    expect(await guard().check("http://nowhere.invalid/")).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot resolve/) });
    expect(await guard().check("data:text/html,hi")).toEqual({ ok: true });
  });
  it("lets the allow-list through by host, suffix or CIDR", async () => {
    expect((await guard(["intranet.corp"]).check("http://intranet.corp/")).ok).toBe(true);
    expect((await guard([".corp"]).check("http://intranet.corp/")).ok).toBe(true);
    expect((await guard(["10.0.0.0/8"]).check("http://intranet.corp/")).ok).toBe(true);
    expect((await guard(["10.0.0.0/8"]).check("http://127.0.0.1/")).ok).toBe(false);
    expect((await guard(["127.0.0.1"]).check("http://127.0.0.1:9/")).ok).toBe(true);
  });
  it("is off when private targets are allowed", async () => {
    const g = guard([], true);
    expect(g.active).toBe(false);
    expect((await g.check("http://127.0.0.1/")).ok).toBe(true);
  });
  it("rejects a malformed CIDR in the allow-list", () => {
    expect(() => guard(["10.0.0.300/8"])).toThrow(/not a valid CIDR/);
  });
});
