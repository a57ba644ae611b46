import { createServer, type Server } from "node:http";

/** The body of GET /status (the seed's shape, plus id and name). */
export interface StatusBody {
  workerId: string;
  name: string;
  status: "online" | "busy" | "draining";
  currentJobs: number;
  totalProcessed: number;
  successRate: number;
  uptime: string;
  performance: { cpu: number; memory: number; disk: number };
}

export interface StatusServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((res, rej) => {
    const onError = (e: Error) => { server.off("listening", onListening); rej(e); };
    const onListening = () => {
      server.off("error", onError);
      const a = server.address();
      res(typeof a === "object" && a ? a.port : port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

/**
 * GET /status and GET /healthz. With `scan`, a taken port moves on to the next
 * one (up to 100 further); an explicit port must be free.
 */
export async function startStatusServer(o: { host: string; port: number; scan: boolean; status: () => StatusBody; healthy: () => boolean }): Promise<StatusServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, { error: "only GET" });
    if (path === "/status") return send(200, o.status());
    if (path === "/healthz") return o.healthy() ? send(200, { ok: true }) : send(503, { ok: false });
    return send(404, { error: "not found; try /status or /healthz" });
  });
  let port = o.port;
  for (let tries = 0; ; tries++) {
    try {
      port = await listen(server, o.host, port);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE" && o.scan && tries < 100) { port++; continue; }
      throw new Error(`status server cannot listen on ${o.host}:${port}: ${(e as Error).message}${code === "EADDRINUSE" ? " (set --port [TROUPE_WORKER_PORT])" : ""}`, { cause: e });
    }
  }
  const shown = o.host === "0.0.0.0" || o.host === "::" ? "127.0.0.1" : o.host;
  return {
    port,
    url: `http://${shown}:${port}/status`,
    close: () => new Promise<void>((res) => { server.closeAllConnections(); server.close(() => res()); }),
  };
}
