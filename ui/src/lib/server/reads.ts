import type {
  FleetSeriesPoint, FleetStats, JobListQuery, JobPage, JobView, ProjectorStatus, QueueNeed, WorkerFilter, WorkerJob, WorkerSeriesPoint, WorkerView,
} from "@troupe/events";
import { openReadModels, ReadModelQueryError } from "../../../../services/projector/src/read-models.ts";
import { ApiError } from "./http.ts";
import { recentByWorker, recentFrom, type RecentBuckets } from "../recent.ts";

/** How far back the charts look. */
export const SERIES_WINDOW_MS = 60 * 60_000;

/**
 * The read side the UI uses: the projector's SQLite read models (the projector
 * owns the schema; the UI never writes SQL of its own). Bad queries become
 * 400s; a missing file reads as empty (`ready()` says so).
 */
export interface Reads {
  /** Runs `read` with its reads on one snapshot of the read models (a page that reads several: one moment). */
  snapshot<T>(read: () => T): T;
  ready(): boolean;
  listWorkers(filter?: WorkerFilter): WorkerView[];
  getWorker(id: string): WorkerView | undefined;
  workerSeries(id: string): WorkerSeriesPoint[];
  /** Every worker's finished attempts per minute of the recent window at `nowMs` (ui/src/lib/recent.ts), by worker id. */
  recentOutcomes(nowMs?: number): Map<string, RecentBuckets>;
  /** One worker's (none: an empty list). */
  workerRecent(id: string, nowMs?: number): RecentBuckets;
  listJobs(q: JobListQuery): JobPage;
  getJob(id: string): JobView | undefined;
  /** The jobs with the newest attempts on a worker, with all their attempts (a worker's "Recent jobs"). */
  workerJobs(workerId: string, limit: number): WorkerJob[];
  stats(): FleetStats;
  queueByPriority(): Record<number, number>;
  queueNeeds(): QueueNeed[];
  fleetSeries(): FleetSeriesPoint[];
  projector(): ProjectorStatus | null;
  close(): void;
}

function query<T>(run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (e instanceof ReadModelQueryError) throw new ApiError("invalid", e.message, e.message.split(":")[0]);
    throw e;
  }
}

export function openReads(path: string, suspectAfterMs: number): Reads {
  const rm = openReadModels(path, { suspectAfterMs });
  return {
    snapshot: (read) => rm.snapshot(read),
    ready: () => rm.ready(),
    listWorkers: (f) => query(() => rm.listWorkers(f)),
    getWorker: (id) => rm.getWorker(id) ?? undefined,
    workerSeries: (id) => rm.workerSeries(id, Date.now() - SERIES_WINDOW_MS),
    recentOutcomes: (nowMs = Date.now()) => recentByWorker(rm.workerOutcomes(recentFrom(nowMs))),
    workerRecent: (id, nowMs = Date.now()) => recentByWorker(rm.workerOutcomes(recentFrom(nowMs), id)).get(id) ?? [],
    listJobs: (q) => query(() => rm.listJobs(q)),
    getJob: (id) => rm.getJob(id) ?? undefined,
    workerJobs: (id, limit) => query(() => rm.workerJobs(id, limit)),
    stats: () => rm.stats(),
    queueByPriority: () => rm.queueByPriority(),
    queueNeeds: () => rm.queueNeeds(),
    fleetSeries: () => rm.fleetSeries(Date.now() - SERIES_WINDOW_MS),
    projector: () => rm.projectorLag(),
    close: () => rm.close(),
  };
}
