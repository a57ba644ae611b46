import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, request as httpRequest, Agent, type IncomingMessage, type RequestOptions, type ServerResponse } from "node:http";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import { dial } from "./dial.ts";
import type { BypassTarget } from "@troupe/events/node";
import type { HostCheck, TargetCheck } from "./ssrf.ts";
import { connectToProxy, learnChallenge, MAX_LOGIN_TRIES, proxyAuthorization, refusedLogin, tunnelThrough, type UpstreamProxy } from "./upstream-proxy.ts";

/**
 * A job's way out: a forward proxy on 127.0.0.1 that its browser context uses
 * for every request (pages, frames, XHR, WebSockets, workers and service
 * workers): the one place targets are checked. (Puppeteer's request
 * interception checked them too until 2026-11-30; it never saw WebSockets or
 * service workers, and it hung dedicated workers' fetches: puppeteer#14515,
 * reproduced by an attack.) Each target host is checked by the
 * job's guard, and the connection goes to exactly the addresses it checked:
 * Chromium never resolves a target itself, so DNS rebinding between the check
 * and the connection is impossible.
 *
 * A job with a proxy of its own goes out through it from here (`via`): the
 * hosts its bypass list matches are reached directly, pinned as above, the
 * rest through the job's proxy with the job's credentials.
 */

/** Marks the egress proxy's own answers to plain-http requests (a refusal or a failure), never a target's. */
export const EGRESS_HEADER = "x-troupe-egress";

export interface EgressProxyOptions {
  /** The job guard's verdict on a host (resolved once per job). */
  resolve(host: string): Promise<HostCheck>;
  /** A connection the guard refused: the job logs it. */
  onRefused(target: string, reason: string): void;
  /** A connection that could not be made (the job's proxy refused it, a target did not answer): the job logs it. */
  onFailed?(target: string, reason: string): void;
  connectTimeoutMs?: number;
  /** The job's own proxy. */
  via?: {
    upstream: UpstreamProxy;
    /** Targets reached directly instead (Chromium's bypass-list rules, `events/src/node/proxy-bypass.ts`). */
    bypass(t: BypassTarget): boolean;
    /** The check for a target reached through the proxy: the guard's, or none when it is off (the proxy may know names this machine cannot resolve). */
    check(host: string): Promise<TargetCheck>;
  };
}

export interface EgressProxy {
  /** `http://127.0.0.1:<port>`, for the browser context's proxyServer. */
  url: string;
  /** Random per proxy: only the job's browser (page.authenticate) may use it, no other process on the machine. */
  credentials: { username: string; password: string };
  /** Random per proxy: the EGRESS_HEADER value of its own answers is "refused <marker>" or "failed <marker>". */
  marker: string;
  /** Tunnels and requests it forwarded to targets. */
  readonly forwarded: number;
  close(): Promise<void>;
}

// Hop-by-hop headers and the proxy's own: never forwarded to the target.
const HOP = ["proxy-connection", "proxy-authorization", "connection", "keep-alive", "te", "trailer", "upgrade"];

/** host and port of a CONNECT authority (`example.com:443`, `[::1]:80`), or undefined when malformed. */
export function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]+)):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2] as string).toLowerCase(), port };
}

export async function startEgressProxy(o: EgressProxyOptions): Promise<EgressProxy> {
  const timeoutMs = o.connectTimeoutMs ?? 15_000;
  const open = new Set<Duplex>();
  const agent = new Agent({ keepAlive: true });
  let forwarded = 0;
  const credentials = { username: "troupe-job", password: randomBytes(18).toString("base64url") };
  // Its own answers carry this, which no target knows: a target's service worker or https page sent the header with
  // a plain "refused" and made a good page a final ssrf (a review).
  const marker = randomBytes(12).toString("base64url");
  const expected = Buffer.from(`Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`);
  const authorized = (req: IncomingMessage) => {
    const got = Buffer.from(req.headers["proxy-authorization"] ?? "");
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const CHALLENGE = 'Basic realm="troupe-egress"';
  const track = (s: Duplex) => {
    open.add(s);
    s.once("close", () => open.delete(s));
    // A reset by the page or the target is routine; an unhandled 'error' would take the worker down.
    s.on("error", () => s.destroy());
  };

  /** The guard's addresses for the host, or undefined after answering the refusal. */
  /** Answers a host the guard turned away: a name with no address is a failure to reach it (the job may try
   *  again), anything else a policy refusal. */
  const turnAway = (v: { reason: string; unresolved?: true }, host: string, port: number, refuse: (status: number, text: string) => void) => {
    if (v.unresolved) o.onFailed?.(`${host}:${port}`, v.reason);
    else o.onRefused(`${host}:${port}`, v.reason);
    refuse(v.unresolved ? 502 : 403, v.reason);
  };
  const admit = async (host: string, port: number, refuse: (status: number, text: string) => void): Promise<string[] | undefined> => {
    const v = await o.resolve(host);
    if (v.ok) return v.addresses;
    turnAway(v, host, port, refuse);
    return undefined;
  };
  /** Through the job's proxy: whether the target passes its check, after answering a refusal. */
  const admitVia = async (check: (host: string) => Promise<TargetCheck>, host: string, port: number, refuse: (status: number, text: string) => void): Promise<boolean> => {
    const v = await check(host);
    if (v.ok) return true;
    turnAway(v, host, port, refuse);
    return false;
  };
  /** SOCKS4 sends an address: the first IPv4 one the guard checked. */
  const ipv4Of = (host: string) => async () => {
    const v = await o.resolve(host);
    return v.ok ? v.addresses.find((a) => isIP(a) === 4) : undefined;
  };
  const failed = (target: string, e: Error, refuse: (status: number, text: string) => void) => {
    o.onFailed?.(target, e.message);
    refuse(502, e.message);
  };

  const server = createServer();
  server.on("connection", track);
  // Tunnels: https, wss and ws (Chromium tunnels WebSockets through CONNECT).
  server.on("connect", (req: IncomingMessage, client: Duplex, head: Buffer) => {
    track(client);
    if (!authorized(req)) return void client.end(`HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: ${CHALLENGE}\r\ncontent-length: 0\r\n\r\n`);
    const refuse = (status: number, text: string) => client.end(`HTTP/1.1 ${status} ${status === 403 ? "Forbidden" : "Bad Gateway"}\r\ncontent-type: text/plain\r\n\r\n${text.replace(/[\r\n]/g, " ")}\n`);
    const target = parseAuthority(req.url ?? "");
    if (!target) return refuse(400, `not a host:port: ${String(req.url).slice(0, 200)}`);
    const via = o.via && !o.via.bypass({ host: target.host, port: target.port }) ? o.via : undefined;
    void (async () => {
      let upstream: Duplex;
      if (via) {
        if (!(await admitVia(via.check, target.host, target.port, refuse)) || client.destroyed) return;
        upstream = await tunnelThrough(via.upstream, { ...target, ipv4: ipv4Of(target.host) }, timeoutMs);
      } else {
        const addresses = await admit(target.host, target.port, refuse);
        if (!addresses || client.destroyed) return;
        upstream = await dial(addresses, target.port, timeoutMs);
      }
      forwarded++;
      track(upstream);
      if (client.destroyed) return upstream.destroy();
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      upstream.once("close", () => client.destroy());
      client.once("close", () => upstream.destroy());
    })().catch((e: Error) => failed(req.url ?? "", e, refuse));
  });
  // Plain http: the request line carries the absolute URL.
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (!authorized(req)) {
      res.writeHead(407, { "proxy-authenticate": CHALLENGE, "content-length": 0 });
      return void res.end();
    }
    const refuse = (status: number, text: string) => {
      // Answered, and marked as this proxy's own (EGRESS_HEADER): the job's steps fail a document that is one (a page
      // of ours loaded as the target's, and a plain-http job whose proxy was down or refused its login "completed":
      // an attack). Not a closed connection: Chromium sends a request again when a connection it counts as reused
      // (preconnected ones too) closes unanswered, and a form POST the target hung up on reached it twice (a review).
      if (res.headersSent) return void res.destroy();
      res.writeHead(status, { "content-type": "text/plain", [EGRESS_HEADER]: `${status === 403 ? "refused" : "failed"} ${marker}` });
      res.end(`${text}\n`);
    };
    let u: URL;
    try {
      u = new URL(req.url ?? "");
    } catch {
      return refuse(400, "a proxy request needs an absolute http URL");
    }
    if (u.protocol !== "http:") return refuse(400, `scheme ${u.protocol} is not proxied here`);
    const host = u.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    const port = Number(u.port || 80);
    const via = o.via && !o.via.bypass({ scheme: "http", host, port }) ? o.via : undefined;
    // Only a request without a body can be sent again (after a Digest challenge of the job's proxy).
    const bodyless = (req.method === "GET" || req.method === "HEAD") && req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined;
    void (async () => {
      const headers = { ...req.headers };
      for (const h of HOP) delete headers[h];
      if (via && !(await admitVia(via.check, host, port, refuse))) return;
      const addresses = via ? [] : await admit(host, port, refuse);
      if (!addresses) return;
      /** One try of the request; after a Digest challenge of the job's proxy a bodiless one is sent again. */
      const send = (tries: number) => {
        const body = (out: ReturnType<typeof httpRequest>) => (tries === 1 ? req.pipe(out) : out.end());
        let usedNonce: string | undefined;
        let over = false;
        let options: RequestOptions;
        let connected: ((out: ReturnType<typeof httpRequest>) => void) | undefined;
        const up = via?.upstream;
        if (up && (up.scheme === "http" || up.scheme === "https")) {
          // An HTTP proxy takes the absolute URL (some refuse CONNECT to port 80). Its login is added once the connection is there.
          options = { path: u.href, headers, createConnection: (_o, cb) => void connectToProxy(up, timeoutMs).then((s) => cb(null, s as never), (e: Error) => cb(e, undefined as never)) };
          connected = (out) => {
            const auth = proxyAuthorization(up, req.method ?? "GET", u.href);
            usedNonce = auth.nonce;
            if (auth.value) out.setHeader("proxy-authorization", auth.value);
          };
        } else if (up) {
          options = { path: `${u.pathname}${u.search}`, headers,
            createConnection: (_o, cb) => void tunnelThrough(up, { host, port, ipv4: ipv4Of(host) }, timeoutMs).then((s) => cb(null, s as never), (e: Error) => cb(e, undefined as never)) };
        } else {
          // The checked address, with the name in the Host header: no second resolution.
          options = { host: addresses[0], port, path: `${u.pathname}${u.search}`, headers, agent };
        }
        const out = httpRequest({ ...options, method: req.method, timeout: timeoutMs });
        out.on("socket", () => {
          forwarded++;
          // Nothing is written before the socket is there, so the login can still go into the headers.
          try {
            connected?.(out);
            body(out);
          } catch (e) {
            out.destroy(e as Error); // a header Node refuses: this request fails, not the worker
          }
        });
        out.on("timeout", () => out.destroy(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)));
        out.on("response", (r) => {
          if (via && r.statusCode === 407) {
            // The job's proxy wants (another) login. Passed on, Chromium would take it for its own proxy's challenge.
            // This try is over: its connection goes (a proxy may never finish the 407's body), its late errors are nobody's.
            over = true;
            r.on("error", () => {});
            r.destroy();
            out.destroy();
            if (tries < MAX_LOGIN_TRIES && bodyless && learnChallenge(via.upstream, r.headers["proxy-authenticate"], usedNonce)) return retry(tries + 1);
            return failed(`${host}:${port}`, refusedLogin(via.upstream, r.headers["proxy-authenticate"]), refuse);
          }
          const back = { ...r.headers };
          for (const h of HOP) delete back[h];
          // Only this proxy's own answers carry it: a target cannot make its page look like one.
          delete back[EGRESS_HEADER];
          res.writeHead(r.statusCode ?? 502, r.statusMessage, back);
          r.pipe(res);
        });
        out.on("error", (e) => {
          if (over) return;
          if (res.headersSent) res.destroy();
          else failed(`${host}:${port}`, e, refuse);
        });
      };
      const retry = (tries: number) => {
        try {
          send(tries);
        } catch (e) {
          // A header Node refuses, say: never an uncaught exception in the worker.
          failed(`${host}:${port}`, e as Error, refuse);
        }
      };
      retry(1);
    })().catch((e: Error) => failed(`${host}:${port}`, e, refuse));
  });
  // Chromium sends WebSockets through CONNECT; an Upgrade through the plain path is not proxied.
  server.on("upgrade", (_req: IncomingMessage, s: Duplex) => s.end("HTTP/1.1 501 Not Implemented\r\n\r\n"));
  server.on("clientError", (_e, s: Duplex) => s.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("the egress proxy has no port");
  return {
    url: `http://127.0.0.1:${addr.port}`,
    credentials,
    marker,
    get forwarded() {
      return forwarded;
    },
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of open) s.destroy();
      agent.destroy();
      await closed;
    },
  };
}
