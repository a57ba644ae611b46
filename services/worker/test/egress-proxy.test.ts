import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { bypassMatcher, createLogger } from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrowserPool } from "../src/browser-pool.ts";
import { startEgressProxy, type EgressProxy, type EgressProxyOptions } from "../src/egress-proxy.ts";
import { createTargetGuard } from "../src/ssrf.ts";
import { upstreamFromSpec } from "../src/upstream-proxy.ts";
import { startHttpProxy, startSocksProxy } from "./proxies.ts";

/**
 * The egress proxy with real Chromium. Two servers on the same port: "public"
 * on 127.0.0.2 (allowed by the policy) and "secret" on 127.0.0.1 (refused).
 */

interface Seen { requests: string[]; upgrades: string[] }
let port = 0;
const servers: Server[] = [];
const seen: Record<"public" | "secret", Seen> = { public: { requests: [], upgrades: [] }, secret: { requests: [], upgrades: [] } };
const pool = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 1000, log: createLogger("egress-test", "warn") });

/** A service worker that fetches what it is told to and answers with the outcome: its requests are its own, not the page's. */
const SERVICE_WORKER = `self.addEventListener("message", (e) => e.waitUntil(
  fetch(e.data, { mode: "no-cors", cache: "no-store" }).then((r) => "ok:" + r.status, () => "error").then((v) => e.ports[0].postMessage(v))));`;
/** Registers it, then has it fetch from the secret and the public server; the outcomes go into the title. */
const SW_PAGE = `(async () => {
  const reg = await navigator.serviceWorker.register("/sw.js");
  const sw = reg.installing || reg.waiting || reg.active;
  await new Promise((r) => sw.state === "activated" ? r() : sw.addEventListener("statechange", () => sw.state === "activated" && r()));
  const ask = (url) => new Promise((r) => { const ch = new MessageChannel(); ch.port1.onmessage = (e) => r(e.data); sw.postMessage(url, [ch.port2]); });
  const secret = await ask("http://127.0.0.1:PORT/from-sw-secret");
  const pub = await ask("http://127.0.0.2:PORT/from-sw-public");
  document.title = "sw " + secret + " " + pub;
})().catch((e) => document.title = "sw-failed " + e.message);`;

function listen(name: "public" | "secret", host: string, p: number): Promise<number> {
  const s = createServer((req, res) => {
    seen[name].requests.push(req.url ?? "");
    if (req.url === "/sw.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      return void res.end(SERVICE_WORKER);
    }
    if (req.url?.startsWith("/sw-page")) {
      res.writeHead(200, { "content-type": "text/html" });
      return void res.end(`<title>waiting</title><script>${SW_PAGE.replaceAll("PORT", String(p || port))}</script>`);
    }
    res.writeHead(200, { "content-type": "text/html" });
    // The page opens a WebSocket to the address the query names (the proxy decides whether it gets there).
    const ws = new URL(req.url ?? "/", "http://x").searchParams.get("ws");
    res.end(`<title>${name}</title><h1 id="who">${name}</h1>${ws ? `<script>const w = new WebSocket(${JSON.stringify(ws)}); w.onopen = () => document.title = "open"; w.onerror = () => document.title = "ws-error";</script>` : ""}`);
  });
  // An upgrade that reaches a server is answered like a WebSocket server would, enough for the browser's onopen.
  s.on("upgrade", (req, socket) => {
    seen[name].upgrades.push(req.url ?? "");
    const accept = createHash("sha1").update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  });
  servers.push(s);
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.listen(p, host, () => resolve((s.address() as AddressInfo).port));
  });
}

beforeAll(async () => {
  // The same port on both addresses: another process may hold it on 127.0.0.1, then take another.
  for (let tries = 1; ; tries++) {
    port = await listen("public", "127.0.0.2", 0);
    const taken = await listen("secret", "127.0.0.1", port).then(() => false, (e: NodeJS.ErrnoException) => {
      if (e.code !== "EADDRINUSE" || tries >= 10) throw e;
      return true;
    });
    if (!taken) break;
    for (const s of servers.splice(0)) s.close();
  }
  await pool.start();
});
afterAll(async () => {
  await pool.close();
  for (const s of servers) s.close();
});

/**
 * A job's guard and proxy: `rebind.test` answers 127.0.0.2 the first time it is asked and 127.0.0.1 after.
 * With `via`, the job has a proxy of its own (on 127.0.0.1, taken as checked) with that bypass list.
 */
async function jobProxy(via?: { server: string; username?: string; password?: string; bypass?: string[] }) {
  let asked = 0;
  const guard = createTargetGuard({ allowPrivate: false, allowed: ["127.0.0.2"] }, async (h) => {
    if (h !== "rebind.test") throw new Error(`ENOTFOUND ${h}`);
    return ++asked === 1 ? ["127.0.0.2"] : ["127.0.0.1"];
  });
  const refused: string[] = [];
  const failed: string[] = [];
  const viaOption: EgressProxyOptions["via"] = via && {
    upstream: upstreamFromSpec(via.server, ["127.0.0.1"], via.username, via.password),
    bypass: bypassMatcher(via.bypass ?? []),
    check: (h) => guard.host(h),
  };
  const proxy = await startEgressProxy({ resolve: (h) => guard.host(h), onRefused: (t, why) => refused.push(`${t}: ${why}`), onFailed: (t, why) => failed.push(`${t}: ${why}`), ...(viaOption ? { via: viaOption } : {}) });
  return { guard, proxy, refused, failed, asked: () => asked };
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

/** A plain request through the egress proxy from Node, logged in unless told otherwise (`null`: no login): its status and body. */
async function through(proxy: EgressProxy, url: string, auth: string | null = basic(proxy.credentials.username, proxy.credentials.password)): Promise<{ status: number; body: string; egress?: string }> {
  const { request } = await import("node:http");
  const via = new URL(proxy.url);
  return new Promise((resolve, reject) => {
    const q = request({ host: via.hostname, port: via.port, path: url, headers: auth === null ? {} : { "proxy-authorization": auth } }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, ...(typeof res.headers["x-troupe-egress"] === "string" ? { egress: res.headers["x-troupe-egress"] } : {}) }));
    });
    q.on("error", reject);
    q.end();
  });
}

async function visit(proxy: EgressProxy, url: string, until?: (title: string) => boolean) {
  const lease = await pool.acquire({ proxyServer: proxy.url, proxyBypassList: ["<-loopback>"] });
  try {
    const page = await lease.context.newPage();
    await page.authenticate(proxy.credentials);
    const r = await page.goto(url).then((x) => ({ status: x?.status() }), (e: Error) => ({ error: e.message }));
    if (until) await page.waitForFunction((f) => new Function("t", `return (${f})(t)`)(document.title), { timeout: 10_000 }, until.toString());
    return { ...r, title: await page.title() };
  } finally {
    await lease.release();
  }
}

describe("the job's egress proxy (real Chromium)", () => {
  it("connects to the address the guard checked: a name that rebinds to a private address after the check never reaches it", async () => {
    const { guard, proxy, refused, asked } = await jobProxy();
    try {
      // The request interception's check comes first and resolves the name …
      expect(await guard.check(`http://rebind.test:${port}/`)).toEqual({ ok: true });
      // … the browser's connection then goes to that same answer; a second question would get 127.0.0.1.
      const before = seen.secret.requests.length;
      const r = await visit(proxy, `http://rebind.test:${port}/page`);
      expect(r).toMatchObject({ status: 200, title: "public" });
      expect(asked()).toBe(1);
      expect(seen.public.requests).toContain("/page");
      expect(seen.secret.requests.length).toBe(before);
      expect(refused).toEqual([]);
      expect(proxy.forwarded).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it("refuses a WebSocket to a private address (request interception never sees WebSockets), and lets an allowed one through", async () => {
    const { proxy, refused } = await jobProxy();
    try {
      const r = await visit(proxy, `http://127.0.0.2:${port}/ws?ws=${encodeURIComponent(`ws://127.0.0.1:${port}/secret-socket`)}`, (t) => t === "ws-error" || t === "open");
      expect(r.title).toBe("ws-error");
      expect(seen.secret.upgrades).toEqual([]);
      // Chromium may try the tunnel again after the refusal (a run saw two): each try is refused.
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(r).toMatch(new RegExp(`^127\\.0\\.0\\.1:${port}: 127\\.0\\.0\\.1 is a loopback`));
      // Through the same proxy (a CONNECT tunnel) to the allowed address: the socket opens.
      const ok = await visit(proxy, `http://127.0.0.2:${port}/ws?ws=${encodeURIComponent(`ws://127.0.0.2:${port}/public-socket`)}`, (t) => t === "ws-error" || t === "open");
      expect(ok.title).toBe("open");
      expect(seen.public.upgrades).toEqual(["/public-socket"]);
    } finally {
      await proxy.close();
    }
  });

  it("checks a service worker's own fetches too (request interception never sees them), with the page's login to the proxy", async () => {
    const { proxy, refused } = await jobProxy();
    try {
      const r = await visit(proxy, `http://127.0.0.2:${port}/sw-page`, (t) => t.startsWith("sw"));
      // The public fetch is same-origin (its status shows); the secret one is opaque (no-cors), so the servers tell.
      expect(r.title).toMatch(/^sw (ok:0|error) ok:200$/);
      expect(seen.public.requests).toContain("/from-sw-public");
      expect(seen.secret.requests).not.toContain("/from-sw-secret");
      expect(refused).toContainEqual(expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:${port}: 127\\.0\\.0\\.1 is a loopback`)));
    } finally {
      await proxy.close();
    }
  });

  it("refuses a page on a private address with a 403 of its own, and the target never sees it", async () => {
    const { proxy, refused } = await jobProxy();
    try {
      const before = seen.secret.requests.length;
      const r = await visit(proxy, `http://127.0.0.1:${port}/direct`);
      expect(r).toMatchObject({ status: 403 });
      expect(seen.secret.requests.length).toBe(before);
      // The page, and perhaps its favicon.
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(r).toMatch(new RegExp(`^127\\.0\\.0\\.1:${port}: 127\\.0\\.0\\.1 is a loopback`));
    } finally {
      await proxy.close();
    }
  });
});

describe("the egress proxy's own login", () => {
  it("answers 407 to whoever lacks the job's random credentials (another process on the machine), plain requests and tunnels alike", async () => {
    const { proxy } = await jobProxy();
    const { connect } = await import("node:net");
    const via = new URL(proxy.url);
    const plain = async (auth?: string) => (await through(proxy, `http://127.0.0.2:${port}/login`, auth ?? null)).status;
    const tunnel = (auth?: string) => new Promise<string>((resolve, reject) => {
      const s = connect({ host: via.hostname, port: Number(via.port) }, () => s.write(`CONNECT 127.0.0.2:${port} HTTP/1.1\r\nHost: 127.0.0.2:${port}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ""}\r\n`));
      s.once("data", (d: Buffer) => {
        resolve(d.toString().split("\r\n")[0] as string);
        s.destroy();
      });
      s.on("error", reject);
    });
    try {
      const before = seen.public.requests.length;
      expect(await plain()).toBe(407);
      expect(await plain(basic(proxy.credentials.username, "guess"))).toBe(407);
      expect(await tunnel()).toBe("HTTP/1.1 407 Proxy Authentication Required");
      expect(seen.public.requests.length).toBe(before);
      expect(proxy.forwarded).toBe(0);
      expect(await plain(basic(proxy.credentials.username, proxy.credentials.password))).toBe(200);
      expect(await tunnel(basic(proxy.credentials.username, proxy.credentials.password))).toBe("HTTP/1.1 200 Connection Established");
      expect(proxy.credentials.password.length).toBeGreaterThanOrEqual(24);
    } finally {
      await proxy.close();
    }
  });
});

describe("a job's own proxy, taken from the egress proxy (real Chromium)", () => {
  it("goes through a SOCKS5 proxy with a username and password (Chromium alone cannot log in to SOCKS): the page and its WebSocket", async () => {
    const socks = await startSocksProxy({ version: 5, user: "troupe", password: "s3cret" });
    // The targets are on loopback, which Chromium's rules bypass unless told otherwise.
    const { proxy, refused } = await jobProxy({ server: socks.url, username: "troupe", password: "s3cret", bypass: ["<-loopback>"] });
    try {
      const r = await visit(proxy, `http://127.0.0.2:${port}/via-socks?ws=${encodeURIComponent(`ws://127.0.0.2:${port}/socks-socket`)}`, (t) => t === "ws-error" || t === "open");
      expect(r).toMatchObject({ status: 200, title: "open" });
      expect(seen.public.requests).toContain("/via-socks?ws=" + encodeURIComponent(`ws://127.0.0.2:${port}/socks-socket`));
      expect(seen.public.upgrades).toContain("/socks-socket");
      // Every connection of the page went through the proxy, logged in: the page (and perhaps its favicon) and the socket.
      expect(socks.carried.length).toBeGreaterThanOrEqual(2);
      for (const c of socks.carried) expect(c).toBe(`127.0.0.2:${port}`);
      expect(socks.refused).toBe(0);
      expect(refused).toEqual([]);
    } finally {
      await proxy.close();
      await socks.close();
    }
  });

  it("logs in to an HTTP proxy that wants Digest (as Chromium did through page.authenticate): the page, sent again after the challenge, and its WebSocket", async () => {
    const http = await startHttpProxy({ user: "troupe", password: "s3cret", digest: true });
    const { proxy, refused } = await jobProxy({ server: http.url, username: "troupe", password: "s3cret", bypass: ["<-loopback>"] });
    try {
      const r = await visit(proxy, `http://127.0.0.2:${port}/via-digest?ws=${encodeURIComponent(`ws://127.0.0.2:${port}/digest-socket`)}`, (t) => t === "ws-error" || t === "open");
      expect(r).toMatchObject({ status: 200, title: "open" });
      expect(http.carried).toContain(`http://127.0.0.2:${port}/via-digest?ws=${encodeURIComponent(`ws://127.0.0.2:${port}/digest-socket`)}`);
      expect(http.carried).toContain(`127.0.0.2:${port}`);
      expect(seen.public.upgrades).toContain("/digest-socket");
      // The Basic try answered with the challenge (a request racing the first could meet it too); from then on Digest.
      expect(http.refused).toBeGreaterThanOrEqual(1);
      expect(refused).toEqual([]);
    } finally {
      await proxy.close();
      await http.close();
    }
  });

  it("Digest with requests in parallel (each one that met the challenge tries again), a name outside ASCII, and one with a line break that must not get into a header", async () => {
    const http = await startHttpProxy({ user: "用户", password: "s3cret", digest: true });
    const { proxy } = await jobProxy({ server: http.url, username: "用户", password: "s3cret", bypass: ["<-loopback>"] });
    const { proxy: broken, failed } = await jobProxy({ server: http.url, username: "us\r\nX-Injected: 1", password: "s3cret", bypass: ["<-loopback>"] });
    try {
      // Four at once, all sent with Basic first and all answered with the same challenge.
      const statuses = await Promise.all([1, 2, 3, 4].map((i) => through(proxy, `http://127.0.0.2:${port}/parallel-${i}`)));
      expect(statuses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      // The line break travels percent-encoded (username*), so the proxy sees a wrong name, not a header of its own.
      const r = await through(broken, `http://127.0.0.2:${port}/broken-name`);
      expect(r).toMatchObject({ status: 502, egress: `failed ${broken.marker}`, body: expect.stringMatching(/asked for credentials \(407\) and refused the job's/) });
      expect(failed).toEqual([expect.stringMatching(/asked for credentials \(407\) and refused the job's/)]);
      expect(seen.public.requests).not.toContain("/broken-name");
    } finally {
      await proxy.close();
      await broken.close();
      await http.close();
    }
  });

  it("turns the job's proxy refusing the job's login into a 502 of its own that says so, marked as its own (passed on, Chromium would take the 407 for its own proxy's)", async () => {
    const http = await startHttpProxy({ user: "troupe", password: "s3cret" });
    const { proxy, asked, failed } = await jobProxy({ server: http.url, username: "troupe", password: "wrong", bypass: ["<-loopback>"] });
    try {
      const r = await through(proxy, `http://127.0.0.2:${port}/refused-login`);
      expect(r).toMatchObject({ status: 502, egress: `failed ${proxy.marker}` });
      expect(r.body).toMatch(new RegExp(`the job's proxy http://127\\.0\\.0\\.1:${http.port} asked for credentials \\(407\\) and refused the job's`));
      expect(failed).toEqual([expect.stringMatching(new RegExp(`^127\\.0\\.0\\.2:${port}: the job's proxy http://127\\.0\\.0\\.1:${http.port} asked for credentials \\(407\\) and refused the job's`))]);
      expect(http.refused).toBe(1);
      expect(asked()).toBe(0);
    } finally {
      await proxy.close();
      await http.close();
    }
  });

  it("reaches the hosts of the bypass list directly, at the address the guard checked (no rebinding); the rest through the proxy with the job's credentials; refusals before either", async () => {
    const http = await startHttpProxy({ user: "troupe", password: "s3cret" });
    const { proxy, refused, asked } = await jobProxy({ server: http.url, username: "troupe", password: "s3cret", bypass: ["rebind.test", "<-loopback>"] });
    try {
      const before = seen.secret.requests.length;
      const direct = await visit(proxy, `http://rebind.test:${port}/bypassed`);
      expect(direct).toMatchObject({ status: 200, title: "public" });
      expect(asked()).toBe(1);
      expect(seen.public.requests).toContain("/bypassed");
      expect(http.carried.filter((u) => u.includes("bypassed"))).toEqual([]);
      // Not in the list: through the job's proxy, which wants its credentials (it answers 407 otherwise).
      const proxied = await visit(proxy, `http://127.0.0.2:${port}/proxied`);
      expect(proxied).toMatchObject({ status: 200, title: "public" });
      expect(http.carried).toContain(`http://127.0.0.2:${port}/proxied`);
      expect(http.refused).toBe(0);
      // A private target is refused by the guard before anything goes to the proxy.
      const secret = await visit(proxy, `http://127.0.0.1:${port}/through-proxy`);
      expect(secret).toMatchObject({ status: 403 });
      expect(http.carried.filter((u) => u.includes("through-proxy"))).toEqual([]);
      expect(seen.secret.requests.length).toBe(before);
      expect(refused[0]).toMatch(new RegExp(`^127\\.0\\.0\\.1:${port}: 127\\.0\\.0\\.1 is a loopback`));
    } finally {
      await proxy.close();
      await http.close();
    }
  });
});
