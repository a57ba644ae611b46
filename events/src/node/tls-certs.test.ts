import { createPrivateKey, X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { checkTlsHost, defaultTlsHosts, dialNameOf, ensureSelfSignedTls } from "./tls-certs.ts";
import { plainAfterTlsWarning, resolveServerTls } from "./tls-options.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "troupe-tls-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const cert = (f: string) => new X509Certificate(readFileSync(f));

describe("self-signed TLS (real openssl)", () => {
  it("makes a CA and a server certificate it signed, for exactly the hosts asked, keys private", () => {
    const d = tmp();
    const t = ensureSelfSignedTls(d, ["127.0.0.1", "::1", "nats.example.org", "localhost"]);
    expect(t.issued).toBe(true);
    const ca = cert(t.caFile), server = cert(t.certFile);
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect(server.checkHost("nats.example.org")).toBe("nats.example.org");
    expect(server.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(server.checkIP("::1")).toBeDefined();
    expect(server.checkHost("other.example.org")).toBeUndefined();
    expect(server.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"])); // serverAuth, clientAuth (routes)
    for (const f of [join(d, "tls", "ca.key"), t.keyFile]) expect(statSync(f).mode & 0o777).toBe(0o600);
  });

  it("keeps the certificate while the hosts are the same, makes a new one (same CA) when they change", () => {
    const d = tmp();
    const first = ensureSelfSignedTls(d, ["127.0.0.1", "a.example"]);
    const pem = readFileSync(first.certFile, "utf8");
    const again = ensureSelfSignedTls(d, ["A.example", "127.0.0.1"]);
    expect(again.issued).toBe(false);
    expect(readFileSync(again.certFile, "utf8")).toBe(pem);
    const caPem = readFileSync(first.caFile, "utf8");
    const changed = ensureSelfSignedTls(d, ["127.0.0.1", "a.example", "b.example"]);
    expect(changed.issued).toBe(true);
    expect(readFileSync(changed.caFile, "utf8")).toBe(caPem);
    expect(cert(changed.certFile).checkHost("b.example")).toBe("b.example");
  });

  it("makes the pair again when the key does not match the certificate (a start that died half-way)", () => {
    const d = tmp();
    const t = ensureSelfSignedTls(d, ["127.0.0.1"]);
    const other = ensureSelfSignedTls(tmp(), ["127.0.0.1"]);
    writeFileSync(t.keyFile, readFileSync(other.keyFile));
    expect(ensureSelfSignedTls(d, ["127.0.0.1"]).issued).toBe(true);
    expect(cert(t.certFile).checkPrivateKey(createPrivateKey(readFileSync(t.keyFile)))).toBe(true);
  });

  it("a shared CA copied without its key is refused with what to do", () => {
    const d = tmp();
    const t = ensureSelfSignedTls(d, ["127.0.0.1"]);
    unlinkSync(join(d, "tls", "ca.key"));
    expect(() => ensureSelfSignedTls(d, ["127.0.0.1"])).toThrow(/has ca\.crt but no ca\.key; copy both files/);
    expect(t.caFile).toMatch(/ca\.crt$/);
  });

  it("a CA about to expire is refused with what to do, not used to sign", () => {
    const d = tmp();
    mkdirSync(join(d, "tls"), { recursive: true });
    execFileSync("openssl", ["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "5", "-subj", "/CN=old",
      "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", join(d, "tls", "ca.key"), "-out", join(d, "tls", "ca.crt")], { stdio: "ignore" });
    expect(() => ensureSelfSignedTls(d, ["127.0.0.1"])).toThrow(/the CA .*ca\.crt expires .*Move tls\/ca\.crt and ca\.key away/);
  });

  it("the name local services dial a bought certificate by: its first plain DNS name", () => {
    expect(dialNameOf(ensureSelfSignedTls(tmp(), ["127.0.0.1", "*.example.org", "nats.example.org"]).certFile)).toBe("nats.example.org");
    expect(dialNameOf(ensureSelfSignedTls(tmp(), ["127.0.0.1"]).certFile)).toBeUndefined();
  });

  it("refuses host names a certificate cannot hold", () => {
    expect(checkTlsHost("nats.example.org")).toBeUndefined();
    expect(checkTlsHost("*.example.org")).toBeUndefined();
    expect(checkTlsHost("fd00::2")).toBeUndefined();
    expect(checkTlsHost("bad host")).toMatch(/neither an IP address nor a DNS name/);
    expect(checkTlsHost("a/b")).toMatch(/neither/);
    expect(checkTlsHost("-x.example")).toMatch(/neither/);
    expect(() => ensureSelfSignedTls(tmp(), ["ok.example", "no,pe"])).toThrow(/TLS host list: "no,pe"/);
  });

  it("the default host list names loopback and this machine's addresses", () => {
    const hosts = defaultTlsHosts(["public.example"]);
    expect(hosts).toEqual(expect.arrayContaining(["localhost", "127.0.0.1", "::1", "public.example"]));
    expect(new Set(hosts).size).toBe(hosts.length);
  });
});

describe("server TLS settings", () => {
  const none = { tlsCert: "", tlsKey: "", tlsCa: "", tlsSelfSigned: false, tlsHosts: "" };

  it("none given: plain TCP", () => {
    expect(resolveServerTls(none, tmp(), { cluster: false })).toBeUndefined();
  });

  it("warns when a data dir that ran with --tls-self-signed starts plain (workers given the CA would refuse it)", () => {
    const d = tmp();
    expect(plainAfterTlsWarning(d, "troupe up")).toBeUndefined();
    resolveServerTls({ ...none, tlsSelfSigned: true }, d, { cluster: false });
    expect(plainAfterTlsWarning(d, "troupe up")).toMatch(/without TLS this time, .*tls\/server\.crt shows it ran with --tls-self-signed before.*troupe up --tls-self-signed/);
  });

  it("refuses half or contradictory settings, naming the flags", () => {
    const d = tmp();
    const t = ensureSelfSignedTls(d, ["127.0.0.1"]);
    expect(() => resolveServerTls({ ...none, tlsCert: t.certFile }, d, { cluster: false })).toThrow(/--tls-cert and --tls-key go together/);
    expect(() => resolveServerTls({ ...none, tlsCa: t.caFile }, d, { cluster: false })).toThrow(/--tls-ca needs --tls-cert and --tls-key/);
    expect(() => resolveServerTls({ ...none, tlsSelfSigned: true, tlsCert: t.certFile }, d, { cluster: false })).toThrow(/drop --tls-cert/);
    expect(() => resolveServerTls({ ...none, tlsHosts: "a.example" }, d, { cluster: false })).toThrow(/needs --tls-self-signed/);
    expect(() => resolveServerTls({ ...none, tlsSelfSigned: true, tlsHosts: "a b" }, d, { cluster: false })).toThrow(/--tls-hosts \[TROUPE_NATS_TLS_HOSTS\]: "a b"/);
    expect(() => resolveServerTls({ ...none, tlsCert: t.certFile, tlsKey: t.keyFile }, d, { cluster: true })).toThrow(/a cluster with TLS needs --tls-ca/);
  });

  it("refuses unreadable or wrong files, naming the flag", () => {
    const d = tmp();
    const t = ensureSelfSignedTls(d, ["127.0.0.1"]);
    const other = ensureSelfSignedTls(tmp(), ["127.0.0.1"]);
    expect(() => resolveServerTls({ ...none, tlsCert: join(d, "missing.crt"), tlsKey: t.keyFile }, d, { cluster: false })).toThrow(/--tls-cert \[TROUPE_NATS_TLS_CERT\]: cannot read/);
    expect(() => resolveServerTls({ ...none, tlsCert: t.keyFile, tlsKey: t.keyFile }, d, { cluster: false })).toThrow(/is not a PEM certificate/);
    expect(() => resolveServerTls({ ...none, tlsCert: t.certFile, tlsKey: t.certFile }, d, { cluster: false })).toThrow(/--tls-key \[TROUPE_NATS_TLS_KEY\]: .* is not a PEM private key/);
    expect(() => resolveServerTls({ ...none, tlsCert: t.certFile, tlsKey: t.keyFile, tlsCa: other.caFile }, d, { cluster: true })).toThrow(/is not signed by/);
    expect(resolveServerTls({ ...none, tlsCert: t.certFile, tlsKey: t.keyFile, tlsCa: t.caFile }, d, { cluster: true })).toEqual({ certFile: t.certFile, keyFile: t.keyFile, caFile: t.caFile });
  });

  it("self-signed: the CA and certificate of the data dir, for this machine and the extra hosts", () => {
    const d = tmp();
    const t = resolveServerTls({ ...none, tlsSelfSigned: true, tlsHosts: "nats.example.org, 203.0.113.7" }, d, { cluster: true });
    expect(t?.caFile).toBe(join(d, "tls", "ca.crt"));
    const c = cert(t!.certFile);
    expect(c.checkHost("nats.example.org")).toBeDefined();
    expect(c.checkIP("203.0.113.7")).toBeDefined();
    expect(c.checkIP("127.0.0.1")).toBeDefined();
  });
});
