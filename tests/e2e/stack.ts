import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect as tcpConnect, createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer, { type Browser } from "puppeteer-core";
import { freePort } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "../harness/index.ts";
import { ensureUiBuild } from "../../ui/launch/build.ts";
import { startProcess, type Managed } from "../../ui/launch/processes.ts";
import { startDemoSite, type DemoSite } from "../../ui/demo/site.ts";

/**
 * The real stack for browser tests: nats-server (harness), master, projector,
 * UI and workers as child processes of `troupe`, the demo site for targets,
 * and a real Chromium. Timings are shortened so liveness shows within seconds.
 */

const TROUPE = fileURLToPath(new URL("../../bin/troupe.mjs", import.meta.url));
export const ARTIFACTS = resolve(fileURLToPath(new URL("../../test-artifacts", import.meta.url)));

export const HEARTBEAT_MS = 1000;
/** The UI colours a worker suspect after this; the master declares it lost after 3 missed heartbeats. */
export const SUSPECT_AFTER_MS = 1200;

/**
 * A TCP proxy between the browser and NATS's WebSocket port, so a test can cut
 * the browser's live connection (and refuse new ones) while everything else runs.
 */
export interface CutProxy {
  port: number;
  cut(): Promise<void>;
  /** Stops passing bytes on the open connections and keeps them open (a hung server or route); cut() ends it. */
  freeze(): void;
  restore(): Promise<void>;
  /** New connections go to this port from now on (another server: one that refuses the browser's password). */
  retarget(targetPort: number): void;
  close(): Promise<void>;
}

export async function startCutProxy(targetPort: number): Promise<CutProxy> {
  const port = await freePort();
  let target = targetPort;
  const sockets = new Set<Socket>();
  let server: TcpServer | undefined;
  const listen = () =>
    new Promise<void>((res, rej) => {
      server = createTcpServer((client) => {
        const upstream = tcpConnect(target, "127.0.0.1");
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          s.on("error", () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
      });
      server.once("error", rej);
      server.listen(port, "127.0.0.1", () => res());
    });
  const stopListening = () => new Promise<void>((res) => (server ? server.close(() => res()) : res()));
  await listen();
  return {
    port,
    async cut() {
      const closed = stopListening();
      for (const s of sockets) s.destroy();
      await closed;
    },
    restore: listen,
    retarget(p) {
      target = p;
    },
    freeze() {
      // Unpiped as well as paused: a piped stream resumes when its destination drains.
      for (const s of sockets) {
        s.unpipe();
        s.pause();
      }
    },
    async close() {
      const closed = stopListening();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

export interface Stack {
  wsProxy: CutProxy;
  nats: TestNats;
  uiUrl: string;
  site: DemoSite;
  browser: Browser;
  procs: Map<string, Managed>;
  logs: Map<string, string[]>;
  startWorker(n: number): Managed;
  /** Stops the UI and starts it again on the same port with `env` (e.g. another TROUPE_UI_TOKEN); resolves once it answers. */
  restartUi(env?: NodeJS.ProcessEnv): Promise<void>;
  stop(): Promise<void>;
}

export function chromiumPath(): string {
  return process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium";
}

export async function launchChromium(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "troupe-e2e-chromium-"));
  const args = ["--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", `--user-data-dir=${profile}`];
  if (process.getuid?.() === 0) args.push("--no-sandbox");
  const browser = await puppeteer.launch({ executablePath: chromiumPath(), headless: true, args, defaultViewport: { width: 1400, height: 1000 } });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * `heartbeatMs`: the stack's heartbeat (default HEARTBEAT_MS); the master declares a worker lost after 3 missed ones.
 * `uiEnv`: more variables for the UI (e.g. TROUPE_UI_TOKEN).
 */
export async function startStack(o: { workers?: number; tls?: boolean; heartbeatMs?: number; uiEnv?: NodeJS.ProcessEnv } = {}): Promise<Stack> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await ensureUiBuild((l) => console.log(l));
  // tls: every service connects over TLS with the test CA (TROUPE_NATS_CA from nats.env()).
  const nats = await startTestNats({ init: true, ...(o.tls ? { tls: true } : {}) });
  const site = await startDemoSite(0);
  const uiPort = await freePort();
  const wsProxy = await startCutProxy(Number(nats.wsUrl.split(":").pop()));
  const procs = new Map<string, Managed>();
  const logs = new Map<string, string[]>();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...nats.env(),
    TROUPE_HEARTBEAT_MS: String(o.heartbeatMs ?? HEARTBEAT_MS),
    TROUPE_MASTER_PORT: "0",
    // Short retry backoff: on a loaded test machine an assignment can time out a few times, and the
    // production backoff (2 s doubling) would push a job past the tests' waits.
    TROUPE_RETRY_BACKOFF_MS: "200",
    TROUPE_RETRY_MAX_BACKOFF_MS: "2000",
    TROUPE_PROJECTOR_PORT: "0",
    TROUPE_UI_PORT: String(uiPort),
    TROUPE_UI_BUILD: "false",
    TROUPE_UI_SUSPECT_AFTER_MS: String(SUSPECT_AFTER_MS),
    // A hung NATS is told within 3 pings: seconds here, not the production minute.
    TROUPE_UI_LIVE_PING_MS: "2000",
    TROUPE_NATS_WS_PORT: nats.wsUrl.split(":").pop() as string,
    // Browsers reach NATS through the proxy (tests cut it); services connect directly.
    TROUPE_UI_NATS_WS_URL: `ws://127.0.0.1:${wsProxy.port}`,
    TROUPE_NATS_MONITOR_URL: nats.monitorUrl,
    TROUPE_LOG_LEVEL: "info",
  };
  const run = (name: string, args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const lines: string[] = [];
    logs.set(name, lines);
    const p = startProcess(name, process.execPath, [TROUPE, ...args], { ...env, ...extra }, (l) => {
      lines.push(l);
      if (process.env.TROUPE_E2E_LOG) console.log(`[${name}] ${l}`);
    });
    procs.set(name, p);
    return p;
  };
  run("master", ["master"]);
  run("projector", ["projector"]);
  run("ui", ["ui"], o.uiEnv);
  const startWorker = (n: number) => {
    const nn = String(n).padStart(2, "0");
    return run(`worker-${nn}`, ["worker"], {
      TROUPE_WORKER_NAME: `Worker Node E2E ${nn}`, TROUPE_WORKER_ID: `wn-e2e-${nn}`, TROUPE_WORKER_PORT: "0",
      TROUPE_ALLOWED_TARGETS: "127.0.0.1", TROUPE_MAX_CPU: "100", TROUPE_MIN_FREE_MEMORY_MB: "0", TROUPE_DRAIN_GRACE_MS: "2000",
      TROUPE_WORKER_LABELS: `e2e,n=${nn}`,
    });
  };
  for (let i = 1; i <= (o.workers ?? 0); i++) startWorker(i);
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  // Any answer: with a token, /api/stats is a 401.
  const uiAnswers = () => waitFor("the UI to answer", async () => ((await fetch(`${uiUrl}/api/stats`).catch(() => null))?.status ?? 500) < 500, 60_000, 200);
  await uiAnswers();
  const chromium = await launchChromium();
  return {
    wsProxy, nats, uiUrl, site, browser: chromium.browser, procs, logs, startWorker,
    async restartUi(extra = {}) {
      await procs.get("ui")?.stop("SIGTERM", 10_000);
      run("ui", ["ui"], extra);
      await uiAnswers();
    },
    async stop() {
      await chromium.close().catch(() => {});
      await Promise.all([...procs.values()].filter((p) => p.name.startsWith("worker")).map((p) => p.stop("SIGTERM", 10_000)));
      await Promise.all([...procs.values()].map((p) => p.stop("SIGTERM", 10_000)));
      await site.close();
      await wsProxy.close();
      await nats.stop();
    },
  };
}

/** Dumps a process's recent output, to make a failing test say why. */
export function tail(stack: Stack, name: string, n = 30): string {
  return (stack.logs.get(name) ?? []).slice(-n).join("\n");
}

/** Calls the UI's JSON API: status and parsed body. */
export async function callApi(stack: Stack, path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, any> }> {
  const r = await fetch(`${stack.uiUrl}${path}`, init);
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}
