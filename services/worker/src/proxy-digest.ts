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
  /** The nonce of the refused request was only out of date: the login itself was right. */
  stale?: boolean;
}

// Longer challenges are not read (a proxy's header is a few hundred bytes; parsing is linear, but kept short anyway).
const MAX_CHALLENGE = 4096;

/** Each challenge of a `Proxy-Authenticate` value (Node joins repeated headers with ", "): a scheme and its parameters. */
function challenges(value: string): { scheme: string; params: Map<string, string> }[] {
  const out: { scheme: string; params: Map<string, string> }[] = [];
  // A token followed by a space starts a challenge; `key=value` or `key="quoted"` pairs follow, comma-separated.
  const token = /\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*(=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*))?\s*,?/y;
  let current: { scheme: string; params: Map<string, string> } | undefined;
  for (let at = 0; at < value.length;) {
    token.lastIndex = at;
    const m = token.exec(value);
    if (!m || m[0].length === 0) break;
    at = token.lastIndex;
    if (m[2] === undefined) {
      current = { scheme: (m[1] as string).toLowerCase(), params: new Map() };
      out.push(current);
    } else if (current) {
      const key = (m[1] as string).toLowerCase();
      if (!current.params.has(key)) current.params.set(key, m[4] !== undefined ? m[4].replace(/\\(.)/g, "$1") : (m[3] as string));
    }
  }
  return out;
}

/** The first Digest challenge among a 407's `Proxy-Authenticate` values that the worker can answer, or undefined. */
export function parseDigestChallenge(header: string | string[] | undefined): DigestChallenge | undefined {
  for (const value of Array.isArray(header) ? header : header === undefined ? [] : [header]) {
    if (value.length > MAX_CHALLENGE) continue;
    for (const { scheme, params } of challenges(value)) {
      if (scheme !== "digest") continue;
      const realm = params.get("realm");
      const nonce = params.get("nonce");
      const algorithm = (params.get("algorithm") ?? "MD5").toUpperCase();
      if (realm === undefined || nonce === undefined || !["MD5", "MD5-SESS", "SHA-256", "SHA-256-SESS"].includes(algorithm)) continue;
      const qops = params.get("qop")?.split(",").map((q) => q.trim().toLowerCase());
      // A proxy that offers only auth-int would need the body hashed: not spoken.
      if (qops && !qops.includes("auth")) continue;
      return {
        realm, nonce, algorithm, ...(qops ? { qop: "auth" as const } : {}), ...(params.has("opaque") ? { opaque: params.get("opaque") as string } : {}),
        ...(params.get("stale")?.toLowerCase() === "true" ? { stale: true } : {}),
      };
    }
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
  // A name with anything but printable ASCII goes as username* (RFC 7616 3.4.4), never raw into a header.
  const plain = /^[\x20-\x7e]*$/.test(user);
  return [
    plain ? `Digest username=${quote(user)}` : `Digest username*=UTF-8''${encodeURIComponent(user)}`, `realm=${quote(c.realm)}`, `nonce=${quote(c.nonce)}`, `uri=${quote(uri)}`, `algorithm=${c.algorithm}`, `response="${response}"`,
    ...(c.qop ? [`qop=${c.qop}`, `nc=${count}`, `cnonce="${cnonce}"`] : []),
    ...(c.opaque !== undefined ? [`opaque=${quote(c.opaque)}`] : []),
  ].join(", ");
}
