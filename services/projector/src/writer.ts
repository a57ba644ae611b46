import { chmodSync } from "node:fs";
import Database, { type Database as Sqlite } from "better-sqlite3";
import {
  attemptOf, canonicalWorker, decodeEvent, emptyWorker, jobSummary, notAfterPublished, TERMINAL_JOB_STATUSES,
  type AttemptRecord, type Decoded, type FleetMinute, type TroupeEvent, type JobView, type ProjectorStatus, type Subjects, type WorkerMinute, type WorkerView,
} from "@troupe/events";
import { foldEvent, foldHeartbeatSample, type HeartbeatSample, type ViewStore } from "./fold.ts";
import { createSchema, schemaVersion, SCHEMA_VERSION } from "./schema.ts";
import { builder, param, prepare } from "./sql.ts";

/**
 * The projector's write side: one synchronous SQLite transaction per batch
 * folds the batch, writes every changed row once, adds skip counts and moves
 * the stream's checkpoint. Messages at or below the checkpoint are no-ops, so a
 * redelivered batch counts once. Views are cached between batches (the
 * projector is the only writer); a failed transaction drops the cache.
 */

export interface RawMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  /** Publish time in the stream (epoch ms). */
  publishedMs: number;
  /** `decodeEvent(subject, data)` when already done elsewhere (the rebuild validates on the reading thread). */
  decoded?: Decoded<TroupeEvent>;
  /** A valid heartbeat that a later one of the same worker in the batch overwrites: only its series sample is folded, the body is not parsed. */
  sample?: HeartbeatSample;
}

export interface Skip {
  seq: number;
  subject: string;
  reason: string;
  detail: string;
}

export interface BatchResult {
  applied: number;
  /** Messages at or below the checkpoint (redelivered). */
  duplicates: number;
  skipped: Skip[];
  /** Checkpoint after the batch. */
  lastSeq: number;
}

export interface WriterOptions {
  subjects: Subjects;
  /** Series minutes older than this before `clockMs()` are not kept. */
  seriesRetentionMs: number;
  /** Reference time for the series window (now, or the --until time). */
  clockMs: () => number;
  /**
   * Rebuild: keep changed job and worker rows in memory across batches and
   * write a job when it reaches a terminal state, everything when many rows are
   * held or the caches are full, and the rest at `flushHeld()`. Nobody reads a
   * build before it is finished (a failed one is deleted), and each row is then
   * written about once instead of once per batch it changed in.
   */
  holdRows?: boolean;
  /** Cached views kept between batches (default 50,000) and rows a rebuild holds (default 20,000); tests lower them. */
  cacheLimit?: number;
  holdLimit?: number;
}

const CACHE_LIMIT = 50_000;
/** Changed job and worker rows a rebuild holds before it writes them all. */
const HOLD_LIMIT = 20_000;
const TERMINAL = new Set<string>(TERMINAL_JOB_STATUSES);
const WRITTEN_LIMIT = 3_000_000;

export type OpenMode = "live" | "build";

/** Opens (creating when needed) a read-model file for writing. */
export function openWriterDb(file: string, mode: OpenMode): Sqlite {
  const db = new Database(file);
  // The read models hold job URLs, proxy user names and results: readable by their owner only, as credentials.env
  // (SQLite gives the -wal and -shm files the main file's mode). They were 0644 in a 0755 data dir (a walkthrough).
  chmodSync(file, 0o600);
  if (mode === "live") {
    db.pragma("journal_mode = WAL");
    // WAL + NORMAL survives a process crash (kill -9); a power cut may lose the last
    // batches, and the checkpoint goes back with them, so they are folded again.
    db.pragma("synchronous = NORMAL");
  } else {
    // A build is thrown away if it does not finish: no journal until it is complete.
    db.pragma("journal_mode = OFF");
    db.pragma("synchronous = OFF");
  }
  db.pragma("cache_size = -65536");
  db.pragma("busy_timeout = 5000");
  const v = schemaVersion(db);
  if (v !== null && v !== SCHEMA_VERSION) {
    db.close();
    throw new SchemaMismatch(file, v);
  }
  // A build gets its secondary indexes when it is complete (createIndexes).
  createSchema(db, { indexes: mode === "live" });
  return db;
}

export class SchemaMismatch extends Error {
  override name = "SchemaMismatch";
  constructor(readonly file: string, readonly found: number) {
    super(`${file} has read-model schema version ${found}, this build writes ${SCHEMA_VERSION}: rebuild it (troupe replay)`);
  }
}

function statements(db: Sqlite) {
  const excluded = <C extends string>(cols: readonly C[]) => (eb: { ref: (r: string) => unknown }) => Object.fromEntries(cols.map((c) => [c, eb.ref(`excluded.${c}`)]));
  const jobCols = ["status", "priority", "url", "worker_id", "attempt", "progress", "submitted_at", "started_at", "finished_at", "duration", "updated_at", "browser", "labels", "summary", "view"] as const;
  const attemptCols = ["worker_id", "assigned_at", "started_at", "ended_at", "outcome", "reason", "error_code", "error_message", "error_retryable"] as const;
  const workerCols = ["name", "type", "ip", "port", "status", "current_jobs", "max_jobs", "cpu", "memory", "disk", "network", "jobs_completed", "jobs_failed", "success_rate", "average_job_duration", "average_response_time", "registered_at", "last_seen", "view"] as const;
  const fleetCols = ["completed", "failed", "submitted", "queue_wait", "run_time"] as const;
  const seriesCols = ["cpu_sum", "memory_sum", "samples", "completed", "failed"] as const;
  const named = <C extends string>(cols: readonly C[]) => Object.fromEntries(cols.map((c) => [c, param(c)])) as Record<C, string>;
  return {
    getJob: prepare<{ id: string }>(db, builder.selectFrom("jobs").select("view").where("id", "=", param("id"))),
    putJob: prepare<Record<string, unknown>>(db, builder.insertInto("jobs").values(named(["id", ...jobCols]) as never)
      .onConflict((oc) => oc.column("id").doUpdateSet(excluded(jobCols) as never))),
    putAttempt: prepare<Record<string, unknown>>(db, builder.insertInto("job_attempts").values(named(["job_id", "attempt", ...attemptCols]) as never)
      .onConflict((oc) => oc.columns(["job_id", "attempt"]).doUpdateSet(excluded(attemptCols) as never))),
    getWorker: prepare<{ id: string }>(db, builder.selectFrom("workers").select("view").where("id", "=", param("id"))),
    putWorker: prepare<Record<string, unknown>>(db, builder.insertInto("workers").values(named(["id", ...workerCols]) as never)
      .onConflict((oc) => oc.column("id").doUpdateSet(excluded(workerCols) as never))),
    getFleet: prepare<{ minute: number }>(db, builder.selectFrom("fleet_series").selectAll().where("minute", "=", param("minute") as unknown as number)),
    putFleet: prepare<Record<string, unknown>>(db, builder.insertInto("fleet_series").values(named(["minute", ...fleetCols]) as never)
      .onConflict((oc) => oc.column("minute").doUpdateSet(excluded(fleetCols) as never))),
    getSeries: prepare<{ worker_id: string; minute: number }>(db, builder.selectFrom("worker_series").selectAll()
      .where("minute", "=", param("minute") as unknown as number).where("worker_id", "=", param("worker_id"))),
    putSeries: prepare<Record<string, unknown>>(db, builder.insertInto("worker_series").values(named(["worker_id", "minute", ...seriesCols]) as never)
      .onConflict((oc) => oc.columns(["minute", "worker_id"]).doUpdateSet(excluded(seriesCols) as never))),
    getCheckpoint: prepare<{ stream: string }>(db, builder.selectFrom("projection_checkpoints").select("last_seq").where("stream", "=", param("stream"))),
    putCheckpoint: prepare<{ stream: string; last_seq: number; last_time: string }>(db, builder.insertInto("projection_checkpoints")
      .values({ stream: param("stream"), last_seq: param("last_seq") as unknown as number, last_time: param("last_time") })
      .onConflict((oc) => oc.column("stream").doUpdateSet(excluded(["last_seq", "last_time"]) as never))),
    addSkip: prepare<{ stream: string; reason: string; count: number }>(db, builder.insertInto("projection_skips")
      .values({ stream: param("stream"), reason: param("reason"), count: param("count") as unknown as number })
      .onConflict((oc) => oc.columns(["stream", "reason"]).doUpdateSet((eb) => ({ count: eb("projection_skips.count", "+", eb.ref("excluded.count")) })))),
    putStatus: prepare<{ value: string }>(db, builder.insertInto("projector_status").values({ id: 1, value: param("value") })
      .onConflict((oc) => oc.column("id").doUpdateSet((eb) => ({ value: eb.ref("excluded.value") })))),
    pruneFleet: prepare<{ cutoff: number }>(db, builder.deleteFrom("fleet_series").where("minute", "<", param("cutoff") as unknown as number)),
    pruneSeries: prepare<{ cutoff: number }>(db, builder.deleteFrom("worker_series").where("minute", "<", param("cutoff") as unknown as number)),
    checkpoints: prepare(db, builder.selectFrom("projection_checkpoints").select(["stream", "last_seq"])),
  };
}

function workerRow(w: WorkerView) {
  return {
    id: w.id, name: w.name, type: w.type, ip: w.ip, port: w.port, status: w.status, current_jobs: w.currentJobs, max_jobs: w.maxJobs,
    cpu: w.cpu, memory: w.memory, disk: w.disk, network: w.network, jobs_completed: w.jobsCompleted, jobs_failed: w.jobsFailed,
    success_rate: w.successRate, average_job_duration: w.averageJobDuration, average_response_time: w.averageResponseTime,
    registered_at: w.registeredAt ?? null, last_seen: w.lastSeen ?? null, view: JSON.stringify(canonicalWorker(w)),
  };
}

function jobRow(j: JobView) {
  return {
    id: j.id, status: j.status, priority: j.priority, url: j.url ?? null, worker_id: j.workerId ?? null, attempt: j.attempt, progress: j.progress,
    submitted_at: j.submittedAt, started_at: j.startedAt ?? null, finished_at: j.finishedAt ?? null, duration: j.duration ?? null,
    updated_at: j.updatedAt, browser: j.spec.browser ?? null,
    labels: j.spec.workerLabels?.length ? JSON.stringify([...new Set(j.spec.workerLabels)].sort()) : null,
    summary: JSON.stringify(jobSummary(j)), view: JSON.stringify(j),
  };
}

function attemptRow(jobId: string, a: AttemptRecord) {
  const r = attemptOf(jobId, a);
  return {
    job_id: r.jobId, attempt: r.attempt, worker_id: r.workerId, assigned_at: r.assignedAt, started_at: r.startedAt ?? null, ended_at: r.endedAt ?? null,
    outcome: r.outcome, reason: r.reason ?? null, error_code: r.errorCode ?? null, error_message: r.errorMessage ?? null,
    error_retryable: r.errorRetryable === undefined ? null : r.errorRetryable ? 1 : 0,
  };
}

/**
 * Series rows by worker, then minute: a heartbeat's row is found with two
 * lookups of keys that already exist (the worker id string from the parsed
 * event, a number) instead of building and hashing a `worker\0minute` string
 * three times per heartbeat.
 */
class SeriesMap<V> {
  private readonly byWorker = new Map<string, Map<number, V>>();
  size = 0;

  get(workerId: string, minute: number): V | undefined {
    return this.byWorker.get(workerId)?.get(minute);
  }

  set(workerId: string, minute: number, v: V): void {
    let m = this.byWorker.get(workerId);
    if (!m) this.byWorker.set(workerId, (m = new Map()));
    const before = m.size;
    m.set(minute, v);
    this.size += m.size - before;
  }

  *values(): IterableIterator<V> {
    for (const m of this.byWorker.values()) yield* m.values();
  }

  clear(): void {
    this.byWorker.clear();
    this.size = 0;
  }
}

/**
 * The (worker, minute) series rows written so far, as small integers per
 * worker (minute ÷ 60,000 fits a V8 small integer): a rebuild of a million
 * events writes ~570,000 rows, and a Set of that many strings was a large
 * old-generation structure for the garbage collector to mark again and again.
 */
class SeriesKeys {
  private readonly byWorker = new Map<string, Set<number>>();
  size = 0;

  has(workerId: string, minute: number): boolean {
    return this.byWorker.get(workerId)?.has(minute / 60_000) ?? false;
  }

  add(workerId: string, minute: number): void {
    let set = this.byWorker.get(workerId);
    if (!set) this.byWorker.set(workerId, (set = new Set()));
    const before = set.size;
    set.add(minute / 60_000);
    this.size += set.size - before;
  }
}

export class ReadModelWriter {
  readonly db: Sqlite;
  private readonly q: ReturnType<typeof statements>;
  private readonly jobs = new Map<string, JobView | null>();
  private readonly workers = new Map<string, WorkerView | null>();
  private readonly fleet = new Map<number, FleetMinute | null>();
  private readonly series = new SeriesMap<WorkerMinute | null>();
  /** Changed series rows (the latest object of each), to write at the batch's end. */
  private dirty = { jobs: new Set<string>(), workers: new Set<string>(), fleet: new Set<number>(), series: new SeriesMap<WorkerMinute>() };
  private lastPruneMs = 0;
  /**
   * Attempt records already written. `evolveJob` never changes a record: it puts a new one in the history where an
   * attempt starts or ends, and keeps the same objects otherwise. So a job row rewritten for a progress event
   * (most job events) writes no attempt row; a view read back from SQLite has new objects, written again (same
   * values). Reset with the caches: after a failed transaction nothing written in it is taken as stored.
   */
  private attemptsWritten = new WeakSet<AttemptRecord>();
  /**
   * Set while this writer has written every row the file holds (it opened an
   * empty file): a key it never wrote is then known to be absent, so a cache
   * miss costs no SELECT. Rebuilds only (`holdRows`), which start on empty files and end: the live writer of a
   * fresh install opened an empty file too, and kept every job id it ever wrote (~70 bytes a job, up to
   * WRITTEN_LIMIT: 3,000,000 keys, ~200 MB) for as long as the projector ran (a soak, 2026-11-30); live, a new
   * job's miss is one indexed SELECT, as on every live writer whose file was not empty at its start.
   */
  private written: { jobs: Set<string>; workers: Set<string>; fleet: Set<number>; series: SeriesKeys } | null;

  constructor(db: Sqlite, private readonly o: WriterOptions) {
    this.db = db;
    this.q = statements(db);
    const empty = o.holdRows === true && !db.prepare("select 1 from projection_checkpoints limit 1").get() && !db.prepare("select 1 from workers limit 1").get() && !db.prepare("select 1 from jobs limit 1").get();
    this.written = empty ? { jobs: new Set(), workers: new Set(), fleet: new Set(), series: new SeriesKeys() } : null;
  }

  /** Keys remembered as written (`written`; tests): none on a live writer. */
  get rememberedKeys(): number {
    const w = this.written;
    return w ? w.jobs.size + w.workers.size + w.fleet.size + w.series.size : 0;
  }

  /** Job views held in memory (tests). */
  get cachedJobs(): number {
    return this.jobs.size;
  }

  checkpoint(stream: string): number {
    return this.q.getCheckpoint.get<{ last_seq: number }>({ stream })?.last_seq ?? 0;
  }

  checkpoints(): Record<string, number> {
    return Object.fromEntries(this.q.checkpoints.all<{ stream: string; last_seq: number }>({}).map((r) => [r.stream, r.last_seq]));
  }

  private store: ViewStore = {
    job: (id) => {
      let v = this.jobs.get(id);
      if (v === undefined) {
        if (this.written && !this.written.jobs.has(id)) return undefined;
        const r = this.q.getJob.get<{ view: string }>({ id });
        v = r ? (JSON.parse(r.view) as JobView) : null;
        this.jobs.set(id, v);
      }
      return v ?? undefined;
    },
    putJob: (j) => {
      this.jobs.set(j.id, j);
      this.dirty.jobs.add(j.id);
    },
    worker: (id) => {
      let v = this.workers.get(id);
      if (v === undefined) {
        if (this.written && !this.written.workers.has(id)) return undefined;
        const r = this.q.getWorker.get<{ view: string }>({ id });
        // Back to the full key set in canonical order, whatever the stored JSON omitted.
        v = r ? { ...emptyWorker(id), ...(JSON.parse(r.view) as WorkerView) } : null;
        this.workers.set(id, v);
      }
      return v ?? undefined;
    },
    putWorker: (w) => {
      this.workers.set(w.id, w);
      this.dirty.workers.add(w.id);
    },
    fleetMinute: (minute) => {
      let v = this.fleet.get(minute);
      if (v === undefined) {
        if (this.written && !this.written.fleet.has(minute)) return undefined;
        const r = this.q.getFleet.get<{ minute: number; completed: number; failed: number; submitted: number; queue_wait: string; run_time: string }>({ minute });
        v = r ? { minute, completed: r.completed, failed: r.failed, submitted: r.submitted, queueWait: JSON.parse(r.queue_wait), runTime: JSON.parse(r.run_time) } : null;
        this.fleet.set(minute, v);
      }
      return v ?? undefined;
    },
    putFleetMinute: (m) => {
      this.fleet.set(m.minute, m);
      this.dirty.fleet.add(m.minute);
    },
    workerMinute: (workerId, minute) => {
      let v = this.series.get(workerId, minute);
      if (v === undefined) {
        if (this.written && !this.written.series.has(workerId, minute)) return undefined;
        const r = this.q.getSeries.get<{ cpu_sum: number; memory_sum: number; samples: number; completed: number; failed: number }>({ worker_id: workerId, minute });
        v = r ? { workerId, minute, cpuSum: r.cpu_sum, memorySum: r.memory_sum, samples: r.samples, completed: r.completed, failed: r.failed } : null;
        this.series.set(workerId, minute, v);
      }
      return v ?? undefined;
    },
    putWorkerMinute: (m) => {
      this.series.set(m.workerId, m.minute, m);
      this.dirty.series.set(m.workerId, m.minute, m);
    },
  };

  /**
   * Writes the changed rows: all of them, or (`all` false, a rebuild holding
   * rows) the series, the fleet minutes and the jobs that reached a terminal
   * state; held rows stay marked as changed.
   */
  private flush(all: boolean): void {
    let w = this.written;
    if (w && w.jobs.size + w.workers.size + w.series.size > WRITTEN_LIMIT) {
      // Too many keys to remember: from here on a cache miss asks SQLite.
      this.written = w = null;
    }
    for (const id of this.dirty.jobs) {
      const j = this.jobs.get(id) as JobView;
      const terminal = TERMINAL.has(j.status);
      if (!all && !terminal) continue;
      this.q.putJob.run(jobRow(j));
      for (const a of j.history) {
        if (this.attemptsWritten.has(a)) continue;
        this.q.putAttempt.run(attemptRow(id, a));
        this.attemptsWritten.add(a);
      }
      w?.jobs.add(id);
      this.dirty.jobs.delete(id);
      // A finished job is written and rarely changes again (a retry reads it back): kept, every result, log and step
      // of up to 50,000 jobs stayed in memory (a soak: 6 KB a job, 150 KB with large extractions, never released).
      if (terminal) this.jobs.delete(id);
    }
    if (all) {
      for (const id of this.dirty.workers) {
        this.q.putWorker.run(workerRow(this.workers.get(id) as WorkerView));
        w?.workers.add(id);
      }
      this.dirty.workers.clear();
    }
    for (const minute of this.dirty.fleet) {
      w?.fleet.add(minute);
      const m = this.fleet.get(minute) as FleetMinute;
      this.q.putFleet.run({ minute, completed: m.completed, failed: m.failed, submitted: m.submitted, queue_wait: JSON.stringify(m.queueWait), run_time: JSON.stringify(m.runTime) });
    }
    this.dirty.fleet.clear();
    for (const m of this.dirty.series.values()) {
      w?.series.add(m.workerId, m.minute);
      this.q.putSeries.run({ worker_id: m.workerId, minute: m.minute, cpu_sum: m.cpuSum, memory_sum: m.memorySum, samples: m.samples, completed: m.completed, failed: m.failed });
    }
    this.dirty.series.clear();
  }

  /** Writes the rows a rebuild holds (`holdRows`), in one transaction. */
  flushHeld(): void {
    this.db.transaction(() => this.flush(true))();
  }

  private resetDirty(): void {
    this.dirty = { jobs: new Set(), workers: new Set(), fleet: new Set(), series: new SeriesMap() };
    this.attemptsWritten = new WeakSet();
  }

  /** Forgets every cached view (after a failed transaction, or to bound memory). */
  dropCache(): void {
    this.jobs.clear();
    this.workers.clear();
    this.fleet.clear();
    this.series.clear();
    this.resetDirty();
  }

  private seriesCutoff(): number {
    return this.o.clockMs() - this.o.seriesRetentionMs;
  }

  /**
   * Folds a batch of one stream in one transaction with its checkpoint.
   * `status` builds the projector_status row written in the same transaction.
   */
  applyBatch(stream: string, msgs: readonly RawMessage[], status?: (r: BatchResult) => ProjectorStatus): BatchResult {
    const cutoff = this.seriesCutoff();
    // Set when the job cache is full: every row is written, then the job and fleet caches are dropped.
    let evict = false;
    const run = this.db.transaction((): BatchResult => {
      let last = this.checkpoint(stream);
      const result: BatchResult = { applied: 0, duplicates: 0, skipped: [], lastSeq: last };
      let lastMs = -1;
      const skipCounts = new Map<string, number>();
      for (const m of msgs) {
        if (m.seq <= last) {
          result.duplicates++;
          continue;
        }
        last = m.seq;
        lastMs = m.publishedMs;
        if (m.sample) {
          foldHeartbeatSample(this.store, m.sample, { seriesCutoffMs: cutoff });
          result.applied++;
          continue;
        }
        const d = m.decoded ?? decodeEvent(m.subject, m.data, { subjects: this.o.subjects });
        const r = d.ok ? foldEvent(this.store, notAfterPublished(d.value, m.publishedMs), { seriesCutoffMs: cutoff }) : { ok: false as const, reason: d.error.code, detail: `${d.error.path || "(body)"}: ${d.error.message}` };
        if (r.ok) result.applied++;
        else {
          result.skipped.push({ seq: m.seq, subject: m.subject, reason: r.reason, detail: r.detail });
          skipCounts.set(r.reason, (skipCounts.get(r.reason) ?? 0) + 1);
        }
      }
      result.lastSeq = last;
      if (lastMs < 0) return result;
      const cacheLimit = this.o.cacheLimit ?? CACHE_LIMIT;
      evict = this.jobs.size > cacheLimit;
      this.flush(!this.o.holdRows || evict || this.dirty.jobs.size + this.dirty.workers.size > (this.o.holdLimit ?? HOLD_LIMIT));
      for (const [reason, count] of skipCounts) this.q.addSkip.run({ stream, reason, count });
      this.q.putCheckpoint.run({ stream, last_seq: last, last_time: new Date(lastMs).toISOString() });
      if (status) this.q.putStatus.run({ value: JSON.stringify(status(result)) });
      return result;
    });
    try {
      const r = run();
      if (evict) {
        this.jobs.clear();
        this.fleet.clear();
      }
      // Series rows are all written at every batch's end: a full series cache is dropped on its own.
      if (this.series.size > (this.o.cacheLimit ?? CACHE_LIMIT)) this.series.clear();
      return r;
    } catch (e) {
      this.dropCache();
      throw new Error(`folding ${msgs.length} messages of ${stream} (seq ${msgs[0]?.seq}–${msgs[msgs.length - 1]?.seq}) failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Writes the status row on its own (e.g. when idle). */
  writeStatus(status: ProjectorStatus): void {
    this.q.putStatus.run({ value: JSON.stringify(status) });
  }

  /** Drops series minutes outside the window; at most once a minute. */
  pruneSeries(force = false): void {
    const now = this.o.clockMs();
    if (!force && now - this.lastPruneMs < 60_000) return;
    this.lastPruneMs = now;
    const cutoff = this.seriesCutoff();
    this.db.transaction(() => {
      this.q.pruneFleet.run({ cutoff });
      this.q.pruneSeries.run({ cutoff });
    })();
    this.fleet.clear();
    this.series.clear();
  }

  close(): void {
    this.db.close();
  }
}
