import { createServer, type Server } from "node:http";

/**
 * A small local website for `troupe up --demo`: product pages to extract
 * from, a slow page, and a page that never shows what a scenario asserts.
 * Local so the demo works offline (workers allow it with an explicit allow list).
 */

const page = (title: string, body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;margin:40px;background:#fafafa}h1{color:#2f6fde}.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:20px;max-width:520px}.price{font-size:28px;color:#1f9d55}</style>
</head><body>${body}</body></html>`;

const NAMES = ["Lantern", "Teapot", "Backpack", "Desk lamp", "Headphones", "Notebook", "Kettle", "Umbrella", "Compass", "Bicycle bell"];

export function productHtml(n: number): string {
  const name = NAMES[n % NAMES.length] as string;
  const price = (9.99 + ((n * 37) % 200)).toFixed(2);
  return page(`${name} #${n}`, `<div class="card"><h1 class="title">${name} #${n}</h1>
<p class="price">$${price}</p><p class="stock">${n % 7 === 0 ? "Out of stock" : "In stock"}</p>
<ul class="features"><li>Sturdy</li><li>Demo item ${n}</li><li>Ships in ${1 + (n % 5)} days</li></ul></div>`);
}

export interface DemoSite {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startDemoSite(port: number, host = "127.0.0.1"): Promise<DemoSite> {
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://demo");
    const send = (status: number, html: string) => {
      res.writeHead(status, { "content-type": "text/html; charset=utf-8" });
      res.end(html);
    };
    if (u.pathname === "/favicon.ico") {
      res.writeHead(204);
      res.end();
      return;
    }
    const m = /^\/product\/(\d{1,6})$/.exec(u.pathname);
    if (m) return send(200, productHtml(Number(m[1])));
    if (u.pathname === "/slow") {
      const ms = Math.min(10_000, Number(u.searchParams.get("ms") ?? "2000") || 0);
      setTimeout(() => send(200, page("Slow page", `<h1 class="title">Slow page</h1><p class="waited">${ms} ms</p>`)), ms);
      return;
    }
    if (u.pathname === "/") {
      return send(200, page("Troupe demo shop", `<h1>Troupe demo shop</h1><ul>${NAMES.map((n, i) => `<li><a href="/product/${i}">${n}</a></li>`).join("")}</ul>`));
    }
    send(404, page("Not found", "<h1>Not found</h1>"));
  });
  await new Promise<void>((res, rej) => {
    server.once("error", (e: NodeJS.ErrnoException) => rej(new Error(e.code === "EADDRINUSE" ? `demo site: port ${port} is in use (--demo-port)` : e.message)));
    server.listen(port, host, () => res());
  });
  const addr = server.address();
  const actual = typeof addr === "object" && addr ? addr.port : port;
  return {
    url: `http://${host}:${actual}`,
    server,
    close: () => new Promise<void>((res) => {
      server.closeAllConnections();
      server.close(() => res());
    }),
  };
}
