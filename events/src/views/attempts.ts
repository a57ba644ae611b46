import type { AttemptRecord, JobView } from "./job.ts";
import type { JobSummary } from "./read.ts";

/**
 * Attempts by worker: each attempt of a job as its own row (the projector's `job_attempts` table), so a worker's
 * page can list the jobs that ran on it, not only those whose current worker it is (a job that failed on a worker
 * and completed on another vanished from the first one's page, although it counted in its failures). The rows are
 * a function of the job view's `history` (`evolveJob` appends a record at each assignment and closes it at the
 * attempt's end), so every host that folds jobs gets the same rows, a rebuild included.
 */

/**
 * How an attempt stands: `assigned` / `running` while it is under way, then what ended it, as `evolveJob` records
 * it (`requeued` with a `reason`: `worker-lost` — the worker died —, `lease-expired` — it went silent —,
 * `worker-refused`, `failed-retryable`; `dead` when the master gave up while it ran).
 */
export type AttemptOutcome = "assigned" | "running" | "completed" | "failed" | "requeued" | "cancelled" | "dead";

/** One attempt of one job on one worker. */
export interface JobAttempt {
  jobId: string;
  attempt: number;
  workerId: string;
  assignedAt: string;
  startedAt?: string;
  endedAt?: string;
  outcome: AttemptOutcome;
  /** Why the master took the job back (requeued). */
  reason?: string;
  errorCode?: string;
  /** The error's message, cut to ATTEMPT_ERROR_CHARS (the job's own page has it whole). */
  errorMessage?: string;
  errorRetryable?: boolean;
}

/** A worker's recent job: the job as it is now and its attempts (every worker's), oldest first. */
export interface WorkerJob {
  job: JobSummary;
  attempts: JobAttempt[];
}

/** Characters of an attempt's error message kept in its row. */
export const ATTEMPT_ERROR_CHARS = 300;

function cut(s: string): string {
  if (s.length <= ATTEMPT_ERROR_CHARS) return s;
  // Not in the middle of a surrogate pair: the cut text is stored and sent as UTF-8.
  const end = /[\uD800-\uDBFF]/.test(s.charAt(ATTEMPT_ERROR_CHARS - 1)) ? ATTEMPT_ERROR_CHARS - 1 : ATTEMPT_ERROR_CHARS;
  return `${s.slice(0, end)}…`;
}

/** How an attempt record stands: its outcome once ended, else `running` once started, else `assigned` (pure). */
export function attemptOutcome(a: AttemptRecord): AttemptOutcome {
  return a.outcome ?? (a.startedAt !== undefined ? "running" : "assigned");
}

/** An attempt record of a job's history as its row (pure). */
export function attemptOf(jobId: string, a: AttemptRecord): JobAttempt {
  const r: JobAttempt = { jobId, attempt: a.attempt, workerId: a.workerId, assignedAt: a.assignedAt, outcome: attemptOutcome(a) };
  if (a.startedAt !== undefined) r.startedAt = a.startedAt;
  if (a.finishedAt !== undefined) r.endedAt = a.finishedAt;
  if (a.requeueReason !== undefined) r.reason = a.requeueReason;
  if (a.error !== undefined) {
    if (a.error.code !== undefined) r.errorCode = a.error.code;
    r.errorMessage = cut(a.error.message);
    r.errorRetryable = a.error.retryable;
  }
  return r;
}

/** Every attempt of a job, oldest first (pure). */
export function jobAttempts(job: Pick<JobView, "id" | "history">): JobAttempt[] {
  return job.history.map((a) => attemptOf(job.id, a));
}

/**
 * A row back as a history record, for a page that folds live events on top of it (`evolveJob` finds the open
 * attempt by number and worker, and closes it). The error message is the row's cut one.
 */
export function attemptRecordOf(r: JobAttempt): AttemptRecord {
  const a: AttemptRecord = { attempt: r.attempt, workerId: r.workerId, assignedAt: r.assignedAt };
  if (r.startedAt !== undefined) a.startedAt = r.startedAt;
  if (r.endedAt !== undefined) a.finishedAt = r.endedAt;
  if (r.outcome !== "assigned" && r.outcome !== "running") a.outcome = r.outcome;
  if (r.errorMessage !== undefined) a.error = { message: r.errorMessage, ...(r.errorCode !== undefined ? { code: r.errorCode } : {}), retryable: r.errorRetryable ?? false };
  if (r.reason !== undefined) a.requeueReason = r.reason;
  return a;
}
