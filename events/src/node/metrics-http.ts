import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface MetricsHttp {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * GET (or HEAD) /metrics (Prometheus text) and /healthz for a service; a query string is ignored, another method
 * is 405 with `Allow`, another path 404. `healthy` false answers 503 with `unhealthy` as the body. The master
 * and the projector serve the same way through this (they had diverged: the projector's answered 404 to
 * `/metrics?x=1` and to HEAD).
 */
export async function serveMetricsHttp(o: { host: string; port: number; metrics: () => string; healthy?: () => boolean; unhealthy?: string | (() => string) }): Promise<MetricsHttp> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed: GET /metrics or /healthz\n");
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(o.metrics());
    } else if (path === "/healthz") {
      const ok = o.healthy?.() ?? true;
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : `${(typeof o.unhealthy === "function" ? o.unhealthy() : o.unhealthy) ?? "unhealthy"}\n`);
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics or /healthz\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    server.listen(o.port, o.host, () => { server.off("error", onError); resolve(); });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
