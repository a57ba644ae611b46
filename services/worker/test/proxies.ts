import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect, createServer as createTcpServer, isIP, type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";

/**
 * Proxies as a job might name them, for tests: HTTP(S) with Basic
 * credentials (CONNECT and absolute-form requests) and SOCKS4/SOCKS5 (with
 * RFC 1929 username/password). Each records what it carried, so a test can
 * prove the traffic went through it with the job's credentials.
 */

/** A self-signed certificate for `proxy.test` and 127.0.0.1 (test only, valid for a century). */
export const proxyTls = {
  cert: readFileSync(new URL("./fixtures/proxy-tls.crt", import.meta.url)),
  key: readFileSync(new URL("./fixtures/proxy-tls.key", import.meta.url)),
};

export interface TestProxy {
  url: string;
  port: number;
  /** host:port (tunnels) or absolute URLs (plain requests) carried, after a good login. */
  carried: string[];
  /** Logins refused (wrong or missing credentials). */
  refused: number;
  close(): Promise<void>;
}

function closer(server: Server | ReturnType<typeof createTcpServer>, sockets: Set<Duplex>) {
  return () => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  });
}

/** An HTTP proxy (HTTPS with `tls`) that wants `Proxy-Authorization: Basic user:password` (Digest with `digest`); `challenge` is what its 407 offers. */
export async function startHttpProxy(o: { user: string; password: string; tls?: boolean; challenge?: string; digest?: boolean }): Promise<TestProxy> {
  const nonce = `n${Date.now().toString(36)}`;
  const challenge = o.digest ? `Digest realm="troupe-test", nonce="${nonce}", qop="auth", algorithm=MD5` : o.challenge ?? 'Basic realm="troupe-test"';
  const basic = `Basic ${Buffer.from(`${o.user}:${o.password}`).toString("base64")}`;
  const md5 = (x: string) => createHash("md5").update(x).digest("hex");
  // Digest checked as RFC 2617 says (qop=auth), written out here rather than taken from the worker's code.
  const loggedIn = (header: string | undefined, method: string, target: string) => {
    if (!o.digest) return header === basic;
    const p = Object.fromEntries([...(header ?? "").matchAll(/([\w*]+)="?([^",]*)"?/g)].map((m) => [m[1], m[2]]));
    const user = p.username ?? decodeURIComponent((p["username*"] ?? "").replace(/^UTF-8''/i, ""));
    const expected = md5(`${md5(`${o.user}:troupe-test:${o.password}`)}:${nonce}:${p.nc}:${p.cnonce}:auth:${md5(`${method}:${target}`)}`);
    return (header ?? "").startsWith("Digest ") && user === o.user && p.nonce === nonce && p.uri === target && p.response === expected;
  };
  const state = { carried: [] as string[], refused: 0 };
  const sockets = new Set<Duplex>();
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (!loggedIn(req.headers["proxy-authorization"], req.method ?? "GET", req.url ?? "")) {
      state.refused++;
      res.writeHead(407, { "proxy-authenticate": challenge });
      res.end();
      return;
    }
    state.carried.push(req.url ?? "");
    const { "proxy-authorization": _a, "proxy-connection": _c, ...headers } = req.headers;
    const up = request(req.url ?? "", { method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  };
  const server: Server = o.tls ? createHttpsServer({ ...proxyTls }, onRequest) : createHttpServer(onRequest);
  server.on(o.tls ? "secureConnection" : "connection", (s: Socket) => { sockets.add(s); s.once("close", () => sockets.delete(s)); });
  server.on("connect", (req: IncomingMessage, client: Duplex, head: Buffer) => {
    sockets.add(client);
    client.on("error", () => client.destroy());
    if (!loggedIn(req.headers["proxy-authorization"], "CONNECT", req.url ?? "")) {
      state.refused++;
      client.end(`HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: ${challenge}\r\n\r\n`);
      return;
    }
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? "");
    if (!m) return void client.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    state.carried.push(req.url ?? "");
    const target = connect({ host: m[1] as string, port: Number(m[2]) }, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) target.write(head);
      target.pipe(client);
      client.pipe(target);
    });
    sockets.add(target);
    target.on("error", () => client.destroy());
    target.once("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${o.tls ? "https" : "http"}://127.0.0.1:${port}`, port,
    get carried() { return state.carried; },
    get refused() { return state.refused; },
    close: closer(server, sockets),
  };
}

/**
 * A SOCKS proxy. Version 5 wants username/password when `user` is set;
 * `names` are host names only it can resolve (like a proxy in another network).
 */
export async function startSocksProxy(o: { version: 4 | 5; user?: string; password?: string; names?: Record<string, string> }): Promise<TestProxy> {
  const state = { carried: [] as string[], refused: 0 };
  const sockets = new Set<Duplex>();
  const server = createTcpServer((client) => {
    sockets.add(client);
    client.once("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    let buf = Buffer.alloc(0);
    let phase: "greeting" | "login" | "request" | "open" = o.version === 5 ? "greeting" : "request";
    const tunnel = (host: string, port: number, ok: Buffer, fail: Buffer) => {
      const address = o.names?.[host] ?? host;
      if (!isIP(address)) return void client.end(fail);
      state.carried.push(`${host}:${port}`);
      const target = connect({ host: address, port }, () => {
        phase = "open";
        client.write(ok);
        if (buf.length) target.write(buf);
        client.removeAllListeners("data");
        target.pipe(client);
        client.pipe(target);
      });
      sockets.add(target);
      target.on("error", () => client.end(fail));
    };
    client.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (phase === "greeting" && buf.length >= 2 && buf.length >= 2 + (buf[1] as number)) {
        const methods = [...buf.subarray(2, 2 + (buf[1] as number))];
        buf = buf.subarray(2 + (buf[1] as number));
        const want = o.user !== undefined ? 2 : 0;
        if (!methods.includes(want)) {
          state.refused++;
          return void client.end(Buffer.from([5, 0xff]));
        }
        client.write(Buffer.from([5, want]));
        phase = want === 2 ? "login" : "request";
      }
      if (phase === "login" && buf.length >= 2) {
        const ulen = buf[1] as number;
        if (buf.length < 3 + ulen) return;
        const plen = buf[2 + ulen] as number;
        if (buf.length < 3 + ulen + plen) return;
        const user = buf.subarray(2, 2 + ulen).toString();
        const password = buf.subarray(3 + ulen, 3 + ulen + plen).toString();
        buf = buf.subarray(3 + ulen + plen);
        if (user !== o.user || password !== o.password) {
          state.refused++;
          return void client.end(Buffer.from([1, 1]));
        }
        client.write(Buffer.from([1, 0]));
        phase = "request";
      }
      if (phase !== "request") return;
      if (o.version === 4) {
        const end = buf.indexOf(0, 8);
        if (buf.length < 9 || end < 0) return;
        const port = buf.readUInt16BE(2);
        const host = [...buf.subarray(4, 8)].join(".");
        buf = buf.subarray(end + 1);
        phase = "open";
        return tunnel(host, port, Buffer.from([0, 0x5a, 0, 0, 0, 0, 0, 0]), Buffer.from([0, 0x5b, 0, 0, 0, 0, 0, 0]));
      }
      if (buf.length < 5) return;
      const atyp = buf[3];
      const len = atyp === 1 ? 10 : atyp === 4 ? 22 : 7 + (buf[4] as number);
      if (buf.length < len) return;
      const host = atyp === 1 ? [...buf.subarray(4, 8)].join(".")
        : atyp === 3 ? buf.subarray(5, 5 + (buf[4] as number)).toString()
        : (buf.subarray(4, 20).toString("hex").match(/.{4}/g) as string[]).join(":");
      const port = buf.readUInt16BE(len - 2);
      buf = buf.subarray(len);
      phase = "open";
      tunnel(host, port, Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([5, 4, 0, 1, 0, 0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `socks${o.version}://127.0.0.1:${port}`, port,
    get carried() { return state.carried; },
    get refused() { return state.refused; },
    close: closer(server, sockets),
  };
}
