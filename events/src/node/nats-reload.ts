import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { natsConfFileFor } from "./nats-conf.ts";
import { pidAlive } from "./pid-alive.ts";

/**
 * A running nats-server started by troupe, recorded in `<dataDir>/nats-server.json`, so a later
 * command (`troupe worker-user`) can rewrite its config and make it reload (SIGHUP) without a restart.
 */
export interface RunningNatsRecord {
  pid: number;
  /** The nats.conf it was rendered from, and the prefix. */
  source: string;
  prefix: string;
  monitorUrl: string;
}

export const runningNatsPath = (dataDir: string) => join(dataDir, "nats-server.json");

export function recordRunningNats(dataDir: string, r: RunningNatsRecord): void {
  writeFileSync(runningNatsPath(dataDir), `${JSON.stringify(r)}\n`);
}

/** Removes the record if it still names `pid` (a later start may have written its own). */
export function forgetRunningNats(dataDir: string, pid: number | undefined): void {
  const r = readRecord(dataDir);
  if (r && r.pid === pid) rmSync(runningNatsPath(dataDir), { force: true });
}

function readRecord(dataDir: string): RunningNatsRecord | null {
  const file = runningNatsPath(dataDir);
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, "utf8")) as Partial<RunningNatsRecord>;
    if (Number.isInteger(r.pid) && (r.pid as number) > 0 && typeof r.source === "string" && typeof r.prefix === "string" && typeof r.monitorUrl === "string") return r as RunningNatsRecord;
  } catch {
    // Unreadable: treated as no record (the caller says nats-server is not known to run).
  }
  return null;
}

/** Is `pid` a live nats-server? (On Linux the command line is checked, so a reused pid is not signalled.) */
function isNatsServer(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync("/proc/self/cmdline")) return true;
  try {
    // argv[0] is the binary (TROUPE_NATS_SERVER may name another build, e.g. nats-server-2.10).
    return /(^|\/)nats-server[^/]*$/.test(readFileSync(cmdline, "utf8").split("\0")[0] ?? "");
  } catch {
    return false;
  }
}

async function configLoadTime(monitorUrl: string): Promise<string> {
  const r = await fetch(`${monitorUrl}/varz`);
  if (!r.ok) throw new Error(`${monitorUrl}/varz answered ${r.status}`);
  const v = (await r.json()) as { config_load_time?: unknown };
  if (typeof v.config_load_time !== "string") throw new Error(`${monitorUrl}/varz has no config_load_time`);
  return v.config_load_time;
}

export type ReloadOutcome = { reloaded: true; pid: number } | { reloaded: false; reason: string };

/**
 * Rewrites the config of the nats-server recorded as running from `dataDir` and makes it reload
 * it (SIGHUP), waiting until its /varz shows a new load time. Not running: `reloaded: false`
 * (the next start reads the new config). A reload nats-server refused (it keeps the old config
 * and logs why) is an error.
 */
export async function reloadNatsServer(dataDir: string, o: { timeoutMs?: number } = {}): Promise<ReloadOutcome> {
  const r = readRecord(dataDir);
  if (!r || !isNatsServer(r.pid)) return { reloaded: false, reason: `no nats-server started by troupe is running from ${dataDir}` };
  natsConfFileFor(r.source, r.prefix, dataDir);
  const before = await configLoadTime(r.monitorUrl).catch((e: Error) => {
    throw new Error(`cannot reach nats-server's monitoring at ${r.monitorUrl} to confirm a reload: ${e.message}`, { cause: e });
  });
  process.kill(r.pid, "SIGHUP");
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  while (Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 50));
    const now = await configLoadTime(r.monitorUrl).catch(() => before);
    if (now !== before) return { reloaded: true, pid: r.pid };
  }
  throw new Error(`nats-server (pid ${r.pid}) did not load the new config within ${o.timeoutMs ?? 10_000} ms: its log says why (it keeps the old users until then)`);
}
