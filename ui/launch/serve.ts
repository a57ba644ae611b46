import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { pathToFileURL } from "node:url";
import { BUILD_DIR, snapshotBuild } from "./build.ts";

export interface UiServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/**
 * Serves the built SvelteKit app (adapter-node's handler) on host:port. The
 * app reads its settings from the TROUPE_* variables of this process, so the
 * caller sets them first (bin/commands/ui.ts does, from validated options).
 */
export async function serveUi(host: string, port: number, o: { buildDir?: string } = {}): Promise<UiServer> {
  // adapter-node assumes https when it is not told the origin; this server speaks
  // plain http (a TLS proxy in front sets X-Forwarded-Proto), and SvelteKit's CSRF
  // check compares the Origin of form posts (the login) with it.
  const ownProtocolHeader = !process.env.ORIGIN && !process.env.PROTOCOL_HEADER;
  if (ownProtocolHeader) process.env.PROTOCOL_HEADER = "x-forwarded-proto";
  // adapter-node caps request bodies at BODY_SIZE_LIMIT (512K unless set): the API's own limit, so raising it raises both.
  if (!process.env.BODY_SIZE_LIMIT && process.env.TROUPE_UI_MAX_BODY_BYTES) process.env.BODY_SIZE_LIMIT = process.env.TROUPE_UI_MAX_BODY_BYTES;
  // Its own copy: a rebuild of ui/build while it runs must not pull the files from under it.
  const build = await snapshotBuild(o.buildDir ?? BUILD_DIR);
  process.once("exit", build.remove);
  const { handler } = (await import(pathToFileURL(build.entry).href)) as { handler: Handler };
  const server = createServer((req, res) => {
    if (ownProtocolHeader && !req.headers["x-forwarded-proto"]) req.headers["x-forwarded-proto"] = "http";
    handler(req, res, () => {
      res.statusCode = 404;
      res.end("not found");
    });
  });
  await new Promise<void>((res, rej) => {
    server.once("error", () => build.remove());
    server.once("error", (e: NodeJS.ErrnoException) =>
      rej(new Error(e.code === "EADDRINUSE" ? `port ${port} on ${host} is already in use (set TROUPE_UI_PORT or --port)` : `cannot listen on ${host}:${port}: ${e.message}`)),
    );
    server.listen(port, host, () => res());
  });
  const addr = server.address();
  const actualPort = typeof addr === "object" && addr ? addr.port : port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    server,
    url: `http://${shownHost}:${actualPort}`,
    async close() {
      // Lets the app close its NATS connection and database (context.ts listens for it).
      process.emit("sveltekit:shutdown" as never, "SIGTERM" as never);
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
      build.remove();
    },
  };
}
