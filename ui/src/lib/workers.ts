import { workerPresence, type WorkerStatusView, type WorkerView } from "@troupe/events";

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
  };
}

export function workerDto(w: WorkerView, nowMs: number, suspectAfterMs: number): WorkerDto {
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
    },
  };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

export type WorkerSort = "name" | "status" | "cpu" | "memory" | "load" | "successRate" | "lastSeen";
export const WORKER_SORTS: readonly WorkerSort[] = ["name", "status", "cpu", "memory", "load", "successRate", "lastSeen"];

const STATUS_ORDER: Record<WorkerStatusView, number> = { busy: 0, online: 1, draining: 2, suspect: 3, lost: 4, offline: 5 };

/** Filters and sorts workers for the Workers page (status filter uses the presence at `nowMs`). */
export function selectWorkers(
  workers: Iterable<WorkerView>,
  q: { status?: string; type?: string; search?: string; sort?: WorkerSort },
  nowMs: number,
  suspectAfterMs: number,
): { worker: WorkerView; status: WorkerStatusView }[] {
  const search = q.search?.trim().toLowerCase();
  const out: { worker: WorkerView; status: WorkerStatusView }[] = [];
  for (const w of workers) {
    const status = workerPresence(w, nowMs, suspectAfterMs);
    if (q.status && status !== q.status) continue;
    if (q.type && w.type !== q.type) continue;
    if (search && !w.name.toLowerCase().includes(search) && !w.id.toLowerCase().includes(search)) continue;
    out.push({ worker: w, status });
  }
  const by: Record<WorkerSort, (a: (typeof out)[number], b: (typeof out)[number]) => number> = {
    name: (a, b) => a.worker.name.localeCompare(b.worker.name),
    status: (a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || a.worker.name.localeCompare(b.worker.name),
    cpu: (a, b) => b.worker.cpu - a.worker.cpu,
    memory: (a, b) => b.worker.memory - a.worker.memory,
    load: (a, b) => b.worker.currentJobs / (b.worker.maxJobs || 1) - a.worker.currentJobs / (a.worker.maxJobs || 1),
    successRate: (a, b) => b.worker.successRate - a.worker.successRate,
    lastSeen: (a, b) => Date.parse(b.worker.lastSeen ?? "0") - Date.parse(a.worker.lastSeen ?? "0"),
  };
  return out.sort(by[q.sort ?? "status"]);
}
