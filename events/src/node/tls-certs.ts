import { spawnSync } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { isIP } from "node:net";
import { join, resolve } from "node:path";

/** The files nats-server's `tls {}` block and the clients' `TROUPE_NATS_CA` point at. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** The CA that signed every member's certificate: clients trust it, cluster members verify each other with it. */
  caFile?: string;
}

/** A server certificate is reissued this long before it expires. */
const RENEW_BEFORE_MS = 30 * 24 * 3600_000;
const SERVER_DAYS = 397;
const CA_DAYS = 3650;

/** Finds openssl (Debian's `openssl`, which `ca-certificates` depends on) or explains how to install it. */
export function findOpenssl(binary = process.env.TROUPE_OPENSSL ?? "openssl"): string {
  const r = spawnSync(binary, ["version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) throw new Error(`openssl not found (${binary}); it makes the self-signed TLS certificates. Install it: apt-get install -y openssl`);
  return binary;
}

function openssl(bin: string, args: string[], what: string): void {
  const r = spawnSync(bin, args, { encoding: "utf8" });
  if (r.error || r.status !== 0) throw new Error(`openssl could not ${what}: ${(r.error?.message ?? r.stderr).trim()}`);
}

/**
 * Names a server certificate made here is valid for: localhost, loopback, this
 * machine's host name and every address of its interfaces, plus `extra` (the
 * names and addresses workers and other cluster members reach it by, e.g. a
 * public DNS name or a NAT's address).
 */
export function defaultTlsHosts(extra: string[] = []): string[] {
  const hosts = ["localhost", "127.0.0.1", "::1"];
  if (!checkTlsHost(hostname())) hosts.push(hostname());
  // Link-local IPv6 addresses only mean something with their interface: no client dials them by URL.
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal && !/^fe80:/i.test(a.address)) hosts.push(a.address);
  return [...new Set([...hosts, ...extra].filter(Boolean))];
}

/** A host list entry a certificate can name: an IP address or a DNS name (wildcards allowed in the first label). */
export function checkTlsHost(h: string): string | undefined {
  if (isIP(h)) return undefined;
  if (h.length > 253) return `${JSON.stringify(h.slice(0, 40))}…: longer than a DNS name may be`;
  if (!/^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(h)) {
    return `${JSON.stringify(h)} is neither an IP address nor a DNS name`;
  }
  return undefined;
}

const subjectAltName = (hosts: string[]) => hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",");

/** The names and addresses a certificate is valid for, as X509Certificate prints them ("DNS:a, IP Address:1.2.3.4"), normalised. */
function sansOf(cert: X509Certificate): Set<string> {
  const out = new Set<string>();
  for (const part of (cert.subjectAltName ?? "").split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.*)$/.exec(part.trim());
    if (!m) continue;
    out.add(m[1] === "DNS" ? `DNS:${m[2]!.toLowerCase()}` : `IP:${normaliseIp(m[2]!)}`);
  }
  return out;
}

function normaliseIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  // X509Certificate prints IPv6 in full ("0:0:0:0:0:0:0:1"); compare through URL's canonical form.
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

const wantedSans = (hosts: string[]) => new Set(hosts.map((h) => (isIP(h) ? `IP:${normaliseIp(h)}` : `DNS:${h.toLowerCase()}`)));

/** A file a setting names, with an error that names the setting when it cannot be read. */
function readSettingFile(file: string, setting: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${setting}: cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads a PEM certificate file, with an error that names the setting it came from. */
export function readCertificate(file: string, setting: string): X509Certificate {
  const pem = readSettingFile(file, setting);
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new Error(`${setting}: ${file} is not a PEM certificate: ${(e as Error).message}`, { cause: e });
  }
}

/** Checks that a private key file exists and is readable (nats-server reads it; its own error would come only at start). */
export function checkKeyFile(file: string, setting: string): void {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(readSettingFile(file, setting))) throw new Error(`${setting}: ${file} is not a PEM private key`);
}

/**
 * A private CA and a server certificate signed by it, in `<dataDir>/tls/`:
 * `ca.crt`/`ca.key` are made once (copy both to every member of a cluster
 * before its first start, so all members share one CA), `server.crt`/`.key`
 * are made for `hosts` and made again when the host list changes, the CA
 * changes, or they are within 30 days of expiring. Keys are mode 0600.
 */
export function ensureSelfSignedTls(dataDir: string, hosts: string[]): TlsFiles & { caFile: string; issued: boolean } {
  for (const h of hosts) {
    const err = checkTlsHost(h);
    if (err) throw new Error(`TLS host list: ${err}`);
  }
  if (hosts.length === 0) throw new Error("TLS host list: empty; a certificate must name at least one host");
  const dir = resolve(join(dataDir, "tls"));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const f = { caFile: join(dir, "ca.crt"), caKey: join(dir, "ca.key"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") };
  const hasCa = existsSync(f.caFile), hasCaKey = existsSync(f.caKey);
  if (hasCa !== hasCaKey) throw new Error(`${dir}: has ${hasCa ? "ca.crt but no ca.key" : "ca.key but no ca.crt"}; copy both files of the cluster's CA (or remove the one left to make a new CA)`);
  let bin: string | undefined;
  if (!hasCa) {
    bin = findOpenssl();
    openssl(bin, [
      "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-days", String(CA_DAYS),
      "-subj", "/O=Troupe/CN=Troupe NATS CA",
      "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout", f.caKey, "-out", f.caFile,
    ], "make the private CA");
    chmodSync(f.caKey, 0o600);
  }
  const ca = readCertificate(f.caFile, "TLS CA");
  if (!ca.ca) throw new Error(`${f.caFile} is not a CA certificate`);
  if (Date.parse(ca.validTo) - Date.now() < RENEW_BEFORE_MS) {
    throw new Error(`the CA ${f.caFile} expires ${ca.validTo}: certificates it signs would soon be refused. Move tls/ca.crt and ca.key away to make a new CA (then give clients the new ca.crt)`);
  }
  if (isCurrent(f.certFile, f.keyFile, ca, hosts)) return { caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile, issued: false };
  bin ??= findOpenssl();
  const csr = join(dir, "server.csr"), ext = join(dir, "server.ext");
  try {
    openssl(bin, ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-subj", `/O=Troupe/CN=${(hosts.find((h) => !isIP(h)) ?? hosts[0]!).slice(0, 64)}`, "-keyout", f.keyFile, "-out", csr], "make the server key");
    chmodSync(f.keyFile, 0o600);
    // serverAuth for clients and routes it accepts, clientAuth for the routes it dials (cluster members verify each other).
    writeFileSync(ext, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${subjectAltName(hosts)}\n`);
    openssl(bin, ["x509", "-req", "-in", csr, "-CA", f.caFile, "-CAkey", f.caKey, "-CAcreateserial", "-sha256", "-days", String(SERVER_DAYS), "-extfile", ext, "-out", f.certFile], "sign the server certificate");
  } finally {
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
    rmSync(join(dir, "ca.srl"), { force: true });
  }
  return { caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile, issued: true };
}

/** True when the server certificate there is signed by `ca`, names exactly `hosts` and is not about to expire. */
function isCurrent(certFile: string, keyFile: string, ca: X509Certificate, hosts: string[]): boolean {
  if (!existsSync(certFile) || !existsSync(keyFile)) return false;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certFile));
    // A start that died between writing the key and the certificate leaves a pair that does not match.
    if (!cert.checkPrivateKey(createPrivateKey(readFileSync(keyFile)))) return false;
  } catch {
    return false; // unreadable: made again
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
  if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS) return false;
  const have = sansOf(cert), want = wantedSans(hosts);
  return have.size === want.size && [...want].every((s) => have.has(s));
}

/**
 * The URL local services dial a server with a certificate from a public CA:
 * a name the certificate holds (it does not name 127.0.0.1), which must lead
 * to this machine. Undefined when it names no plain DNS host.
 */
export function dialNameOf(certFile: string): string | undefined {
  const cert = readCertificate(certFile, "--tls-cert [TROUPE_NATS_TLS_CERT]");
  for (const s of sansOf(cert)) if (s.startsWith("DNS:") && !s.includes("*")) return s.slice(4);
  return undefined;
}
