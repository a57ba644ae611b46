import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLogger } from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrowserPool } from "../src/browser-pool.ts";
import { startEgressProxy, type EgressProxy } from "../src/egress-proxy.ts";
import { createTargetGuard } from "../src/ssrf.ts";

/**
 * The egress proxy with real Chromium. Two servers on the same port: "public"
 * on 127.0.0.2 (allowed by the policy) and "secret" on 127.0.0.1 (refused).
 */

interface Seen { requests: string[]; upgrades: string[] }
let port = 0;
const servers: Server[] = [];
const seen: Record<"public" | "secret", Seen> = { public: { requests: [], upgrades: [] }, secret: { requests: [], upgrades: [] } };
const pool = new BrowserPool({ executablePath: process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium", recycleAfter: 1000, log: createLogger("egress-test", "warn") });

function listen(name: "public" | "secret", host: string, p: number): Promise<number> {
  const s = createServer((req, res) => {
    seen[name].requests.push(req.url ?? "");
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
  port = await listen("public", "127.0.0.2", 0);
  await listen("secret", "127.0.0.1", port);
  await pool.start();
});
afterAll(async () => {
  await pool.close();
  for (const s of servers) s.close();
});

/** A job's guard and proxy: `rebind.test` answers 127.0.0.2 the first time it is asked and 127.0.0.1 after. */
async function jobProxy() {
  let asked = 0;
  const guard = createTargetGuard({ allowPrivate: false, allowed: ["127.0.0.2"] }, async (h) => {
    if (h !== "rebind.test") throw new Error(`ENOTFOUND ${h}`);
    return ++asked === 1 ? ["127.0.0.2"] : ["127.0.0.1"];
  });
  const refused: string[] = [];
  const proxy = await startEgressProxy({ resolve: (h) => guard.host(h), onRefused: (t, why) => refused.push(`${t}: ${why}`) });
  return { guard, proxy, refused, asked: () => asked };
}

async function visit(proxy: EgressProxy, url: string, until?: (title: string) => boolean) {
  const lease = await pool.acquire({ proxyServer: proxy.url, proxyBypassList: ["<-loopback>"] });
  try {
    const page = await lease.context.newPage();
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
      expect(refused).toEqual([expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:${port}: 127\\.0\\.0\\.1 is a loopback`))]);
      // Through the same proxy (a CONNECT tunnel) to the allowed address: the socket opens.
      const ok = await visit(proxy, `http://127.0.0.2:${port}/ws?ws=${encodeURIComponent(`ws://127.0.0.2:${port}/public-socket`)}`, (t) => t === "ws-error" || t === "open");
      expect(ok.title).toBe("open");
      expect(seen.public.upgrades).toEqual(["/public-socket"]);
    } finally {
      await proxy.close();
    }
  });

  it("refuses a page on a private address with 403, and the target never sees it", async () => {
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
