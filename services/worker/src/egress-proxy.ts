import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { HostCheck } from "./ssrf.ts";

/**
 * A job's way out: a forward proxy on 127.0.0.1 that its browser context uses
 * for every request (pages, frames, XHR, WebSockets, service workers — also
 * those request interception never sees). Each target host is checked by the
 * job's guard, and the connection goes to exactly the addresses it checked:
 * Chromium never resolves a target itself, so DNS rebinding between the check
 * and the connection is impossible.
 */

export interface EgressProxyOptions {
  /** The job guard's verdict on a host (resolved once per job). */
  resolve(host: string): Promise<HostCheck>;
  /** A connection the guard refused: the job logs it. */
  onRefused(target: string, reason: string): void;
  connectTimeoutMs?: number;
}

export interface EgressProxy {
  /** `http://127.0.0.1:<port>`, for the browser context's proxyServer. */
  url: string;
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
  const track = (s: Duplex) => {
    open.add(s);
    s.once("close", () => open.delete(s));
    // A reset by the page or the target is routine; an unhandled 'error' would take the worker down.
    s.on("error", () => s.destroy());
  };

  /** The first checked address that accepts, in the resolver's order. */
  const dial = (addresses: string[], port: number): Promise<Socket> => new Promise((resolve, reject) => {
    let i = 0;
    const next = (lastErr?: Error) => {
      const address = addresses[i++];
      if (address === undefined) return reject(lastErr ?? new Error("no address to connect to"));
      const s = connect({ host: address, port });
      const t = setTimeout(() => s.destroy(new Error(`connect to ${address}:${port} timed out after ${timeoutMs} ms`)), timeoutMs);
      s.once("connect", () => {
        clearTimeout(t);
        s.removeAllListeners("error");
        s.on("error", () => s.destroy()); // until the caller tracks it
        forwarded++;
        resolve(s);
      });
      s.once("error", (e) => {
        clearTimeout(t);
        next(e);
      });
    };
    next();
  });

  /** The guard's addresses for the host, or undefined after answering the refusal. */
  const admit = async (host: string, port: number, refuse: (status: number, text: string) => void): Promise<string[] | undefined> => {
    const v = await o.resolve(host);
    if (v.ok) return v.addresses;
    o.onRefused(`${host}:${port}`, v.reason);
    refuse(403, v.reason);
    return undefined;
  };

  const server = createServer();
  server.on("connection", track);
  // Tunnels: https, wss and ws (Chromium tunnels WebSockets through CONNECT).
  server.on("connect", (req: IncomingMessage, client: Duplex, head: Buffer) => {
    track(client);
    const refuse = (status: number, text: string) => client.end(`HTTP/1.1 ${status} ${status === 403 ? "Forbidden" : "Bad Gateway"}\r\ncontent-type: text/plain\r\n\r\n${text.replace(/[\r\n]/g, " ")}\n`);
    const target = parseAuthority(req.url ?? "");
    if (!target) return refuse(400, `not a host:port: ${String(req.url).slice(0, 200)}`);
    void (async () => {
      const addresses = await admit(target.host, target.port, refuse);
      if (!addresses || client.destroyed) return;
      const upstream = await dial(addresses, target.port);
      track(upstream);
      if (client.destroyed) return upstream.destroy();
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
      upstream.once("close", () => client.destroy());
      client.once("close", () => upstream.destroy());
    })().catch((e: Error) => refuse(502, e.message));
  });
  // Plain http: the request line carries the absolute URL.
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const refuse = (status: number, text: string) => {
      if (!res.headersSent) res.writeHead(status, { "content-type": "text/plain" });
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
    void (async () => {
      const addresses = await admit(host, port, refuse);
      if (!addresses) return;
      const headers = { ...req.headers };
      for (const h of HOP) delete headers[h];
      // The checked address, with the name in the Host header: no second resolution.
      const out = httpRequest({ host: addresses[0], port, method: req.method, path: `${u.pathname}${u.search}`, headers, agent, timeout: timeoutMs });
      out.on("socket", () => forwarded++);
      out.on("timeout", () => out.destroy(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)));
      out.on("response", (r) => {
        const back = { ...r.headers };
        for (const h of HOP) delete back[h];
        res.writeHead(r.statusCode ?? 502, r.statusMessage, back);
        r.pipe(res);
      });
      out.on("error", (e) => (res.headersSent ? res.destroy() : refuse(502, e.message)));
      req.pipe(out);
    })().catch((e: Error) => refuse(502, e.message));
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
