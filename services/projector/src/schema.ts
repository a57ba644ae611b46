import type { Database as Sqlite } from "better-sqlite3";
import { sql, type Generated } from "kysely";
import { builder } from "./sql.ts";

/**
 * The read-model database: table types (for kysely) and the DDL. The projector
 * is its only writer; the UI opens it read-only. Bump SCHEMA_VERSION on any
 * change to what the rows hold: the projector then rebuilds the file from the
 * log. A new index alone needs no bump: a live open creates it on the file
 * (docs/projector.md).
 */
/** 2: job views are stored with their keys in one order (events/src/views/job.ts copyJob), so files written before are rebuilt. 3: worker_series keyed by (minute, worker_id). 4: worker views resolve maxJobs by time (heartbeatMaxJobs), and event times are folded no later than their stream's publish time. 5: a worker's draining/deregistration counts only from its registered instance (files folded before could show a worker offline that a rebuild shows registered). 6: worker views keep the latest heartbeat of each process and show the registered one's (files folded before hold a twin's telemetry). 7: a draining heartbeat older than the latest registration no longer drains the view (resume; files folded before could show draining where a rebuild shows online); job views keep why a cancelled or dead job ended (endReason); a lost or offline worker shows no current jobs. 8: events are read with unpaired surrogates as U+FFFD and without __proto__ keys (files folded before could hold bytes no UTF-8 reader takes, and job views no page can be sent). 9: job_attempts, each job's attempts by worker (files folded before lack the table and are rebuilt on start, the one upgrade path the read models have). 10: job views keep the screenshots a failed attempt's job.failed names (files folded before lack them; a rebuild shows them). */
export const SCHEMA_VERSION = 10;

export interface WorkersTable {
  id: string;
  name: string;
  type: string;
  ip: string;
  port: number;
  status: string;
  current_jobs: number;
  max_jobs: number;
  cpu: number;
  memory: number;
  disk: number;
  network: number;
  jobs_completed: number;
  jobs_failed: number;
  success_rate: number;
  average_job_duration: number;
  average_response_time: number;
  registered_at: string | null;
  last_seen: string | null;
  /** The whole WorkerView as JSON (what getWorker returns and the fold reloads). */
  view: string;
}

export interface JobsTable {
  id: string;
  status: string;
  priority: number;
  url: string | null;
  worker_id: string | null;
  attempt: number;
  progress: number;
  submitted_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration: number | null;
  updated_at: string;
  /** What the job asks of a worker (spec.browser; spec.workerLabels sorted, as JSON): queueNeeds() counts waiting jobs by them without reading views. */
  browser: string | null;
  labels: string | null;
  /** JobSummary as JSON (list pages). */
  summary: string;
  /** The whole JobView as JSON, with result and attempt history. */
  view: string;
}

/**
 * One row per attempt of a job (events/src/views/attempts.ts: the job view's history records), written with the
 * job's row: a worker's page lists the jobs that ran on it, whichever worker holds them now.
 */
export interface JobAttemptsTable {
  job_id: string;
  attempt: number;
  worker_id: string;
  assigned_at: string;
  started_at: string | null;
  ended_at: string | null;
  /** assigned, running, completed, failed, requeued, cancelled, dead (AttemptOutcome). */
  outcome: string;
  /** Why the master took the job back (requeued: worker-lost, lease-expired, …). */
  reason: string | null;
  error_code: string | null;
  /** Cut to ATTEMPT_ERROR_CHARS. */
  error_message: string | null;
  /** 1/0 with an error, else null. */
  error_retryable: number | null;
}

export interface WorkerSeriesTable {
  worker_id: string;
  minute: number;
  cpu_sum: number;
  memory_sum: number;
  samples: number;
  completed: number;
  failed: number;
}

export interface FleetSeriesTable {
  minute: number;
  completed: number;
  failed: number;
  submitted: number;
  /** Histogram JSON (events/src/views/series.ts). */
  queue_wait: string;
  run_time: string;
}

export interface CheckpointsTable {
  stream: string;
  last_seq: number;
  /** Publish time (ISO) of the last applied message. */
  last_time: string;
}

export interface SkipsTable {
  stream: string;
  reason: string;
  count: number;
}

export interface StatusTable {
  id: Generated<number>;
  /** ProjectorStatus as JSON. */
  value: string;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface ReadModelDb {
  workers: WorkersTable;
  jobs: JobsTable;
  job_attempts: JobAttemptsTable;
  worker_series: WorkerSeriesTable;
  fleet_series: FleetSeriesTable;
  projection_checkpoints: CheckpointsTable;
  projection_skips: SkipsTable;
  projector_status: StatusTable;
  meta: MetaTable;
}

/** Tables compared row for row between a live database and a rebuild (projector_status is per process). */
export const FOLDED_TABLES = ["workers", "jobs", "job_attempts", "worker_series", "fleet_series", "projection_checkpoints", "projection_skips"] as const;

/** DDL, built with kysely's schema builder. */
export function schemaStatements(): string[] {
  const s = builder.schema;
  return [
    s.createTable("workers").ifNotExists()
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("type", "text", (c) => c.notNull())
      .addColumn("ip", "text", (c) => c.notNull())
      .addColumn("port", "integer", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("current_jobs", "integer", (c) => c.notNull())
      .addColumn("max_jobs", "integer", (c) => c.notNull())
      .addColumn("cpu", "real", (c) => c.notNull())
      .addColumn("memory", "real", (c) => c.notNull())
      .addColumn("disk", "real", (c) => c.notNull())
      .addColumn("network", "real", (c) => c.notNull())
      .addColumn("jobs_completed", "integer", (c) => c.notNull())
      .addColumn("jobs_failed", "integer", (c) => c.notNull())
      .addColumn("success_rate", "real", (c) => c.notNull())
      .addColumn("average_job_duration", "real", (c) => c.notNull())
      .addColumn("average_response_time", "real", (c) => c.notNull())
      .addColumn("registered_at", "text")
      .addColumn("last_seen", "text")
      .addColumn("view", "text", (c) => c.notNull())
      .compile().sql,
    s.createTable("jobs").ifNotExists()
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("priority", "integer", (c) => c.notNull())
      .addColumn("url", "text")
      .addColumn("worker_id", "text")
      .addColumn("attempt", "integer", (c) => c.notNull())
      .addColumn("progress", "real", (c) => c.notNull())
      .addColumn("submitted_at", "text", (c) => c.notNull())
      .addColumn("started_at", "text")
      .addColumn("finished_at", "text")
      .addColumn("duration", "real")
      .addColumn("updated_at", "text", (c) => c.notNull())
      // Before the JSON columns: a row is read up to the last column asked for, and a view can span overflow pages.
      .addColumn("browser", "text")
      .addColumn("labels", "text")
      .addColumn("summary", "text", (c) => c.notNull())
      .addColumn("view", "text", (c) => c.notNull())
      .compile().sql,
    s.createIndex("jobs_by_submitted").ifNotExists().on("jobs").columns(["submitted_at", "id"]).compile().sql,
    s.createIndex("jobs_by_status").ifNotExists().on("jobs").columns(["status", "submitted_at", "id"]).compile().sql,
    s.createIndex("jobs_by_worker").ifNotExists().on("jobs").columns(["worker_id", "submitted_at", "id"]).compile().sql,
    s.createTable("job_attempts").ifNotExists()
      .addColumn("job_id", "text", (c) => c.notNull())
      .addColumn("attempt", "integer", (c) => c.notNull())
      .addColumn("worker_id", "text", (c) => c.notNull())
      .addColumn("assigned_at", "text", (c) => c.notNull())
      .addColumn("started_at", "text")
      .addColumn("ended_at", "text")
      .addColumn("outcome", "text", (c) => c.notNull())
      .addColumn("reason", "text")
      .addColumn("error_code", "text")
      .addColumn("error_message", "text")
      .addColumn("error_retryable", "integer")
      // A job's attempts together: the worker page reads all attempts of its 20 jobs by this key.
      .addPrimaryKeyConstraint("job_attempts_pk", ["job_id", "attempt"])
      .modifyEnd(sql`without rowid`)
      .compile().sql,
    // A worker's attempts, newest first (the worker page's "Recent jobs").
    s.createIndex("job_attempts_by_worker").ifNotExists().on("job_attempts").columns(["worker_id", "assigned_at", "job_id", "attempt"]).compile().sql,
    // The failed attempts by the time they ended (the Overview's "Top errors" of the last 60 min): partial, so it holds
    // the failures only and costs nothing on the other attempts' writes. An index needs no SCHEMA_VERSION bump of its
    // own: it changes no row, and `create index if not exists` runs on every live open (openWriterDb), so a file of
    // this schema written without it gets it when the projector starts, without a rebuild (a reader of a file without
    // it scans job_attempts instead). (Schema 10 came with the same day's failed-attempt screenshots, not with it.)
    s.createIndex("job_attempts_failed_by_end").ifNotExists().on("job_attempts").column("ended_at").where(sql.ref("outcome"), "=", sql.lit("failed")).compile().sql,
    s.createTable("worker_series").ifNotExists()
      .addColumn("worker_id", "text", (c) => c.notNull())
      .addColumn("minute", "integer", (c) => c.notNull())
      .addColumn("cpu_sum", "real", (c) => c.notNull())
      .addColumn("memory_sum", "real", (c) => c.notNull())
      .addColumn("samples", "integer", (c) => c.notNull())
      .addColumn("completed", "integer", (c) => c.notNull())
      .addColumn("failed", "integer", (c) => c.notNull())
      // Minute first: rows arrive in time order, so inserts land at the end of the tree instead of in 1,000 places (half the insert cost in a rebuild).
      .addPrimaryKeyConstraint("worker_series_pk", ["minute", "worker_id"])
      .modifyEnd(sql`without rowid`)
      .compile().sql,
    s.createIndex("worker_series_by_worker").ifNotExists().on("worker_series").columns(["worker_id", "minute"]).compile().sql,
    s.createTable("fleet_series").ifNotExists()
      .addColumn("minute", "integer", (c) => c.primaryKey())
      .addColumn("completed", "integer", (c) => c.notNull())
      .addColumn("failed", "integer", (c) => c.notNull())
      .addColumn("submitted", "integer", (c) => c.notNull())
      .addColumn("queue_wait", "text", (c) => c.notNull())
      .addColumn("run_time", "text", (c) => c.notNull())
      .compile().sql,
    s.createTable("projection_checkpoints").ifNotExists()
      .addColumn("stream", "text", (c) => c.primaryKey())
      .addColumn("last_seq", "integer", (c) => c.notNull())
      .addColumn("last_time", "text", (c) => c.notNull())
      .compile().sql,
    s.createTable("projection_skips").ifNotExists()
      .addColumn("stream", "text", (c) => c.notNull())
      .addColumn("reason", "text", (c) => c.notNull())
      .addColumn("count", "integer", (c) => c.notNull())
      .addPrimaryKeyConstraint("projection_skips_pk", ["stream", "reason"])
      .compile().sql,
    s.createTable("projector_status").ifNotExists()
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("value", "text", (c) => c.notNull())
      .compile().sql,
    s.createTable("meta").ifNotExists()
      .addColumn("key", "text", (c) => c.primaryKey())
      .addColumn("value", "text", (c) => c.notNull())
      .compile().sql,
  ];
}

const isIndex = (stmt: string) => /^create index/i.test(stmt);

/**
 * Creates the tables (idempotent) and records the schema version. A rebuild
 * passes `indexes: false` and calls `createIndexes` once the data is in:
 * building an index from sorted data is far cheaper than updating it on every
 * upsert.
 */
export function createSchema(db: Sqlite, o: { indexes?: boolean } = {}): void {
  const indexes = o.indexes ?? true;
  db.transaction(() => {
    for (const stmt of schemaStatements()) if (indexes || !isIndex(stmt)) db.exec(stmt);
    db.prepare("insert into meta (key, value) values ('schema_version', ?) on conflict(key) do update set value = excluded.value").run(String(SCHEMA_VERSION));
  })();
}

/** Creates the secondary indexes (idempotent). */
export function createIndexes(db: Sqlite): void {
  db.transaction(() => {
    for (const stmt of schemaStatements()) if (isIndex(stmt)) db.exec(stmt);
  })();
}

/** The schema version recorded in a database, or null when it has none. */
export function schemaVersion(db: Sqlite): number | null {
  const hasMeta = db.prepare("select 1 from sqlite_master where type = 'table' and name = 'meta'").get();
  if (!hasMeta) return null;
  const row = db.prepare("select value from meta where key = 'schema_version'").get() as { value: string } | undefined;
  return row ? Number(row.value) : null;
}
