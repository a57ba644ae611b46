import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { withFileLock } from "./file-lock.ts";
import { natsConfFileFor, writeNatsConf } from "./nats-conf.ts";
import { writePrivateFile } from "./private-file.ts";

/**
 * A running nats-server started by troupe, recorded in `<dataDir>/nats-server.json`, so a later
 * command (`troupe worker-user`) can rewrite its config and make it reload (SIGHUP) without a restart.
 */
export interface RunningNatsRecord {
  pid: number;
  /** /varz `server_id`: new at every start, so a stale record (or a reused pid) is never signalled. */
  serverId: string;
  /** The nats.conf it was rendered from, and the prefix. */
  source: string;
  prefix: string;
  monitorUrl: string;
  /** false when it runs without the shared worker user (absent: with it). */
  sharedWorkerUser?: boolean;
}

export const runningNatsPath = (dataDir: string) => join(dataDir, "nats-server.json");

/**
 * Held while worker-users.json, the rendered config and the running server's record change together:
 * by `troupe worker-user`, and by a starting nats-server between rendering and recording.
 */
export const natsConfigLockPath = (dataDir: string) => join(dataDir, "nats-config.lock");

export const withNatsConfigLock = <T>(dataDir: string, fn: () => Promise<T> | T) =>
  withFileLock(natsConfigLockPath(dataDir), fn, { what: `the NATS config of ${dataDir}` });

export function recordRunningNats(dataDir: string, r: RunningNatsRecord): void {
  writePrivateFile(runningNatsPath(dataDir), `${JSON.stringify(r)}\n`);
}

/** Removes the record if it still names `pid` (a later start may have written its own). */
export function forgetRunningNats(dataDir: string, pid: number | undefined): void {
  const r = readRecord(dataDir);
  if (r && r.pid === pid) rmSync(runningNatsPath(dataDir), { force: true });
}

const renderOptionsOf = (r: Pick<RunningNatsRecord, "sharedWorkerUser">) => (r.sharedWorkerUser === false ? { sharedWorkerUser: false } : {});

function readRecord(dataDir: string): RunningNatsRecord | null {
  const file = runningNatsPath(dataDir);
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, "utf8")) as Partial<RunningNatsRecord>;
    if (Number.isInteger(r.pid) && (r.pid as number) > 0 && typeof r.serverId === "string" && typeof r.source === "string" && typeof r.prefix === "string" && typeof r.monitorUrl === "string"
      && (r.sharedWorkerUser === undefined || typeof r.sharedWorkerUser === "boolean")) return r as RunningNatsRecord;
  } catch {
    // Unreadable: treated as no record (the caller says nats-server is not known to run).
  }
  return null;
}

/** What /varz says of the server at a monitoring URL (2 s at most). */
export async function natsVarz(monitorUrl: string): Promise<{ serverId: string; configLoadTime: string }> {
  const r = await fetch(`${monitorUrl}/varz`, { signal: AbortSignal.timeout(2000) });
  if (!r.ok) throw new Error(`${monitorUrl}/varz answered ${r.status}`);
  const v = (await r.json()) as { server_id?: unknown; config_load_time?: unknown };
  if (typeof v.server_id !== "string" || typeof v.config_load_time !== "string") throw new Error(`${monitorUrl}/varz has no server_id or config_load_time`);
  return { serverId: v.server_id, configLoadTime: v.config_load_time };
}

/** SIGHUP to the server, then waits until its /varz shows a new config load time. */
async function signalReload(r: RunningNatsRecord, before: string, timeoutMs: number): Promise<void> {
  process.kill(r.pid, "SIGHUP");
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 50));
    const now = await natsVarz(r.monitorUrl).then((v) => v.configLoadTime, () => before);
    if (now !== before) return;
  }
  throw new Error(`nats-server (pid ${r.pid}) did not load its new config within ${timeoutMs} ms: its log says why, e.g. a change of nats.conf since it started that needs a restart (until then it keeps the users it had)`);
}

export type ReloadOutcome = { reloaded: true; pid: number } | { reloaded: false; reason: string };

/**
 * Rewrites the config of the nats-server recorded as running from `dataDir` and makes it reload
 * it (SIGHUP), waiting until its /varz shows a new load time. Not running (no record, or the
 * server at the recorded monitoring URL is another start): `reloaded: false`, and the next start
 * reads the new config. A reload nats-server refused (it keeps the old config and logs why) is an
 * error. Call it holding `withNatsConfigLock`, with the change it should load.
 */
export async function reloadNatsServer(dataDir: string, o: { timeoutMs?: number } = {}): Promise<ReloadOutcome> {
  const r = readRecord(dataDir);
  const notRunning = { reloaded: false, reason: `no nats-server started by troupe is running from ${dataDir}` } as const;
  if (!r) return notRunning;
  let before;
  try {
    before = await natsVarz(r.monitorUrl);
  } catch {
    return notRunning;
  }
  // Another server answers there (this one stopped without removing its record, and another started): not ours to signal.
  if (before.serverId !== r.serverId) return notRunning;
  natsConfFileFor(r.source, r.prefix, dataDir, renderOptionsOf(r));
  await signalReload(r, before.configLoadTime, o.timeoutMs ?? 10_000);
  return { reloaded: true, pid: r.pid };
}

/**
 * For a server that has just become healthy: records it, then — if worker users changed while it
 * started (a `troupe worker-user add` that found no record yet) — makes it load them.
 */
export async function recordStartedNats(dataDir: string, r: Omit<RunningNatsRecord, "serverId">, startedConf: string): Promise<void> {
  const v = await natsVarz(r.monitorUrl);
  await withNatsConfigLock(dataDir, async () => {
    const record = { ...r, serverId: v.serverId };
    recordRunningNats(dataDir, record);
    if (writeNatsConf(r.source, r.prefix, dataDir, renderOptionsOf(r)).text !== startedConf) await signalReload(record, v.configLoadTime, 10_000);
  });
}
