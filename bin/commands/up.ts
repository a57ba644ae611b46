import { fileURLToPath } from "node:url";
import {
  addWorkerUser, bool, connectAs, defineCommand, dialNameOf, ensureCredentials, initStores, int, loadWorkerUsers, natsServerTlsOptions, plainAfterTlsWarning, resolveServerTls,
  assertPortsFree, claimNatsStore, MAX_HEARTBEAT_MS, MAX_WORKER_JOBS, MIN_HEARTBEAT_MS, maxStoreFrom, natsStoreOptions, passwordVar, shutdownSignal, startNatsServer, str, UsageError, userVar, withNatsConfigLock, type RunningNatsServer,
} from "@troupe/events/node";
import { startDemoJobs } from "../../ui/demo/generator.ts";
import { startDemoSite, type DemoSite } from "../../ui/demo/site.ts";
import { ensureUiBuild } from "../../ui/launch/build.ts";
import { prefixer, startProcess, type Managed } from "../../ui/launch/processes.ts";
import { isLoopback } from "./ui.ts";

const TROUPE = fileURLToPath(new URL("../troupe.mjs", import.meta.url));
/** Its workers' drain grace (running jobs may finish), and how long `up` waits for one to stop: the grace plus up to
 *  ~25 s to announce the drain and the deregistration (10 s each) and close, when NATS is away. */
const WORKER_DRAIN_GRACE_MS = 10_000;
const WORKER_STOP_GRACE_MS = WORKER_DRAIN_GRACE_MS + 30_000;
/** The label of the workers `up` starts on this machine; demo jobs ask for it. */
const LOCAL_LABEL = "local";
/** A service that exits on its own starts again after 1 s, twice as long each time it dies within a minute of its start, up to 30 s. */
const RESTART_FIRST_MS = 1000;
const RESTART_MAX_MS = 30_000;
const RESTART_STABLE_MS = 60_000;
/** The waits between starts of one child (a service or nats-server) that keeps exiting on its own. */
class RestartBackoff {
  private waitMs = RESTART_FIRST_MS;
  private startedAt = Date.now();
  started(): void {
    this.startedAt = Date.now();
  }
  /** It exited: one that ran a while starts again soon. */
  exited(): void {
    if (Date.now() - this.startedAt >= RESTART_STABLE_MS) this.waitMs = RESTART_FIRST_MS;
  }
  /** The wait before the next try (the one after is twice as long, up to the cap). */
  next(): number {
    const w = this.waitMs;
    this.waitMs = Math.min(w * 2, RESTART_MAX_MS);
    return w;
  }
  /** What next() gives, for a message. */
  get upcoming(): number {
    return this.waitMs;
  }
}

const host = { pattern: /^[A-Za-z0-9.:-]+$/, patternHelp: "an IP address or host name" };

export const command = defineCommand({
  name: "up",
  summary: "Run the whole stack in one terminal: nats-server (credentials generated), init, master, projector, UI and N workers, with prefixed logs; Ctrl-C stops everything. --demo adds a local demo site and a stream of demo jobs.",
  options: {
    dataDir: str("data directory: NATS store, credentials.env, SQLite read models", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
    prefix: str("subject prefix", { env: "TROUPE_PREFIX", default: "troupe", pattern: /^[A-Za-z0-9_-]+$/, patternHelp: "a token of [A-Za-z0-9_-]" }),
    workers: int("workers to start on this machine", { env: "TROUPE_UP_WORKERS", default: 2, min: 0, max: 64 }),
    maxJobs: int("jobs each local worker runs at once", { env: "TROUPE_MAX_JOBS", default: 2, min: 1, max: MAX_WORKER_JOBS }),
    heartbeatMs: int("worker heartbeat interval (the master's liveness and the UI's suspect colour follow it)", { env: "TROUPE_HEARTBEAT_MS", default: 10_000, min: MIN_HEARTBEAT_MS, max: MAX_HEARTBEAT_MS, metavar: "<ms>" }),
    natsHost: str("NATS client listen address (0.0.0.0 lets workers on other machines join)", { env: "TROUPE_NATS_HOST", default: "0.0.0.0", ...host }),
    natsPort: int("NATS client port", { env: "TROUPE_NATS_PORT", default: 4222, min: 1, max: 65535 }),
    wsHost: str("NATS WebSocket listen address (the browsers that open the dashboard connect to it; 127.0.0.1 when only this machine does)", { env: "TROUPE_NATS_WS_HOST", default: "0.0.0.0", ...host }),
    wsPort: int("NATS WebSocket port (the dashboard's live updates)", { env: "TROUPE_NATS_WS_PORT", default: 4223, min: 1, max: 65535 }),
    monitorPort: int("NATS monitoring port", { env: "TROUPE_NATS_MONITOR_PORT", default: 8222, min: 1, max: 65535 }),
    ...natsStoreOptions,
    uiHost: str("dashboard listen address (non-loopback needs TROUPE_UI_TOKEN)", { env: "TROUPE_UI_HOST", default: "127.0.0.1", ...host }),
    uiPort: int("dashboard port", { env: "TROUPE_UI_PORT", default: 3000, min: 1, max: 65535 }),
    masterPort: int("master's /metrics port (127.0.0.1; 0 = no metrics, as `troupe master` takes it)", { env: "TROUPE_MASTER_PORT", default: 3001, min: 0, max: 65535 }),
    projectorPort: int("projector's /metrics port (127.0.0.1; 0 = any free one)", { env: "TROUPE_PROJECTOR_PORT", default: 3003, min: 0, max: 65535 }),
    demo: bool("serve a local demo site and keep submitting a mix of demo jobs", { env: "TROUPE_DEMO", default: false }),
    demoPort: int("demo site port (127.0.0.1)", { env: "TROUPE_DEMO_PORT", default: 3005, min: 0, max: 65535 }),
    demoRate: int("demo jobs per minute", { env: "TROUPE_DEMO_RATE", default: 30, min: 1, max: 60_000 }),
    sharedWorkerUser: bool("keep the shared worker user of credentials.env (a worker on another machine may join with it); --no-shared-worker-user leaves it out, so every worker needs its own user (troupe worker-user add); the local workers always run as their own", { env: "TROUPE_NATS_SHARED_WORKER_USER", default: true }),
    ...natsServerTlsOptions,
  },
  details: `
Everything stops on Ctrl-C: workers drain first, then UI, projector, master, nats-server.
A service or nats-server that dies on its own is started again (after 1 s, doubling up to 30 s);
a service that refuses its settings (exit 2) stops the stack instead, exit 2.
  pnpm troupe up --demo          # then open http://127.0.0.1:3000
  pnpm troupe up --workers 0     # run workers elsewhere: pnpm troupe worker-user add <id>, then pnpm troupe worker there`,
  async run({ values: v }) {
    // Its master would take it over: up runs one nats-server, which cannot hold replicated streams.
    const replicas = process.env.TROUPE_REPLICAS;
    if (replicas !== undefined && replicas !== "" && replicas !== "1") {
      throw new UsageError(`TROUPE_REPLICAS=${replicas}: up runs one nats-server, not a cluster, so its streams have one replica; unset it (a cluster: README, "Run NATS as a three-member cluster")`);
    }
    if (!isLoopback(v.uiHost) && !process.env.TROUPE_UI_TOKEN) {
      throw new UsageError(`refusing to expose the dashboard on ${v.uiHost} without a login: set TROUPE_UI_TOKEN, or keep --ui-host 127.0.0.1`);
    }
    const names = ["nats", "up", "master", "projector", "ui", "demo", ...Array.from({ length: v.workers }, (_, i) => `worker-${i + 1}`)];
    const width = Math.max(...names.map((n) => n.length));
    const logFor = (name: string) => prefixer(name, names.indexOf(name), width);
    const say = logFor("up");

    // Two flags naming one port: the second listener to start fails and crash-loops (it read as "in use" by another program).
    const ports: [number, string][] = [[v.natsPort, "--nats-port"], [v.wsPort, "--ws-port"], [v.monitorPort, "--monitor-port"], [v.masterPort, "--master-port"],
      [v.projectorPort, "--projector-port"], [v.uiPort, "--ui-port"], ...(v.demo ? [[v.demoPort, "--demo-port"] as [number, string]] : [])];
    for (const [i, [port, flag]] of ports.entries()) {
      const other = ports.slice(0, i).find(([p]) => p === port && p !== 0);
      if (other) throw new UsageError(`${other[1]} and ${flag} both name port ${port}: give each its own`);
    }
    // Every port before anything starts: a taken one used to leave the stack half up (a service gone, the rest running).
    // On the addresses they will listen on: nats-server's WebSocket on 0.0.0.0 (its default), monitoring on 127.0.0.1.
    await assertPortsFree(v.natsHost, [[v.natsPort, "NATS client", "--nats-port"]], { owner: "the stack" });
    await assertPortsFree(v.wsHost, [[v.wsPort, "NATS WebSocket", "--ws-port"]], { owner: "the stack" });
    await assertPortsFree("127.0.0.1", [[v.monitorPort, "NATS monitoring", "--monitor-port"],
      [v.masterPort, "master metrics", "--master-port"], [v.projectorPort, "projector metrics", "--projector-port"],
      ...(v.demo ? [[v.demoPort, "demo site", "--demo-port"] as [number, string, string]] : [])], { owner: "the stack" });
    await assertPortsFree(v.uiHost, [[v.uiPort, "dashboard", "--ui-port"]], { owner: "the stack" });
    // Each local worker runs as its own NATS user (as `troupe worker-user add` makes one), so none of them may act
    // for another worker, and none needs the shared worker credential; in worker-users.json, kept across runs.
    // Before the UI build: a malformed worker-users.json stops `up` at once.
    const localIds = Array.from({ length: v.workers }, (_, i) => `wn-local-${String(i + 1).padStart(2, "0")}`);
    // Makes the data dir on a first run (the lock file lives in it).
    const credentials = ensureCredentials(v.dataDir);
    // One nats-server per store: a second `up` whose ports were moved but not its data dir ran a second server and
    // master on this one. Before anything else in the data dir is written (worker users, TLS, the UI build's wait);
    // held for this process's life, through nats-server's restarts (store-lock.ts).
    claimNatsStore(v.dataDir);
    await withNatsConfigLock(v.dataDir, () => {
      const known = new Set(loadWorkerUsers(v.dataDir).map((u) => u.workerId));
      for (const id of localIds) if (!known.has(id)) addWorkerUser(v.dataDir, id);
    });
    // Build before anything starts: a first build takes a while and would otherwise race the services.
    await ensureUiBuild(say);
    const tls = resolveServerTls(v, v.dataDir, { cluster: false });
    // A certificate of a public CA does not name 127.0.0.1: the local services dial a name it holds.
    const localName = tls && !tls.caFile ? dialNameOf(tls.certFile) : undefined;
    if (tls && !tls.caFile && !localName) throw new UsageError("--tls-cert names no DNS host the local services could dial: give --tls-ca, or use --tls-self-signed");
    if (tls?.issued) say(`made a TLS certificate for ${tls.hosts?.join(", ")}, signed by ${tls.caFile}`);
    const plain = tls ? undefined : plainAfterTlsWarning(v.dataDir, "troupe up");
    if (plain) say(plain);
    say(`starting nats-server (credentials in ${v.dataDir}/credentials.env, the local workers' own users in ${v.dataDir}/worker-users.json${v.sharedWorkerUser ? "" : "; no shared worker user"})`);
    let nats: RunningNatsServer | undefined;
    const procs: Managed[] = [];
    let stopDemo: (() => void) | undefined;
    let site: DemoSite | undefined;
    let shuttingDown = false;

    const restarts = new Set<NodeJS.Timeout>();
    let natsStarting: Promise<unknown> | undefined;
    let onStopping = () => {};
    const stopping = new Promise<void>((r) => (onStopping = r));
    const stopAll = async () => {
      shuttingDown = true;
      onStopping();
      for (const t of restarts) clearTimeout(t);
      // A nats-server being started again is stopped with the rest, not left behind.
      await natsStarting?.catch(() => {});
      stopDemo?.();
      // Workers first (they drain), then the readers and writers, then NATS itself.
      const order = (p: Managed) => (p.name.startsWith("worker") ? 0 : p.name === "ui" ? 1 : p.name === "projector" ? 2 : 3);
      for (const rank of [0, 1, 2, 3]) await Promise.all(procs.filter((p) => order(p) === rank).map((p) => p.stop("SIGTERM", rank === 0 ? WORKER_STOP_GRACE_MS : 10_000)));
      await site?.close();
      await nats?.stop();
    };

    const startNats = () => startNatsServer({
      dataDir: v.dataDir, prefix: v.prefix, credentials, host: v.natsHost, port: v.natsPort, wsHost: v.wsHost, wsPort: v.wsPort, monitorPort: v.monitorPort,
      ...maxStoreFrom(v),
      onLog: logFor("nats"),
      ...(tls ? { tls } : {}),
      // Stopped last, after the workers have drained and deregistered through it.
      ownProcessGroup: true,
      ...(v.sharedWorkerUser ? {} : { sharedWorkerUser: false }),
    });
    /** A nats-server that dies is started again (same store, same config), as a supervisor would: every service
     *  reconnects by itself, so the stack carries on instead of stopping whole (and its jobs wait, not lost). */
    const superviseNats = async (first: RunningNatsServer) => {
      let current = first;
      const backoff = new RestartBackoff();
      for (;;) {
        backoff.started();
        const code = await Promise.race([current.exited, stopping.then(() => "stopping" as const)]);
        if (shuttingDown || code === "stopping") return;
        backoff.exited();
        say(`nats-server exited unexpectedly (code ${code}); starting it again in ${backoff.upcoming / 1000} s (the services reconnect by themselves)`);
        for (;;) {
          const waitMs = backoff.next();
          await Promise.race([new Promise((r) => setTimeout(r, waitMs).unref()), stopping]);
          if (shuttingDown) return;
          const starting = startNats();
          natsStarting = starting;
          try {
            current = nats = await starting;
            say("nats-server is running again");
            break;
          } catch (e) {
            if (shuttingDown) return;
            say(`nats-server did not start again: ${(e as Error).message}; trying again in ${backoff.upcoming / 1000} s`);
          } finally {
            natsStarting = undefined;
          }
        }
      }
    };

    try {
      nats = await startNats();
      const natsUrl = nats.url;
      // The local services trust the server by its CA; with a bought certificate, by the system's CAs over tls://.
      const natsCa = tls?.caFile ?? "";
      const natsUrlFor = tls && !natsCa ? `tls://${localName}:${v.natsPort}` : natsUrl;
      const nc = await connectAs({ url: natsUrlFor, ca: natsCa, role: "master", dataDir: v.dataDir, name: "troupe-up-init" });
      const report = await initStores(nc, { prefix: v.prefix });
      await nc.close();
      say(`streams ${report.streams.map((s) => `${s.name} ${s.action}`).join(", ")}; ${report.artifacts} and ${report.masterKv} ready`);

      if (v.demo) {
        site = await startDemoSite(v.demoPort);
        say(`demo site at ${site.url}`);
      }
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        NATS_URL: natsUrlFor, TROUPE_NATS_CA: natsCa, TROUPE_DATA_DIR: v.dataDir, TROUPE_PREFIX: v.prefix,
        // The worker and the master both read TROUPE_HEARTBEAT_MS.
        TROUPE_HEARTBEAT_MS: String(v.heartbeatMs),
        // JSON lines, which `up` formats and prefixes itself (a TROUPE_LOG_FORMAT=pretty of the user's would be formatted twice).
        TROUPE_LOG_FORMAT: "json",
        TROUPE_NATS_WS_PORT: String(v.wsPort),
        TROUPE_UI_HOST: v.uiHost, TROUPE_UI_PORT: String(v.uiPort), TROUPE_UI_BUILD: "false", TROUPE_NATS_MONITOR_URL: `http://127.0.0.1:${v.monitorPort}`,
        TROUPE_MASTER_PORT: String(v.masterPort), TROUPE_PROJECTOR_PORT: String(v.projectorPort),
      };
      // A service that exits on its own is started again, as a supervisor would: a worker exits 1 for that when its
      // NATS connection is closed for good, and a projector stops on a full disk; under `up` they stayed down.
      let refusedSettings!: (name: string) => void;
      const refused = new Promise<string>((r) => (refusedSettings = r));
      const run = (name: string, args: string[], extra: NodeJS.ProcessEnv = {}) => {
        const backoff = new RestartBackoff();
        const start = () => {
          backoff.started();
          const p = startProcess(name, process.execPath, [TROUPE, ...args], { ...env, ...extra }, logFor(name));
          procs.push(p);
          void p.exited.then((code) => {
            if (shuttingDown) return;
            procs.splice(procs.indexOf(p), 1);
            // Exit 2 is a refused setting (a UsageError: its reason is in its lines above). Started again it refuses
            // again, for ever (a dashboard with a too-short TROUPE_UI_TOKEN restarted every 30 s under a "dashboard:"
            // line that said it was up; a review): the stack stops, as a setting `up` itself refuses stops it.
            if (code === 2) {
              refusedSettings(name);
              return;
            }
            // One that ran a while starts again soon; one that keeps dying waits longer each time.
            backoff.exited();
            const waitMs = backoff.next();
            say(`${name} exited unexpectedly (code ${code}); starting it again in ${waitMs / 1000} s`);
            const t = setTimeout(() => {
              restarts.delete(t);
              if (!shuttingDown) start();
            }, waitMs);
            restarts.add(t);
          });
          return p;
        };
        return start();
      };
      run("master", ["master"]);
      run("projector", ["projector"]);
      run("ui", ["ui"]);
      for (let i = 1; i <= v.workers; i++) {
        const nn = String(i).padStart(2, "0");
        // It finds its own user in the data dir's worker-users.json (workerCredential): no password on a command line,
        // and none from this shell (a shell that sourced credentials.env would have it run as the shared user).
        run(`worker-${i}`, ["worker"], {
          [userVar("worker")]: undefined, [passwordVar("worker")]: undefined,
          TROUPE_WORKER_NAME: `Worker Node Local ${nn}`, TROUPE_WORKER_ID: `wn-local-${nn}`, TROUPE_WORKER_PORT: "0",
          TROUPE_MAX_JOBS: String(v.maxJobs), TROUPE_DRAIN_GRACE_MS: String(WORKER_DRAIN_GRACE_MS),
          // The whole stack shares this machine, so machine-wide CPU says little about a local
          // worker's own load; its slot count is the limit unless TROUPE_MAX_CPU says otherwise.
          TROUPE_MAX_CPU: process.env.TROUPE_MAX_CPU ?? "100",
          ...(v.demo ? { TROUPE_ALLOWED_TARGETS: "127.0.0.1" } : {}),
          // Demo jobs ask for this label: workers that joined from other machines cannot reach the demo site.
          TROUPE_WORKER_LABELS: [process.env.TROUPE_WORKER_LABELS, LOCAL_LABEL].filter(Boolean).join(","),
        });
      }
      if (v.demo && site) {
        if (v.workers === 0) say(`demo jobs ask for the label "${LOCAL_LABEL}" (the demo site is on this machine's loopback): with --workers 0 they wait for a worker on this machine started with --labels ${LOCAL_LABEL} --allowed-targets 127.0.0.1 (the SSRF guard refuses loopback otherwise)`);
        const ui = await connectAs({ url: natsUrlFor, ca: natsCa, role: "ui", dataDir: v.dataDir, name: "troupe-up-demo" });
        const stop = startDemoJobs(ui, { site: site.url, perMinute: v.demoRate, prefix: v.prefix, log: logFor("demo"), workerLabels: [LOCAL_LABEL] });
        stopDemo = () => {
          stop();
          void ui.close();
        };
      }
      say(`dashboard: http://${v.uiHost === "0.0.0.0" ? "127.0.0.1" : v.uiHost}:${v.uiPort}   NATS: ${natsUrl}${tls ? ` (TLS${natsCa ? `, CA ${natsCa}` : ""})` : ""} (ws ${v.wsPort})   Ctrl-C stops everything`);
      void superviseNats(nats);
      const listening = new AbortController();
      const why = await Promise.race([shutdownSignal({ until: listening.signal }), refused.then((name) => ({ refused: name }))]);
      if (typeof why === "object") {
        // As after a Ctrl-C: one more while the stack stops ends up at once (the listener swallowed it).
        listening.abort();
        say(`${why.refused} refused its settings (exit 2; why is in its lines above): starting it again would not help, so the stack stops; fix the setting and run up again`);
        await stopAll();
        say("stopped");
        return 2;
      }
      say(`stopping (${why}) ...`);
      await stopAll();
      say("stopped");
      return 0;
    } catch (e) {
      say(`start-up failed: ${(e as Error).message}`);
      await stopAll();
      throw e;
    }
  },
});
