import Database, { type Database as Sqlite } from "better-sqlite3";
import {
  bucketFleetMinutes, bucketWorkerMinutes, fleetStats, JOB_STATUSES, MINUTE_MS, workerPresence,
  type FleetSeriesPoint, type FleetStats, type JobListQuery, type JobPage, type JobStatus, type JobSummary, type JobView,
  type BulkFilter, type JobAttempt, type AttemptOutcome, type WorkerJob, type ProjectorStatus, type QueueNeed, type WorkerFilter, type WorkerSeriesPoint, type WorkerStatusView, type WorkerView,
} from "@troupe/events";
import { fileIdentity } from "./db-file.ts";
import { sql } from "kysely";
import { builder, param, prepare, type Prepared } from "./sql.ts";

/**
 * The read side of the projector's SQLite file, for the UI server and the CLI.
 * Opens the file read-only (WAL: readers never block the projector) and follows
 * rebuilds: before each call it checks which file the path points at and
 * reopens when a rebuild swapped in a new one, so a reader sees the old complete
 * database or the new complete one, never a half-built one. Every call is
 * synchronous (better-sqlite3).
 */

export interface ReadModelsOptions {
  /** An online/busy worker silent for two of its heartbeat intervals shows as `suspect`, never sooner than this (default 0: no floor; suspectWindow). */
  suspectAfterMs?: number;
  /** Clock for `suspect` (tests). */
  now?: () => number;
}

export interface ReadModels {
  /** Workers ordered by id; status filter and `suspect` apply at read time. */
  listWorkers(filter?: WorkerFilter): WorkerView[];
  getWorker(id: string): WorkerView | null;
  /**
   * Cpu / memory / jobs of one worker from `sinceMs` (epoch ms) on, oldest first, per minute or per bucket of
   * `bucketMs` (`bucketWorkerMinutes`: counts summed, gauges the mean of the heartbeats); buckets without a row are
   * absent.
   */
  workerSeries(id: string, sinceMs: number, bucketMs?: number): WorkerSeriesPoint[];
  /** The first minute of this worker's series still held (the oldest row the retention kept), null without one. */
  workerSeriesFrom(id: string): number | null;
  /**
   * Finished attempts per worker and minute from `sinceMs` on (minutes with at least one), oldest first: every
   * worker's, or one's with `workerId` (a worker's recent success rate, ui/src/lib/recent.ts).
   */
  workerOutcomes(sinceMs: number, workerId?: string): WorkerOutcomeMinute[];
  /** Newest first; page with `cursor`. Throws ReadModelQueryError for a bad query. */
  listJobs(query?: JobListQuery): JobPage;
  /** The whole job view: result, logs, error and attempt history. */
  getJob(id: string): JobView | null;
  /**
   * The `limit` (1–500, default 20) jobs with the newest attempts on this worker, newest attempt first, each with
   * the job as it is now and all its attempts (every worker's): what ran here, whichever worker holds it now.
   */
  workerJobs(workerId: string, limit?: number): WorkerJob[];
  /**
   * The attempts that failed (outcome `failed`: a `job.failed` the job's fold accepted, the failures a worker's counts
   * hold) and ended at `sinceMs` or later, newest first, at most `limit` (1–100,000), and how many there are in all
   * (the Overview's "Top errors"). Through the partial index job_attempts_failed_by_end. A file without job_attempts
   * (an older schema, read while the projector rebuilds it) has none.
   */
  failedAttempts(sinceMs: number, limit: number): { total: number; attempts: FailedAttempt[] };
  stats(): FleetStats;
  /** Jobs waiting for a worker (queued or requeued), counted by priority: exact, from one indexed query. */
  queueByPriority(): Record<number, number>;
  /** Jobs waiting for a worker, counted by the browser and labels they ask for (labels sorted; jobs asking nothing: one group). */
  queueNeeds(): QueueNeed[];
  /**
   * Fleet throughput, failures, queue wait and run time percentiles from `sinceMs` on, oldest first, per minute or
   * per bucket of `bucketMs` (`bucketFleetMinutes`: counts summed, histograms merged); buckets without a row are
   * absent (nothing happened in them, or they are older than the retention: `fleetSeriesFrom` tells which).
   */
  fleetSeries(sinceMs: number, bucketMs?: number): FleetSeriesPoint[];
  /** The first minute of the fleet series still held (the oldest row the retention kept), null without one. */
  fleetSeriesFrom(): number | null;
  /** The projector's last committed batch: lag, counters, checkpoints; null before its first batch. */
  projectorLag(): ProjectorStatus | null;
  /**
   * Runs `read` with every read inside it on one snapshot of one file (a read transaction; a rebuild's swap waits
   * for the next call): a page that reads several models shows them as of one moment, not a job committed between
   * two reads shown without its history.
   */
  snapshot<T>(read: () => T): T;
  /** True when a database file exists and is open (false before the projector's first start). */
  ready(): boolean;
  close(): void;
}

/** One minute of one worker's finished attempts (`worker_series`). */
export interface WorkerOutcomeMinute {
  workerId: string;
  /** Epoch ms, the minute's start. */
  minute: number;
  completed: number;
  failed: number;
}

/** A failed attempt (`job_attempts`), what the Overview groups by error. */
export interface FailedAttempt {
  jobId: string;
  attempt: number;
  workerId: string;
  /** ISO time the attempt ended. */
  endedAt: string;
  errorCode: string | null;
  /** Cut to ATTEMPT_ERROR_CHARS by the projector. */
  errorMessage: string | null;
}

/** A query the caller got wrong (bad cursor, limit, status): the UI answers 400. */
export class ReadModelQueryError extends Error {
  override name = "ReadModelQueryError";
}

const MAX_LIMIT = 500;
const DEFAULT_LIMIT = 50;

interface Open {
  db: Sqlite;
  identity: string;
  q: ReturnType<typeof prepareFixed>;
  /** null in a file of an older schema, without job_attempts (read while the projector rebuilds it on start). */
  attempts: ReturnType<typeof prepareAttempts> | null;
  listJobs: Map<string, Prepared<Record<string, unknown>>>;
}

/**
 * The window's failed attempts, newest first (failedAttempts). Through the partial index job_attempts_failed_by_end
 * (ended_at where outcome = 'failed'): the outcome must be the literal the index names (a bound parameter would not
 * let SQLite use it), the order is the index's. Exported so a test can ask SQLite for this very statement's plan.
 */
export function failedAttemptsQuery() {
  return builder.selectFrom("job_attempts")
    .select(["job_id as jobId", "attempt", "worker_id as workerId", "ended_at as endedAt", "error_code as errorCode", "error_message as errorMessage"])
    .where(sql.ref("outcome"), "=", sql.lit("failed")).where("ended_at", ">=", param("since"))
    .orderBy("ended_at", "desc").limit(param("limit") as unknown as number);
}

function prepareFixed(db: Sqlite) {
  return {
    workers: prepare(db, builder.selectFrom("workers").select("view").orderBy("id")),
    worker: prepare<{ id: string }>(db, builder.selectFrom("workers").select("view").where("id", "=", param("id"))),
    workerSeries: prepare<{ id: string; since: number }>(db, builder.selectFrom("worker_series")
      .select(["worker_id as workerId", "minute", "cpu_sum as cpuSum", "memory_sum as memorySum", "samples", "completed", "failed"])
      .where("worker_id", "=", param("id")).where("minute", ">=", param("since") as unknown as number).orderBy("minute")),
    // Every worker's: a range of the primary key (minute, worker_id), an hour of rows; one worker's: through
    // worker_series_by_worker (worker_id, minute). No index of their own.
    outcomes: prepare<{ since: number }>(db, builder.selectFrom("worker_series").select(["worker_id as workerId", "minute", "completed", "failed"])
      .where("minute", ">=", param("since") as unknown as number).where((eb) => eb.or([eb("completed", ">", 0), eb("failed", ">", 0)])).orderBy("minute")),
    workerOutcomes: prepare<{ id: string; since: number }>(db, builder.selectFrom("worker_series").select(["worker_id as workerId", "minute", "completed", "failed"])
      .where("worker_id", "=", param("id")).where("minute", ">=", param("since") as unknown as number).where((eb) => eb.or([eb("completed", ">", 0), eb("failed", ">", 0)])).orderBy("minute")),
    job: prepare<{ id: string }>(db, builder.selectFrom("jobs").select("view").where("id", "=", param("id"))),
    jobCounts: prepare(db, builder.selectFrom("jobs").select(["status", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("status")),
    queueByPriority: prepare(db, builder.selectFrom("jobs").select(["priority", (eb) => eb.fn.countAll<number>().as("n")]).where("status", "in", ["queued", "requeued"]).groupBy("priority")),
    // The waiting rows through the status index, their two small columns only (not the views).
    queueNeeds: prepare(db, builder.selectFrom("jobs").select(["browser", "labels", (eb) => eb.fn.countAll<number>().as("n")])
      .where("status", "in", ["queued", "requeued"]).groupBy(["browser", "labels"])),
    fleetSeries: prepare<{ since: number }>(db, builder.selectFrom("fleet_series").selectAll()
      .where("minute", ">=", param("since") as unknown as number).orderBy("minute")),
    // One index step each (fleet_series by its key, worker_series by worker_series_by_worker).
    workerSeriesFrom: prepare<{ id: string }>(db, builder.selectFrom("worker_series").select("minute").where("worker_id", "=", param("id")).orderBy("minute").limit(1)),
    fleetSeriesFrom: prepare(db, builder.selectFrom("fleet_series").select("minute").orderBy("minute").limit(1)),
    status: prepare(db, builder.selectFrom("projector_status").select("value").where("id", "=", 1)),
  };
}

function prepareAttempts(db: Sqlite) {
  const has = db.prepare("select 1 from sqlite_master where type = 'table' and name = 'job_attempts'").get();
  if (!has) return null;
  return {
    // Through job_attempts_by_worker, newest first; read until enough distinct jobs are seen.
    byWorker: prepare<{ workerId: string }>(db, builder.selectFrom("job_attempts").select("job_id")
      .where("worker_id", "=", param("workerId")).orderBy("assigned_at", "desc").orderBy("job_id", "desc").orderBy("attempt", "desc")),
    ofJob: prepare<{ jobId: string }>(db, builder.selectFrom("job_attempts").selectAll().where("job_id", "=", param("jobId")).orderBy("attempt")),
    summary: prepare<{ id: string }>(db, builder.selectFrom("jobs").select("summary").where("id", "=", param("id"))),
    failed: prepare<{ since: string; limit: number }>(db, failedAttemptsQuery()),
    failedCount: prepare<{ since: string }>(db, builder.selectFrom("job_attempts").select((eb) => eb.fn.countAll<number>().as("n"))
      .where(sql.ref("outcome"), "=", sql.lit("failed")).where("ended_at", ">=", param("since"))),
  };
}

interface AttemptRow {
  job_id: string; attempt: number; worker_id: string; assigned_at: string; started_at: string | null; ended_at: string | null;
  outcome: string; reason: string | null; error_code: string | null; error_message: string | null; error_retryable: number | null;
}

function attemptFromRow(r: AttemptRow): JobAttempt {
  const a: JobAttempt = { jobId: r.job_id, attempt: r.attempt, workerId: r.worker_id, assignedAt: r.assigned_at, outcome: r.outcome as AttemptOutcome };
  if (r.started_at !== null) a.startedAt = r.started_at;
  if (r.ended_at !== null) a.endedAt = r.ended_at;
  if (r.reason !== null) a.reason = r.reason;
  if (r.error_code !== null) a.errorCode = r.error_code;
  if (r.error_message !== null) a.errorMessage = r.error_message;
  if (r.error_retryable !== null) a.errorRetryable = r.error_retryable === 1;
  return a;
}

/**
 * A file of an older schema has no attempts: its current attempt stands for them (the page showed only jobs whose
 * current worker it is before job_attempts), until the projector's start-up rebuild swaps in the new file.
 */
function currentAttempt(j: JobSummary): JobAttempt[] {
  if (j.workerId === undefined) return [];
  const outcome: AttemptOutcome = j.status === "queued" || j.status === "requeued" ? "requeued" : j.status;
  const a: JobAttempt = { jobId: j.id, attempt: j.attempt, workerId: j.workerId, assignedAt: j.startedAt ?? j.submittedAt, outcome };
  if (j.startedAt !== undefined) a.startedAt = j.startedAt;
  if (j.finishedAt !== undefined) a.endedAt = j.finishedAt;
  return [a];
}

function encodeCursor(j: { submittedAt: string; id: string }): string {
  return Buffer.from(JSON.stringify([j.submittedAt, j.id])).toString("base64url");
}

function decodeCursor(c: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(c, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string") return [v[0], v[1]];
  } catch {
    // fall through to the error below
  }
  throw new ReadModelQueryError(`cursor: not a cursor this API returned (${JSON.stringify(c.slice(0, 40))})`);
}

function statusList<S extends string>(v: S | readonly S[] | undefined, allowed: readonly S[], field: string): S[] | undefined {
  if (v === undefined) return undefined;
  const list = (Array.isArray(v) ? v : [v]) as S[];
  for (const s of list) if (!allowed.includes(s)) throw new ReadModelQueryError(`${field}: expected one of ${allowed.join(", ")}, got ${JSON.stringify(s)}`);
  return list;
}

export function openReadModels(path: string, o: ReadModelsOptions = {}): ReadModels {
  const suspectAfterMs = o.suspectAfterMs ?? 0;
  const now = o.now ?? Date.now;
  let cur: Open | null = null;
  let closed = false;
  /** The connection a snapshot() holds: every read in it uses this one. */
  let pinned: Open | null = null;

  const open = (): Open | null => {
    if (closed) throw new Error(`read models ${path}: used after close()`);
    if (pinned) return pinned;
    const identity = fileIdentity(path);
    if (cur && cur.identity === identity) return cur;
    cur?.db.close();
    cur = null;
    if (identity === null) return null;
    try {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      db.pragma("busy_timeout = 5000");
      cur = { db, identity, q: prepareFixed(db), attempts: prepareAttempts(db), listJobs: new Map() };
    } catch (e) {
      // A swap between stat and open, or a file whose schema is not written yet: next call tries again.
      if (fileIdentity(path) !== identity) return open();
      throw new Error(`cannot open read models ${path}: ${(e as Error).message}`, { cause: e });
    }
    return cur;
  };

  const present = (w: WorkerView): WorkerView => {
    const status = workerPresence(w, now(), suspectAfterMs);
    return status === w.status ? w : { ...w, status };
  };

  const jobsStatement = (c: Open, shape: { statuses: number; q: boolean; worker: boolean; cursor: boolean }) => {
    const key = JSON.stringify(shape);
    let p = c.listJobs.get(key);
    if (!p) {
      let qb = builder.selectFrom("jobs").select("summary");
      if (shape.statuses) qb = qb.where("status", "in", Array.from({ length: shape.statuses }, (_, i) => param(`s${i}`)));
      if (shape.worker) qb = qb.where("worker_id", "=", param("workerId"));
      if (shape.q) {
        // id, url, or any of the job's tags (kept in the summary JSON)
        // The search is plain text: its % and _ are escaped, not wildcards (they were dropped, so "team_a" matched
        // "teama-prod" and "%" matched every job — and a bulk cancel takes its jobs from this search).
        qb = qb.where((eb) => eb.or([
          sql<boolean>`${sql.ref("id")} like ${param("q")} escape '\\'`,
          sql<boolean>`${sql.ref("url")} like ${param("q")} escape '\\'`,
          sql<boolean>`exists (select 1 from json_each(${sql.ref("summary")}, '$.tags') where value like ${param("q")} escape '\\')`,
        ]));
      }
      if (shape.cursor) {
        qb = qb.where((eb) => eb.or([
          eb("submitted_at", "<", param("cAt")),
          eb.and([eb("submitted_at", "=", param("cAt")), eb("id", "<", param("cId"))]),
        ]));
      }
      qb = qb.orderBy("submitted_at", "desc").orderBy("id", "desc").limit(param("limit") as unknown as number);
      p = prepare(c.db, qb);
      c.listJobs.set(key, p);
    }
    return p;
  };

  const rm: ReadModels = {
    snapshot(read) {
      if (pinned) return read();
      const c = open();
      if (!c) return read();
      pinned = c;
      try {
        return c.db.transaction(read)();
      } finally {
        pinned = null;
      }
    },
    listWorkers(filter = {}) {
      const statuses = statusList<WorkerStatusView>(filter.status, ["online", "busy", "suspect", "draining", "offline", "lost"], "status");
      const c = open();
      if (!c) return [];
      const q = filter.q?.toLowerCase();
      return c.q.workers.all<{ view: string }>({})
        .map((r) => present(JSON.parse(r.view) as WorkerView))
        .filter((w) => (!statuses || statuses.includes(w.status)) && (!q || w.id.toLowerCase().includes(q) || w.name.toLowerCase().includes(q) || w.ip.includes(q)));
    },
    getWorker(id) {
      const c = open();
      const r = c?.q.worker.get<{ view: string }>({ id });
      return r ? present(JSON.parse(r.view) as WorkerView) : null;
    },
    workerSeries(id, sinceMs, bucketMs = MINUTE_MS) {
      const c = open();
      if (!c) return [];
      return bucketWorkerMinutes(c.q.workerSeries.all<Parameters<typeof bucketWorkerMinutes>[0][number]>({ id, since: Math.floor(sinceMs) }), bucketMs);
    },
    workerSeriesFrom(id) {
      return open()?.q.workerSeriesFrom.get<{ minute: number }>({ id })?.minute ?? null;
    },
    workerOutcomes(sinceMs, workerId) {
      const c = open();
      if (!c) return [];
      const since = Math.floor(sinceMs);
      return workerId === undefined ? c.q.outcomes.all<WorkerOutcomeMinute>({ since }) : c.q.workerOutcomes.all<WorkerOutcomeMinute>({ id: workerId, since });
    },
    listJobs(query = {}) {
      const statuses = statusList<JobStatus>(query.status, JOB_STATUSES, "status");
      const limit = query.limit ?? DEFAULT_LIMIT;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ReadModelQueryError(`limit: expected a whole number from 1 to ${MAX_LIMIT}, got ${String(limit)}`);
      // A NUL ends SQLite's LIKE pattern there, so "\u0000" would match every job.
      if (query.q !== undefined && /[\u0000-\u001f\u007f]/.test(query.q)) throw new ReadModelQueryError("q: the search holds a control character");
      const cursor = query.cursor !== undefined ? decodeCursor(query.cursor) : undefined;
      const c = open();
      if (!c) return { jobs: [], nextCursor: null };
      const p = jobsStatement(c, { statuses: statuses?.length ?? 0, q: !!query.q, worker: query.workerId !== undefined, cursor: !!cursor });
      const args: Record<string, unknown> = { limit: limit + 1, workerId: query.workerId };
      statuses?.forEach((s, i) => (args[`s${i}`] = s));
      if (query.q) args.q = `%${query.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      if (cursor) [args.cAt, args.cId] = cursor;
      const rows = p.all<{ summary: string }>(args).map((r) => JSON.parse(r.summary) as JobSummary);
      const more = rows.length > limit;
      const jobs = more ? rows.slice(0, limit) : rows;
      const last = jobs[jobs.length - 1];
      return { jobs, nextCursor: more && last ? encodeCursor(last) : null };
    },
    getJob(id) {
      const c = open();
      const r = c?.q.job.get<{ view: string }>({ id });
      return r ? (JSON.parse(r.view) as JobView) : null;
    },
    workerJobs(workerId, limit = 20) {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new ReadModelQueryError(`limit: expected a whole number from 1 to ${MAX_LIMIT}, got ${String(limit)}`);
      const c = open();
      if (!c) return [];
      const q = c.attempts;
      if (!q) return rm.listJobs({ workerId, limit }).jobs.map((job) => ({ job, attempts: currentAttempt(job) }));
      // One read transaction: the attempts and the jobs from the same snapshot.
      return c.db.transaction(() => {
        const ids: string[] = [];
        const seen = new Set<string>();
        // The iterator is closed on break (its statement is released).
        for (const r of q.byWorker.stmt.iterate(...q.byWorker.args({ workerId })) as IterableIterator<{ job_id: string }>) {
          if (seen.has(r.job_id)) continue;
          seen.add(r.job_id);
          ids.push(r.job_id);
          if (ids.length >= limit) break;
        }
        const out: WorkerJob[] = [];
        for (const id of ids) {
          const s = q.summary.get<{ summary: string }>({ id });
          // Written in the job's own transaction: never without its job; skipped rather than shown half.
          if (!s) continue;
          out.push({ job: JSON.parse(s.summary) as JobSummary, attempts: q.ofJob.all<AttemptRow>({ jobId: id }).map(attemptFromRow) });
        }
        return out;
      })();
    },
    failedAttempts(sinceMs, limit) {
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new ReadModelQueryError(`limit: expected a whole number from 1 to 100000, got ${String(limit)}`);
      const c = open();
      const q = c?.attempts;
      if (!c || !q) return { total: 0, attempts: [] };
      // Times are compared as the ISO strings the events carry (Date#toISOString: every producer writes that shape).
      const since = new Date(Math.floor(sinceMs)).toISOString();
      return c.db.transaction(() => ({
        total: q.failedCount.get<{ n: number }>({ since })?.n ?? 0,
        attempts: q.failed.all<FailedAttempt>({ since, limit }),
      }))();
    },
    stats() {
      const c = open();
      if (!c) return fleetStats([], {});
      // One read transaction: workers and job counts from the same snapshot.
      return c.db.transaction(() => {
        const workers = c.q.workers.all<{ view: string }>({}).map((r) => present(JSON.parse(r.view) as WorkerView));
        const counts = Object.fromEntries(c.q.jobCounts.all<{ status: JobStatus; n: number }>({}).map((r) => [r.status, r.n]));
        return fleetStats(workers, counts);
      })();
    },
    queueByPriority() {
      const c = open();
      if (!c) return {};
      return Object.fromEntries(c.q.queueByPriority.all<{ priority: number; n: number }>({}).map((r) => [r.priority, r.n]));
    },
    queueNeeds() {
      const c = open();
      if (!c) return [];
      const groups = new Map<string, QueueNeed>();
      for (const r of c.q.queueNeeds.all<{ browser: string | null; labels: string | null; n: number }>({})) {
        const labels = r.labels ? (JSON.parse(r.labels) as string[]) : [];
        const browser = r.browser ?? undefined;
        // The browser's case does not make another need (labels are stored sorted).
        const key = JSON.stringify([browser?.toLowerCase() ?? null, labels]);
        const g = groups.get(key);
        if (g) g.count += r.n;
        else groups.set(key, { ...(browser !== undefined ? { browser } : {}), labels, count: r.n });
      }
      return [...groups.values()];
    },
    fleetSeries(sinceMs, bucketMs = MINUTE_MS) {
      const c = open();
      if (!c) return [];
      const rows = c.q.fleetSeries.all<{ minute: number; completed: number; failed: number; submitted: number; queue_wait: string; run_time: string }>({ since: Math.floor(sinceMs) });
      return bucketFleetMinutes(rows.map((r) => ({ minute: r.minute, completed: r.completed, failed: r.failed, submitted: r.submitted, queueWait: JSON.parse(r.queue_wait), runTime: JSON.parse(r.run_time) })), bucketMs);
    },
    fleetSeriesFrom() {
      return open()?.q.fleetSeriesFrom.get<{ minute: number }>({})?.minute ?? null;
    },
    projectorLag() {
      const c = open();
      const r = c?.q.status.get<{ value: string }>({});
      return r ? (JSON.parse(r.value) as ProjectorStatus) : null;
    },
    ready() {
      return open() !== null;
    },
    close() {
      cur?.db.close();
      cur = null;
      closed = true;
    },
  };
  return rm;
}

/**
 * The ids of the jobs a bulk action would take (`BulkFilter`), newest first, at most `max`, and whether more
 * match. Read in pages, so it holds one page's summaries at a time.
 */
export function matchingJobIds(rm: Pick<ReadModels, "listJobs">, f: BulkFilter, max: number): { ids: string[]; more: boolean } {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = rm.listJobs({
      status: f.status, limit: Math.min(MAX_LIMIT, max - ids.length),
      ...(f.q ? { q: f.q } : {}), ...(f.workerId ? { workerId: f.workerId } : {}), ...(cursor ? { cursor } : {}),
    });
    for (const j of page.jobs) ids.push(j.id);
    if (!page.nextCursor) return { ids, more: false };
    if (ids.length >= max) return { ids, more: true };
    cursor = page.nextCursor;
  }
}
