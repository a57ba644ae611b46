import { createHash, randomBytes } from "node:crypto";

/**
 * HTTP Digest authentication (RFC 7616, RFC 2617's qop=auth) for the job's
 * proxy, which Chromium used to answer through `page.authenticate` before
 * the worker took the job's proxy over: MD5, MD5-sess, SHA-256, SHA-256-sess.
 */

export interface DigestChallenge {
  realm: string;
  nonce: string;
  /** "auth" when the proxy offers it (auth-int is not spoken). */
  qop?: "auth";
  algorithm: string;
  opaque?: string;
}

/** The Digest challenge among a 407's `Proxy-Authenticate` values, or undefined when there is none the worker can answer. */
export function parseDigestChallenge(header: string | string[] | undefined): DigestChallenge | undefined {
  for (const value of Array.isArray(header) ? header : header === undefined ? [] : [header]) {
    const at = value.search(/(^|[\s,])digest\s/i);
    if (at < 0) continue;
    const params = new Map<string, string>();
    for (const m of value.slice(at).replace(/^[\s,]*digest\s+/i, "").matchAll(/([A-Za-z-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)/g)) {
      const key = (m[1] as string).toLowerCase();
      if (!params.has(key)) params.set(key, m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : (m[2] as string));
    }
    const realm = params.get("realm");
    const nonce = params.get("nonce");
    const algorithm = (params.get("algorithm") ?? "MD5").toUpperCase();
    if (realm === undefined || nonce === undefined || !["MD5", "MD5-SESS", "SHA-256", "SHA-256-SESS"].includes(algorithm)) continue;
    const qops = params.get("qop")?.split(",").map((q) => q.trim().toLowerCase());
    // A proxy that offers only auth-int would need the body hashed: not spoken.
    if (qops && !qops.includes("auth")) continue;
    return { realm, nonce, algorithm, ...(qops ? { qop: "auth" as const } : {}), ...(params.has("opaque") ? { opaque: params.get("opaque") as string } : {}) };
  }
  return undefined;
}

const quote = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`;

/** The `Proxy-Authorization` value for one request; `nc` counts the uses of this challenge's nonce (1, 2, …). */
export function digestAuthorization(c: DigestChallenge, user: string, password: string, method: string, uri: string, nc: number, cnonce = randomBytes(8).toString("hex")): string {
  const hash = c.algorithm.startsWith("SHA-256") ? "sha256" : "md5";
  const H = (s: string) => createHash(hash).update(s).digest("hex");
  const count = nc.toString(16).padStart(8, "0");
  let ha1 = H(`${user}:${c.realm}:${password}`);
  if (c.algorithm.endsWith("-SESS")) ha1 = H(`${ha1}:${c.nonce}:${cnonce}`);
  const ha2 = H(`${method}:${uri}`);
  const response = c.qop ? H(`${ha1}:${c.nonce}:${count}:${cnonce}:${c.qop}:${ha2}`) : H(`${ha1}:${c.nonce}:${ha2}`);
  return [
    `Digest username=${quote(user)}`, `realm=${quote(c.realm)}`, `nonce=${quote(c.nonce)}`, `uri=${quote(uri)}`, `algorithm=${c.algorithm}`, `response="${response}"`,
    ...(c.qop ? [`qop=${c.qop}`, `nc=${count}`, `cnonce="${cnonce}"`] : []),
    ...(c.opaque !== undefined ? [`opaque=${quote(c.opaque)}`] : []),
  ].join(", ");
}
