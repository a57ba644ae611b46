import { workerPresence, type WorkerStatusView, type WorkerView } from "@troupe/events";
import { RECENT_MINUTES, recentRate, type RecentBuckets } from "./recent.ts";

/**
 * The public JSON shape of a worker (`GET /api/workers`), following the seed:
 * identity and load at the top, `connection` and `performance` grouped. Built
 * from the shared WorkerView, so the API, the pages and the live browser agree.
 */
export interface WorkerDto {
  id: string;
  name: string;
  type: string;
  version: string;
  status: WorkerStatusView;
  currentJobs: number;
  maxJobs: number;
  jobIds: string[];
  capabilities: WorkerView["capabilities"] | null;
  connection: { ip: string; port: number; lastSeen: string | null; registeredAt: string | null };
  performance: {
    cpuUsage: number;
    memoryUsage: number;
    memoryTotal: number | null;
    diskUsage: number;
    networkUsage: number;
    successRate: number;
    averageJobDuration: number;
    averageResponseTime: number;
    jobsCompleted: number;
    jobsFailed: number;
    /**
     * The same attempts over the recent window (ui/src/lib/recent.ts): the minute in progress and the 59 before it,
     * from the projector's per-minute series, as of the answer. `successRate` null without attempts there.
     */
    recent: { windowMinutes: number; from: string; jobsCompleted: number; jobsFailed: number; successRate: number | null };
  };
}

/** `recent`: the worker's buckets of the recent window (`Reads.recentOutcomes`; undefined: none). */
export function workerDto(w: WorkerView, nowMs: number, suspectAfterMs: number, recent: RecentBuckets | undefined): WorkerDto {
  const r = recentRate(recent, nowMs);
  return {
    id: w.id,
    name: w.name,
    type: w.type,
    version: w.version,
    status: workerPresence(w, nowMs, suspectAfterMs),
    currentJobs: w.currentJobs,
    maxJobs: w.maxJobs,
    jobIds: w.jobIds,
    capabilities: w.capabilities ?? null,
    connection: { ip: w.ip, port: w.port, lastSeen: w.lastSeen ?? null, registeredAt: w.registeredAt ?? null },
    performance: {
      cpuUsage: w.cpu,
      memoryUsage: w.memory,
      memoryTotal: w.memoryTotal ?? null,
      diskUsage: w.disk,
      networkUsage: w.network,
      successRate: round1(w.successRate),
      averageJobDuration: Math.round(w.averageJobDuration),
      averageResponseTime: Math.round(w.averageResponseTime),
      jobsCompleted: w.jobsCompleted,
      jobsFailed: w.jobsFailed,
      recent: {
        windowMinutes: RECENT_MINUTES, from: new Date(r.fromMs).toISOString(), jobsCompleted: r.completed, jobsFailed: r.failed,
        successRate: r.successRate === null ? null : round1(r.successRate),
      },
    },
  };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

export type WorkerSort = "name" | "status" | "cpu" | "memory" | "load" | "successRate" | "lastSeen";
export const WORKER_SORTS: readonly WorkerSort[] = ["name", "status", "cpu", "memory", "load", "successRate", "lastSeen"];
/** The sort menu's words (it showed the keys, "successRate"). */
export const SORT_LABELS: Record<WorkerSort, string> = { name: "name", status: "status", cpu: "CPU", memory: "memory", load: "load", successRate: "success rate", lastSeen: "last seen" };

const STATUS_ORDER: Record<WorkerStatusView, number> = { busy: 0, online: 1, draining: 2, suspect: 3, lost: 4, offline: 5 };

/**
 * A worker that is offline, lost or suspect and has not been heard from for `retireAfterMs` (0 = never): a
 * fleet whose machines come and go would otherwise list every machine it ever had, and a row made by
 * heartbeats alone (never registered, so never declared lost) would stay suspect for ever. Its row,
 * statistics and API entry stay; the lists and the Overview's counts leave it out unless asked (docs/ui.md,
 * Retired workers).
 */
export function isRetired(w: WorkerView, status: WorkerStatusView, nowMs: number, retireAfterMs: number): boolean {
  if (retireAfterMs <= 0 || (status !== "offline" && status !== "lost" && status !== "suspect")) return false;
  const last = Date.parse(w.lastSeen ?? w.registeredAt ?? "");
  return !Number.isFinite(last) || nowMs - last > retireAfterMs;
}

/** How many of `workers` are retired at `nowMs`. */
export function countRetired(workers: Iterable<WorkerView>, nowMs: number, suspectAfterMs: number, retireAfterMs: number): number {
  if (retireAfterMs <= 0) return 0;
  let n = 0;
  for (const w of workers) if (isRetired(w, workerPresence(w, nowMs, suspectAfterMs), nowMs, retireAfterMs)) n++;
  return n;
}

/** Filters and sorts workers for the Workers page (status filter uses the presence at `nowMs`). */
export interface WorkerRow {
  worker: WorkerView;
  status: WorkerStatusView;
}

/**
 * `cache` keeps the row object of a worker whose view and status did not
 * change, so a keyed list re-renders only the cards that did.
 */
export function selectWorkers(
  workers: Iterable<WorkerView>,
  q: {
    status?: string; type?: string; search?: string; sort?: WorkerSort; retireAfterMs?: number; showRetired?: boolean;
    /** A worker's buckets of the recent window: "success rate" sorts by its recent rate. */
    recent?: (workerId: string) => RecentBuckets | undefined;
  },
  nowMs: number,
  suspectAfterMs: number,
  cache?: Map<string, WorkerRow>,
): WorkerRow[] {
  const search = q.search?.trim().toLowerCase();
  const out: WorkerRow[] = [];
  for (const w of workers) {
    const status = workerPresence(w, nowMs, suspectAfterMs);
    if (q.status && status !== q.status) continue;
    if (!q.showRetired && isRetired(w, status, nowMs, q.retireAfterMs ?? 0)) continue;
    if (q.type && w.type !== q.type) continue;
    if (search && !w.name.toLowerCase().includes(search) && !w.id.toLowerCase().includes(search)) continue;
    let row = cache?.get(w.id);
    if (!row || row.worker !== w || row.status !== status) {
      row = { worker: w, status };
      cache?.set(w.id, row);
    }
    out.push(row);
  }
  // Sorting by success rate sorts by the recent rate, the figure the cards show first and judge by (the all-time
  // one breaks ties); a worker without attempts in the window ("–") goes after every worker with some.
  const recentOf = new Map<string, number>();
  if (q.sort === "successRate") for (const r of out) recentOf.set(r.worker.id, recentRate(q.recent?.(r.worker.id), nowMs).successRate ?? -1);
  // Plain comparisons, not localeCompare: this runs once per animation frame over every worker.
  const byName = (a: (typeof out)[number], b: (typeof out)[number]) => (a.worker.name < b.worker.name ? -1 : a.worker.name > b.worker.name ? 1 : 0);
  const by: Record<WorkerSort, (a: (typeof out)[number], b: (typeof out)[number]) => number> = {
    name: byName,
    status: (a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || byName(a, b),
    cpu: (a, b) => b.worker.cpu - a.worker.cpu,
    memory: (a, b) => b.worker.memory - a.worker.memory,
    load: (a, b) => b.worker.currentJobs / (b.worker.maxJobs || 1) - a.worker.currentJobs / (a.worker.maxJobs || 1),
    successRate: (a, b) => recentOf.get(b.worker.id)! - recentOf.get(a.worker.id)! || b.worker.successRate - a.worker.successRate,
    lastSeen: (a, b) => Date.parse(b.worker.lastSeen ?? "0") - Date.parse(a.worker.lastSeen ?? "0"),
  };
  return out.sort(by[q.sort ?? "status"]);
}
