import type {
  FleetSeriesPoint, FleetStats, JobListQuery, JobPage, JobView, ProjectorStatus, QueueNeed, WorkerFilter, WorkerJob, WorkerSeriesPoint, WorkerView,
} from "@troupe/events";
import { openReadModels, ReadModelQueryError } from "../../../../services/projector/src/read-models.ts";
import { chartWindow, type ChartRange } from "../chart-range.ts";
import { ApiError } from "./http.ts";
import { recentByWorker, recentFrom, RECENT_MINUTES, windowFrom, type RecentBuckets } from "../recent.ts";
import { groupErrors, MAX_GROUPED, TOP_ERRORS, type TopErrors } from "../errors.ts";

/** How far back the per-minute series look (the Overview's warnings and "Last full minute"; the charts take a range). */
export const SERIES_WINDOW_MS = 60 * 60_000;

/**
 * A chart's data for a range, read at `nowMs`: one point per bucket that has a row (`bucketMs` apart from `from` to
 * `to`, the bucket in progress; a point's `minute` is its bucket's start), and `heldFrom`, the first minute the read
 * models hold of this series (before it a missing bucket is unknown, after it a count's missing bucket is 0:
 * `chartPoints`).
 */
export interface SeriesChart<P> {
  range: ChartRange;
  bucketMs: number;
  from: number;
  to: number;
  heldFrom: number | null;
  points: P[];
}

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
  /** Every worker's finished attempts per minute of the recent window at `nowMs` (ui/src/lib/recent.ts), by worker id. */
  recentOutcomes(nowMs?: number): Map<string, RecentBuckets>;
  /** One worker's (none: an empty list). */
  workerRecent(id: string, nowMs?: number): RecentBuckets;
  /** A worker's charts (CPU, memory, jobs) over `range`, bucketed (`SeriesChart`). */
  workerChart(id: string, range: ChartRange, nowMs?: number): SeriesChart<WorkerSeriesPoint>;
  listJobs(q: JobListQuery): JobPage;
  getJob(id: string): JobView | undefined;
  /** The jobs with the newest attempts on a worker, with all their attempts (a worker's "Recent jobs"). */
  workerJobs(workerId: string, limit: number): WorkerJob[];
  /** The failed attempts of the last `minutes` (default 60, the worker rates' window) grouped by error, the `limit` largest (ui/src/lib/errors.ts). */
  topErrors(o?: { nowMs?: number; minutes?: number; limit?: number }): TopErrors;
  stats(): FleetStats;
  queueByPriority(): Record<number, number>;
  queueNeeds(): QueueNeed[];
  fleetSeries(): FleetSeriesPoint[];
  /** The Overview's charts over `range`, bucketed (`SeriesChart`). */
  fleetChart(range: ChartRange, nowMs?: number): SeriesChart<FleetSeriesPoint>;
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
  const chart = <P>(range: ChartRange, nowMs: number, read: (from: number, bucketMs: number) => P[], heldFrom: () => number | null): SeriesChart<P> => {
    const w = chartWindow(range, nowMs);
    return rm.snapshot(() => ({ range, bucketMs: w.bucketMs, from: w.from, to: w.to, heldFrom: heldFrom(), points: read(w.from, w.bucketMs) }));
  };
  return {
    snapshot: (read) => rm.snapshot(read),
    ready: () => rm.ready(),
    listWorkers: (f) => query(() => rm.listWorkers(f)),
    getWorker: (id) => rm.getWorker(id) ?? undefined,
    recentOutcomes: (nowMs = Date.now()) => recentByWorker(rm.workerOutcomes(recentFrom(nowMs))),
    workerRecent: (id, nowMs = Date.now()) => recentByWorker(rm.workerOutcomes(recentFrom(nowMs), id)).get(id) ?? [],
    workerChart: (id, range, nowMs = Date.now()) => chart(range, nowMs, (from, b) => rm.workerSeries(id, from, b), () => rm.workerSeriesFrom(id)),
    listJobs: (q) => query(() => rm.listJobs(q)),
    getJob: (id) => rm.getJob(id) ?? undefined,
    workerJobs: (id, limit) => query(() => rm.workerJobs(id, limit)),
    topErrors: ({ nowMs = Date.now(), minutes = RECENT_MINUTES, limit = TOP_ERRORS } = {}) => {
      const from = windowFrom(nowMs, minutes);
      const { total, attempts } = rm.failedAttempts(from, MAX_GROUPED);
      return {
        windowMinutes: minutes, from: new Date(from).toISOString(), asOf: new Date(nowMs).toISOString(),
        failedAttempts: total, grouped: attempts.length, groups: groupErrors(attempts, limit),
      };
    },
    stats: () => rm.stats(),
    queueByPriority: () => rm.queueByPriority(),
    queueNeeds: () => rm.queueNeeds(),
    fleetSeries: () => rm.fleetSeries(Date.now() - SERIES_WINDOW_MS),
    fleetChart: (range, nowMs = Date.now()) => chart(range, nowMs, (from, b) => rm.fleetSeries(from, b), () => rm.fleetSeriesFrom()),
    projector: () => rm.projectorLag(),
    close: () => rm.close(),
  };
}
