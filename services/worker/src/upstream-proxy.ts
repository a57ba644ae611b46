import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { parseProxyServer } from "@troupe/events";
import { dial } from "./dial.ts";
import { digestAuthorization, parseDigestChallenge, type DigestChallenge } from "./proxy-digest.ts";

/**
 * The job's own proxy, as the worker's egress proxy speaks to it: HTTP
 * (CONNECT tunnels, absolute-form requests; Basic, or Digest once the proxy
 * asks for it), HTTPS (the same inside TLS),
 * SOCKS4 and SOCKS5 (with username/password, RFC 1929 — which Chromium itself
 * cannot do). The worker adds the job's credentials itself, so the password
 * never goes near the page.
 */

export interface UpstreamProxy {
  scheme: "http" | "https" | "socks4" | "socks5";
  /** The proxy's host as the job names it (TLS server name, messages). */
  host: string;
  port: number;
  /** Where to connect: the addresses the guard checked for the proxy's host. */
  addresses: readonly string[];
  username?: string;
  password?: string;
  /** Extra TLS options for an https proxy (tests: a private CA). */
  tls?: ConnectionOptions;
  /** The Digest challenge the proxy answered Basic with, once it has (kept for the job), and how often its nonce was used. */
  digest?: { challenge: DigestChallenge; nc: number };
}

export interface TunnelTarget {
  host: string;
  port: number;
  /** SOCKS4 carries an IPv4 address, not a name: the checked address to send. */
  ipv4?: () => Promise<string | undefined>;
}

const MAX_REPLY = 16 * 1024;
const SOCKS5_ERRORS = ["", "general failure", "connection not allowed by ruleset", "network unreachable", "host unreachable", "connection refused", "TTL expired", "command not supported", "address type not supported"];

/** How messages name the proxy: scheme://host:port, never its credentials. */
export const proxyName = (up: UpstreamProxy) => `${up.scheme}://${isIP(up.host) === 6 ? `[${up.host}]` : up.host}:${up.port}`;

/** The spec's `scheme://host:port` with the checked addresses and the job's credentials. */
export function upstreamFromSpec(server: string, addresses: readonly string[], username?: string, password?: string, tls?: ConnectionOptions): UpstreamProxy {
  // Read as the submission check reads it: a socks URL's host by http's rules too (an IDN was left percent-encoded).
  const a = parseProxyServer(server);
  if (!a.ok) throw new Error(a.error);
  const { scheme } = a.value;
  if (scheme !== "http" && scheme !== "https" && scheme !== "socks4" && scheme !== "socks5") throw new Error(`proxy scheme ${scheme} is not supported`);
  const defaultPort = { http: 80, https: 443, socks4: 1080, socks5: 1080 }[scheme];
  return {
    scheme, host: a.value.host, port: a.value.port ?? defaultPort, addresses,
    ...(username !== undefined ? { username, password: password ?? "" } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** Whether a `Proxy-Authenticate` answer offers Basic (absent: no way to tell, so yes). */
function offersBasic(challenge: string | string[] | undefined): boolean {
  const all = Array.isArray(challenge) ? challenge.join(",") : challenge;
  return all === undefined || /(^|[\s,])basic(\s|$)/i.test(all);
}

/**
 * The `Proxy-Authorization` for one request to an http(s) proxy: Basic, sent
 * up front, until the proxy has asked for Digest; and the Digest nonce it
 * used. `uri` is the request target as sent (`host:port` for CONNECT, the
 * absolute URL otherwise). Made when the connection is there, so that nonce
 * counts reach the proxy in order.
 */
export function proxyAuthorization(up: UpstreamProxy, method: string, uri: string): { value?: string; nonce?: string } {
  if (up.username === undefined) return {};
  if (up.digest) return { value: digestAuthorization(up.digest.challenge, up.username, up.password ?? "", method, uri, ++up.digest.nc), nonce: up.digest.challenge.nonce };
  return { value: `Basic ${Buffer.from(`${up.username}:${up.password ?? ""}`).toString("base64")}` };
}

/** Tries of one request or tunnel against a proxy that keeps answering with new Digest challenges. */
export const MAX_LOGIN_TRIES = 3;

/**
 * After a 407: whether it brought a Digest challenge worth another try. Not
 * when the proxy refused the very nonce the request used (the credentials
 * are wrong); yes for a new nonce, a stale one, or the first Digest
 * challenge after Basic. The challenge is kept for the job's later requests.
 */
export function learnChallenge(up: UpstreamProxy, challenge: string | string[] | undefined, usedNonce: string | undefined): boolean {
  const c = parseDigestChallenge(challenge);
  if (up.username === undefined || !c || c.nonce === usedNonce) return false;
  if (up.digest?.challenge.nonce !== c.nonce) up.digest = { challenge: c, nc: 0 };
  return true;
}

/** Why the job's proxy answered 407, for the job's logs. */
export function refusedLogin(up: UpstreamProxy, challenge: string | string[] | undefined): Error {
  const speaks = offersBasic(challenge) || parseDigestChallenge(challenge) !== undefined;
  return new Error(`the job's proxy ${proxyName(up)} asked for credentials (407)${up.username === undefined ? "; the job gives none" : " and refused the job's"}${speaks ? "" : " (it offers neither Basic nor a Digest the worker speaks)"}`);
}

/** A connection to the proxy itself (inside TLS for an https proxy). */
export async function connectToProxy(up: UpstreamProxy, timeoutMs: number): Promise<Duplex> {
  const tcp = await dial(up.addresses, up.port, timeoutMs).catch((e: Error) => {
    throw new Error(`cannot reach the job's proxy ${proxyName(up)}: ${e.message}`);
  });
  if (up.scheme !== "https") return tcp;
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ socket: tcp, ...(isIP(up.host) ? {} : { servername: up.host }), ...up.tls });
    const t = setTimeout(() => s.destroy(new Error(`TLS with the job's proxy ${proxyName(up)} timed out after ${timeoutMs} ms`)), timeoutMs);
    s.once("secureConnect", () => {
      clearTimeout(t);
      s.removeAllListeners("error");
      s.on("error", () => s.destroy());
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(t);
      tcp.destroy();
      reject(new Error(`TLS with the job's proxy ${proxyName(up)} failed: ${e.message}`));
    });
  });
}

/**
 * Reads one reply: `complete` says how many bytes of `buf` it is (0 while
 * more are needed). Bytes after it are put back for whoever reads next.
 */
function readReply(s: Duplex, complete: (buf: Buffer) => number, timeoutMs: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (e?: Error, reply?: Buffer) => {
      clearTimeout(t);
      s.off("readable", onReadable);
      s.off("close", onClose);
      s.off("error", onError);
      if (e) {
        s.destroy();
        reject(e);
      } else resolve(reply as Buffer);
    };
    const onReadable = () => {
      for (let chunk: Buffer | null; (chunk = s.read() as Buffer | null) !== null;) {
        buf = Buffer.concat([buf, chunk]);
        const n = complete(buf);
        if (n > 0) {
          if (buf.length > n) s.unshift(buf.subarray(n));
          return done(undefined, buf.subarray(0, n));
        }
        if (buf.length > MAX_REPLY) return done(new Error(`${what}: no complete reply in ${MAX_REPLY} bytes`));
      }
    };
    const onClose = () => done(new Error(`${what}: the proxy closed the connection`));
    const onError = (e: Error) => done(new Error(`${what}: ${e.message}`));
    const t = setTimeout(() => done(new Error(`${what}: no reply within ${timeoutMs} ms`)), timeoutMs);
    s.on("readable", onReadable);
    s.once("close", onClose);
    s.once("error", onError);
    onReadable();
  });
}

const authority = (host: string, port: number) => `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;

/** CONNECT through an http(s) proxy; after a Digest challenge again, on a new connection. The socket that carries the tunnel. */
async function httpConnect(first: Duplex, up: UpstreamProxy, target: TunnelTarget, timeoutMs: number): Promise<Duplex> {
  const a = authority(target.host, target.port);
  let s = first;
  for (let tries = 1; ; tries++) {
    const auth = proxyAuthorization(up, "CONNECT", a);
    s.write(`CONNECT ${a} HTTP/1.1\r\nHost: ${a}\r\n${auth.value ? `Proxy-Authorization: ${auth.value}\r\n` : ""}\r\n`);
    const head = (await readReply(s, (b) => { const i = b.indexOf("\r\n\r\n"); return i < 0 ? 0 : i + 4; }, timeoutMs, `CONNECT ${a} through the job's proxy ${proxyName(up)}`)).toString("latin1");
    const status = head.split("\r\n")[0] as string;
    const code = Number(/^HTTP\/1\.[01] (\d{3})/.exec(status)?.[1]);
    if (code === 200) return s;
    s.destroy();
    if (code !== 407) throw new Error(`the job's proxy ${proxyName(up)} refused CONNECT ${a}: ${status.slice(0, 200)}`);
    const challenges = [...head.matchAll(/^proxy-authenticate:[ \t]*([^\r\n]*)/gim)].map((m) => m[1] as string);
    if (tries >= MAX_LOGIN_TRIES || !learnChallenge(up, challenges, auth.nonce)) throw refusedLogin(up, challenges);
    s = await connectToProxy(up, timeoutMs);
  }
}

async function socks5Connect(s: Duplex, up: UpstreamProxy, target: TunnelTarget, timeoutMs: number): Promise<void> {
  const name = proxyName(up);
  const withAuth = up.username !== undefined;
  s.write(Buffer.from(withAuth ? [5, 2, 0, 2] : [5, 1, 0]));
  const [, method] = await readReply(s, (b) => (b.length >= 2 ? 2 : 0), timeoutMs, `SOCKS5 greeting of ${name}`);
  if (method === 2 && withAuth) {
    const user = Buffer.from(up.username as string);
    const pass = Buffer.from(up.password ?? "");
    if (user.length > 255 || pass.length > 255) throw new Error(`SOCKS5 credentials for ${name} are longer than 255 bytes`);
    s.write(Buffer.concat([Buffer.from([1, user.length]), user, Buffer.from([pass.length]), pass]));
    const [, status] = await readReply(s, (b) => (b.length >= 2 ? 2 : 0), timeoutMs, `SOCKS5 login at ${name}`);
    if (status !== 0) {
      s.destroy();
      throw new Error(`the job's proxy ${name} refused the job's credentials`);
    }
  } else if (method !== 0) {
    s.destroy();
    throw new Error(`the job's proxy ${name} accepts none of the offered logins (${withAuth ? "none, username/password" : "none: it wants credentials and the job gives none"})`);
  }
  const fam = isIP(target.host);
  // The length is one byte: a longer name would be cut and the rest sent on as data (another destination).
  if (!fam && Buffer.byteLength(target.host) > 255) {
    s.destroy();
    throw new Error(`SOCKS5 cannot carry a host name longer than 255 bytes (${target.host.slice(0, 60)}…)`);
  }
  const host = fam === 4 ? Buffer.from(target.host.split(".").map(Number))
    : fam === 6 ? ipv6Bytes(target.host)
    : Buffer.concat([Buffer.from([Buffer.byteLength(target.host)]), Buffer.from(target.host)]);
  const port = Buffer.from([target.port >> 8, target.port & 0xff]);
  s.write(Buffer.concat([Buffer.from([5, 1, 0, fam === 4 ? 1 : fam === 6 ? 4 : 3]), host, port]));
  const reply = await readReply(s, (b) => {
    if (b.length < 5) return 0;
    const len = b[3] === 1 ? 10 : b[3] === 4 ? 22 : b[3] === 3 ? 7 + (b[4] as number) : 10;
    return b.length >= len ? len : 0;
  }, timeoutMs, `SOCKS5 connect to ${authority(target.host, target.port)} through ${name}`);
  if (reply[1] !== 0) {
    s.destroy();
    throw new Error(`the job's proxy ${name} could not connect to ${authority(target.host, target.port)}: ${SOCKS5_ERRORS[reply[1] as number] ?? `error ${reply[1]}`}`);
  }
}

/** The IPv4 address SOCKS4 carries, found before connecting to the proxy (a lookup on an open connection could outlive it). */
async function socks4Address(target: TunnelTarget): Promise<string> {
  const ip = isIP(target.host) === 4 ? target.host : await target.ipv4?.();
  if (!ip) throw new Error(`SOCKS4 needs an IPv4 address and ${target.host} has none`);
  return ip;
}

async function socks4Connect(s: Duplex, up: UpstreamProxy, target: TunnelTarget, ip: string, timeoutMs: number): Promise<void> {
  const user = Buffer.from(up.username ?? "");
  s.write(Buffer.concat([Buffer.from([4, 1, target.port >> 8, target.port & 0xff, ...ip.split(".").map(Number)]), user, Buffer.from([0])]));
  const reply = await readReply(s, (b) => (b.length >= 8 ? 8 : 0), timeoutMs, `SOCKS4 connect to ${authority(target.host, target.port)} through ${proxyName(up)}`);
  if (reply[1] !== 0x5a) {
    s.destroy();
    throw new Error(`the job's proxy ${proxyName(up)} refused ${authority(target.host, target.port)} (SOCKS4 code ${reply[1]})`);
  }
}

function ipv6Bytes(address: string): Buffer {
  // An IPv4 tail (::ffff:1.2.3.4) becomes its two groups.
  const v4 = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const ip = v4 ? `${v4[1]}${((Number(v4[2]) << 8) | Number(v4[3])).toString(16)}:${((Number(v4[4]) << 8) | Number(v4[5])).toString(16)}` : address;
  const [head = "", tail = ""] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  return Buffer.from(groups.flatMap((g) => { const n = parseInt(g, 16); return [n >> 8, n & 0xff]; }));
}

/** A byte stream to `target` through the job's proxy: CONNECT for http(s), the SOCKS handshakes for socks. */
export async function tunnelThrough(up: UpstreamProxy, target: TunnelTarget, timeoutMs: number): Promise<Duplex> {
  const ipv4 = up.scheme === "socks4" ? await socks4Address(target) : undefined;
  const s = await connectToProxy(up, timeoutMs);
  try {
    if (up.scheme === "socks5") await socks5Connect(s, up, target, timeoutMs);
    else if (ipv4 !== undefined) await socks4Connect(s, up, target, ipv4, timeoutMs);
    else return await httpConnect(s, up, target, timeoutMs);
  } catch (e) {
    s.destroy();
    throw e;
  }
  return s;
}
