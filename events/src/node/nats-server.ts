import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ROLES, passwordVar, userVar, type Credential, type NatsRole } from "./credentials.ts";
import { DEFAULT_PREFIX } from "../subjects.ts";
import { writeNatsConf } from "./nats-conf.ts";
import { forgetRunningNats, recordStartedNats, withNatsConfigLock } from "./nats-reload.ts";
import { dieWithParent } from "./parent-death.ts";
import type { TlsFiles } from "./tls-certs.ts";

/** The repository's nats.conf. */
export const NATS_CONF = resolve(fileURLToPath(new URL("../../../nats.conf", import.meta.url)));

export interface NatsServerOptions {
  dataDir: string;
  credentials: Record<NatsRole, Credential>;
  host?: string;
  port?: number;
  wsHost?: string;
  wsPort?: number;
  monitorHost?: string;
  monitorPort?: number;
  serverName?: string;
  configPath?: string;
  /** Subject prefix the stack runs under; another than `troupe` runs a copy of the config with its permissions renamed (nats-conf.ts). */
  prefix?: string;
  /** false: run without the shared worker user (every worker on its own user, troupe worker-user). */
  sharedWorkerUser?: boolean;
  /** JetStream's storage limit in bytes (nats.conf's max_file_store); unset: nats-server's default, 75 % of the disk's free space at start. */
  maxStoreBytes?: number;
  /** Where server logs go: inherit the terminal, or a callback per line. */
  onLog?: (line: string) => void;
  binary?: string;
  /**
   * Join a cluster: listen for routes on `host:port` and solicit `routes` (nats://host:port of the
   * other members), both authenticated with `credential` (the same on every member; a server
   * without it cannot join). Written to `<dataDir>/nats-server.conf` (mode 0600), which includes
   * nats.conf, so nats.conf stays one file for every case and no password is on a command line.
   * Routes are encrypted when `tls` has a CA (below); otherwise keep the cluster port on a private network.
   */
  cluster?: { name: string; host?: string; port: number; routes: string[]; credential: Credential };
  /**
   * TLS for clients (every client connection must then be TLS; the WebSocket
   * and monitoring listeners are not affected). With `caFile`, cluster routes
   * are TLS too, and each member must present a certificate signed by that CA.
   */
  tls?: TlsFiles;
  /** Run in its own process group, so a terminal's Ctrl-C does not reach it directly (the caller stops it last); it then gets SIGTERM if the caller dies abruptly (see parent-death.ts). */
  ownProcessGroup?: boolean;
  /** SIGTERM to nats-server if the caller dies abruptly (implied by ownProcessGroup). Only for a caller's main thread: the kernel signals when the spawning thread ends. */
  dieWithParent?: boolean;
}

export interface RunningNatsServer {
  url: string;
  wsUrl: string;
  monitorUrl: string;
  process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

/** A free TCP port on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? res(addr.port) : rej(new Error("no port"))));
    });
  });
}

/** Finds nats-server or explains how to install it. */
export function findNatsServer(binary = process.env.TROUPE_NATS_SERVER ?? "nats-server"): string {
  const r = spawnSync(binary, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(`nats-server not found (${binary}). Install it: apt-get install -y nats-server  (or run scripts/setup.sh as root)`);
  }
  return binary;
}

/** Variables nats.conf reads. */
export function natsConfEnv(o: Required<Pick<NatsServerOptions, "host" | "port" | "wsHost" | "wsPort" | "monitorHost" | "monitorPort" | "serverName">> & Pick<NatsServerOptions, "maxStoreBytes"> & { storeDir: string; credentials: Record<NatsRole, Credential> }): Record<string, string> {
  const env: Record<string, string> = {
    TROUPE_NATS_SERVER_NAME: o.serverName,
    TROUPE_NATS_HOST: o.host,
    TROUPE_NATS_PORT: String(o.port),
    TROUPE_NATS_WS_HOST: o.wsHost,
    TROUPE_NATS_WS_PORT: String(o.wsPort),
    TROUPE_NATS_MONITOR_LISTEN: `${o.monitorHost}:${o.monitorPort}`,
    TROUPE_NATS_STORE_DIR: o.storeDir,
    // -1 is nats-server's "work it out" (75 % of the free disk); 0 would be no storage at all.
    TROUPE_NATS_MAX_STORE: o.maxStoreBytes !== undefined ? String(o.maxStoreBytes) : "-1",
  };
  for (const role of ROLES) {
    env[userVar(role)] = o.credentials[role].user;
    env[passwordVar(role)] = o.credentials[role].password;
  }
  return env;
}

/** Polls the monitor's /healthz until JetStream is ready (it times out for a while after a restart). */
export async function waitForHealthz(monitorUrl: string, timeoutMs = 20_000, exited?: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void exited?.then(() => (dead = true));
  let last = "";
  while (Date.now() < deadline) {
    if (dead) throw new Error("nats-server exited during start-up (see its log above)");
    try {
      const r = await fetch(`${monitorUrl}/healthz?js-enabled-only=true`);
      if (r.ok) return;
      last = `${r.status} ${await r.text()}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server not healthy at ${monitorUrl}/healthz after ${timeoutMs} ms: ${last}`);
}

/** A route URL with the route user in it (nats-server authenticates solicited routes from the URL); one that names a user keeps it. */
export function routeWithCredential(route: string, c: Credential): string {
  const u = new URL(route);
  if (!u.username) {
    u.username = encodeURIComponent(c.user);
    u.password = encodeURIComponent(c.password);
  }
  return u.toString().replace(/\/$/, "");
}

/** The TLS handshake may take this long (nats-server's default, 0.5 s, is short for workers on far-away networks). */
const TLS_TIMEOUT_S = 5;

/**
 * Writes `<dataDir>/nats-server.conf`: the rendered nats.conf beside it (included by a relative path:
 * 2.9 has no absolute includes) plus what this start adds, a `tls {}` block
 * for clients and a `cluster {}` block (with TLS of its own when there is a CA).
 */
export function writeServerConf(dataDir: string, natsConf: string, o: { cluster?: NonNullable<NatsServerOptions["cluster"]> & { host: string }; tls?: TlsFiles }): string {
  const file = resolve(join(dataDir, "nats-server.conf"));
  const q = (v: string) => JSON.stringify(v);
  const include = relative(dirname(file), resolve(natsConf));
  // nats-server reads an include's path without unescaping it.
  if (/["\\\n]/.test(include)) throw new Error(`cannot include ${natsConf} from ${file}: the path between them holds a quote, backslash or line break nats-server cannot read; use another data dir`);
  const tlsBlock = (t: TlsFiles, indent: string, routes: boolean) => [
    `${indent}tls {`,
    `${indent}  cert_file: ${q(resolve(t.certFile))}`,
    `${indent}  key_file: ${q(resolve(t.keyFile))}`,
    ...(t.caFile ? [`${indent}  ca_file: ${q(resolve(t.caFile))}`] : []),
    // Routes: both ends show a certificate of the cluster's CA.
    ...(routes ? [`${indent}  verify: true`] : []),
    `${indent}  timeout: ${TLS_TIMEOUT_S}`,
    `${indent}}`,
  ];
  const c = o.cluster;
  const text = [
    "# Written by troupe at each start of nats-server: nats.conf plus this start's TLS and cluster settings. Edits are lost.",
    `include "${include}"`,
    ...(o.tls ? tlsBlock(o.tls, "", false) : []),
    ...(c
      ? [
        "cluster {",
        `  name: ${q(c.name)}`,
        `  listen: ${q(`${c.host.includes(":") ? `[${c.host}]` : c.host}:${c.port}`)}`,
        `  authorization { user: ${q(c.credential.user)}, password: ${q(c.credential.password)} }`,
        `  routes: [${c.routes.map((r) => `\n    ${q(routeWithCredential(r, c.credential))}`).join("")}${c.routes.length ? "\n  " : ""}]`,
        ...(o.tls?.caFile ? tlsBlock(o.tls, "  ", true) : []),
        "}",
      ]
      : []),
    "",
  ].join("\n");
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/**
 * Throws, naming the port and what to check, when one of them cannot be listened on
 * (`move`: how to choose another, e.g. the flag). Port 0 (any free one) is not checked.
 */
export async function assertPortsFree(host: string, ports: [port: number, what: string, move?: string][], o: { owner?: string } = {}): Promise<void> {
  for (const [port, what, move] of ports) {
    if (port === 0) continue;
    const err = await new Promise<NodeJS.ErrnoException | null>((res) => {
      const srv = createServer();
      srv.once("error", (e: NodeJS.ErrnoException) => res(e));
      srv.listen({ port, host, exclusive: true }, () => srv.close(() => res(null)));
    });
    if (!err) continue;
    // The address is the problem, not the port: no such name, or not one of this machine's (a walkthrough was told to move the port).
    if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN" || err.code === "EADDRNOTAVAIL") {
      throw new Error(`cannot start ${o.owner ?? "nats-server"}: cannot listen on ${host} for its ${what} port (${err.code}): ${err.code === "EADDRNOTAVAIL" ? "not an address of this machine" : "no such host name"}; give a local address (0.0.0.0 for all, 127.0.0.1 for this machine only) in the host flag or its TROUPE_NATS_*HOST variable`);
    }
    const hint = err.code === "EADDRINUSE" ? ` — something still holds it (another nats-server, or troupe?): \`ss -ltnp | grep :${port}\` shows what` : "";
    throw new Error(`cannot start ${o.owner ?? "nats-server"}: its ${what} port ${host}:${port} is not available (${err.code ?? err.message})${hint}${move ? `; or choose another (${move.startsWith("--") ? move : `${move}, or the command's flag for it`})` : ""}`);
  }
}

/** Starts `nats-server -c nats.conf` with the variables set and waits until healthy. */
export async function startNatsServer(o: NatsServerOptions): Promise<RunningNatsServer> {
  const binary = findNatsServer(o.binary);
  const storeDir = resolve(join(o.dataDir, "nats"));
  mkdirSync(storeDir, { recursive: true });
  const cfg = {
    host: o.host ?? "0.0.0.0",
    port: o.port ?? 4222,
    wsHost: o.wsHost ?? "0.0.0.0",
    wsPort: o.wsPort ?? 4223,
    monitorHost: o.monitorHost ?? "127.0.0.1",
    monitorPort: o.monitorPort ?? 8222,
    serverName: o.serverName ?? "troupe",
  };
  const env = { ...process.env, ...natsConfEnv({ ...cfg, storeDir, credentials: o.credentials, ...(o.maxStoreBytes !== undefined ? { maxStoreBytes: o.maxStoreBytes } : {}) }) };
  const source = resolve(o.configPath ?? NATS_CONF);
  // Rendered under the lock `troupe worker-user` holds while it changes users, and kept, to notice one that lands before the record below.
  const [conf, startedConf] = await withNatsConfigLock(o.dataDir, () => {
    const { file, text } = writeNatsConf(source, o.prefix, o.dataDir, o.sharedWorkerUser === false ? { sharedWorkerUser: false } : {});
    return [file, text] as const;
  });
  const serverArgs = ["-c", o.cluster || o.tls
    ? writeServerConf(o.dataDir, conf, { ...(o.cluster ? { cluster: { ...o.cluster, host: o.cluster.host ?? cfg.host } } : {}), ...(o.tls ? { tls: o.tls } : {}) })
    : conf];
  // A port already taken (most often by an earlier nats-server left running) would let that one answer our
  // health check, and we would call "ready" a server that is about to exit: say so before starting.
  await assertPortsFree(cfg.host, [[cfg.port, "client", "TROUPE_NATS_PORT"]]);
  if (o.cluster) await assertPortsFree(o.cluster.host ?? cfg.host, [[o.cluster.port, "cluster", "TROUPE_NATS_CLUSTER_PORT"]]);
  await assertPortsFree(cfg.wsHost, [[cfg.wsPort, "WebSocket", "TROUPE_NATS_WS_PORT"]]);
  await assertPortsFree(cfg.monitorHost, [[cfg.monitorPort, "monitoring", "TROUPE_NATS_MONITOR_PORT"]]);
  const [cmd, args] = o.ownProcessGroup || o.dieWithParent ? dieWithParent(binary, serverArgs) : [binary, serverArgs];
  const child = spawn(cmd, args, {
    env,
    stdio: o.onLog ? ["ignore", "pipe", "pipe"] : ["ignore", "inherit", "inherit"],
    detached: o.ownProcessGroup ?? false,
  });
  if (o.onLog) {
    const onLog = o.onLog;
    let buf = "";
    const feed = (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLog(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    };
    child.stdout?.on("data", feed);
    child.stderr?.on("data", feed);
  }
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  const connectHost = cfg.host === "0.0.0.0" ? "127.0.0.1" : cfg.host;
  const server: RunningNatsServer = {
    url: `nats://${connectHost}:${cfg.port}`,
    wsUrl: `ws://${cfg.wsHost === "0.0.0.0" ? "127.0.0.1" : cfg.wsHost}:${cfg.wsPort}`,
    monitorUrl: `http://${cfg.monitorHost}:${cfg.monitorPort}`,
    process: child,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
  try {
    await waitForHealthz(server.monitorUrl, 20_000, exited);
  } catch (e) {
    await server.stop("SIGKILL");
    throw e;
  }
  // For `troupe worker-user`, which rewrites the config and makes this server reload it.
  if (child.pid !== undefined) {
    const pid = child.pid;
    try {
      await recordStartedNats(o.dataDir, { pid, source, prefix: o.prefix ?? DEFAULT_PREFIX, monitorUrl: server.monitorUrl, ...(o.sharedWorkerUser === false ? { sharedWorkerUser: false } : {}) }, startedConf);
    } catch (e) {
      await server.stop("SIGKILL");
      throw new Error(`nats-server started, but its per-worker users could not be brought up to date: ${(e as Error).message}`, { cause: e });
    }
    void exited.then(() => forgetRunningNats(o.dataDir, pid));
  }
  return server;
}
