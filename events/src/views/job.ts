import type { EventOf, TroupeEvent } from "../events.ts";
import type { JobError, JobSpec, LogEntry, StepRef, StepTiming } from "../payloads.ts";
import { sha256Hex } from "../sha256.ts";

/**
 * The job state machine, shared by the master (decisions), the projector (read
 * model) and the browser (live view). Pure and deterministic: every time comes
 * from the event. Fencing lives here so every host rejects the same events.
 */

export type JobStatus = "queued" | "assigned" | "running" | "completed" | "failed" | "requeued" | "cancelled" | "dead";
export const JOB_STATUSES: readonly JobStatus[] = ["queued", "assigned", "running", "completed", "failed", "requeued", "cancelled", "dead"];
/**
 * A status filter as typed (`failed,dead`): one status or several, comma-separated.
 * Throws naming the bad part; a blank part is an error, never "every job".
 */
export function parseStatusList(raw: string): JobStatus[] {
  const parts = raw.split(",");
  const bad = parts.find((s) => !(JOB_STATUSES as readonly string[]).includes(s));
  if (bad !== undefined) throw new Error(`expected one or more of ${JOB_STATUSES.join(", ")} (comma-separated), got ${JSON.stringify(bad)}`);
  return [...new Set(parts as JobStatus[])];
}
/** Nothing further happens to a job in these states (except a redrive of failed/dead). */
export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ["completed", "failed", "cancelled", "dead"];

export interface AttemptRecord {
  attempt: number;
  workerId: string;
  assignedAt: string;
  startedAt?: string;
  finishedAt?: string;
  outcome?: "completed" | "failed" | "requeued" | "cancelled" | "dead";
  error?: JobError;
  requeueReason?: string;
}

export interface JobView {
  id: string;
  status: JobStatus;
  spec: JobSpec;
  priority: number;
  url?: string;
  tags: string[];
  idempotencyKey?: string;
  /** Current attempt: the one assigned/running, or the next to assign when waiting. */
  attempt: number;
  workerId?: string;
  progress: number;
  currentStep?: StepRef;
  submittedAt: string;
  /** Not assignable before this time (runAt, or a requeue backoff). */
  notBefore?: string;
  assignedAt?: string;
  startedAt?: string;
  /** Last sign of life of the running attempt (assigned, started, progress): the lease is renewed from here. */
  lastActivityAt?: string;
  finishedAt?: string;
  /** ms from the current attempt's start to its end. */
  duration?: number;
  result?: EventOf<"job.completed">["data"]["result"];
  metrics?: EventOf<"job.completed">["data"]["metrics"];
  error?: JobError;
  /** Why a cancelled or dead job ended, as its event said (the cancel's reason; "expired …", "max attempts …"). */
  endReason?: string;
  logs?: LogEntry[];
  steps?: StepTiming[];
  /**
   * The screenshots the last failed attempt's job.failed names (the scenario's so far, then the page at the failure:
   * `NNN-failed.png`), shown on the job's page; a completed job's are its `result.screenshots`.
   */
  screenshots?: string[];
  /** Highest master epoch that has decided about this job. */
  epoch: number;
  /** SHA-256 of the current attempt's token (job.assigned), when its worker takes tokens: its events must carry the token. */
  tokenHash?: string;
  history: AttemptRecord[];
  /** Sequence of the last event folded, when the host knows it. */
  updatedAt: string;
}

export type Rejection =
  | "unknown-job"
  | "duplicate-job"
  | "stale-attempt"
  | "wrong-worker"
  | "wrong-token"
  | "stale-epoch"
  | "invalid-transition";

export type JobEvolveResult = { ok: true; job: JobView } | { ok: false; reason: Rejection; detail: string };

type JobEvent = Extract<TroupeEvent, { type: `job.${string}` }>;

const reject = (reason: Rejection, detail: string): JobEvolveResult => ({ ok: false, reason, detail });

/**
 * Every JobView the reducer returns is built by this copy, with every key in
 * one order (absent optional fields are `undefined`): all views share one
 * object shape, so copying and serialising them stays cheap (spreading views of
 * many different shapes was most of the fold's cost), and their JSON has one key
 * order whatever path built them.
 */
function copyJob(j: JobView): JobView {
  return {
    id: j.id, status: j.status, spec: j.spec, priority: j.priority, url: j.url, tags: j.tags, idempotencyKey: j.idempotencyKey,
    attempt: j.attempt, workerId: j.workerId, progress: j.progress, currentStep: j.currentStep, submittedAt: j.submittedAt,
    notBefore: j.notBefore, assignedAt: j.assignedAt, startedAt: j.startedAt, lastActivityAt: j.lastActivityAt, finishedAt: j.finishedAt,
    duration: j.duration, result: j.result, metrics: j.metrics, error: j.error, endReason: j.endReason, logs: j.logs, steps: j.steps, screenshots: j.screenshots, epoch: j.epoch,
    tokenHash: j.tokenHash, history: j.history, updatedAt: j.updatedAt,
  };
}

/** An attempt record in one key order (see copyJob). */
function copyAttempt(a: AttemptRecord): AttemptRecord {
  return {
    attempt: a.attempt, workerId: a.workerId, assignedAt: a.assignedAt, startedAt: a.startedAt, finishedAt: a.finishedAt,
    outcome: a.outcome, error: a.error, requeueReason: a.requeueReason,
  };
}

/** How long the job's current attempt has run at `t`: from its start, else its assignment. */
function attemptRunMs(job: JobView, t: string): number | undefined {
  const a = job.history.at(-1);
  const from = a?.startedAt ?? a?.assignedAt;
  return from === undefined ? undefined : Math.max(0, Date.parse(t) - Date.parse(from));
}

function closeAttempt(job: JobView, finishedAt: string, outcome: NonNullable<AttemptRecord["outcome"]>, error?: JobError, requeueReason?: string): AttemptRecord[] {
  const h = job.history.slice();
  const i = h.findIndex((a) => a.attempt === job.attempt && a.workerId === job.workerId && !a.outcome);
  if (i >= 0) {
    const a = copyAttempt(h[i] as AttemptRecord);
    a.finishedAt = finishedAt;
    a.outcome = outcome;
    if (error !== undefined) a.error = error;
    if (requeueReason !== undefined) a.requeueReason = requeueReason;
    h[i] = a;
  }
  return h;
}

/** The history with the open attempt `d` names marked started at `t` (pure). */
function startAttempt(job: JobView, d: { attempt: number; workerId: string }, t: string): AttemptRecord[] {
  return job.history.map((a) => {
    if (a.attempt !== d.attempt || a.workerId !== d.workerId || a.outcome) return a;
    const s = copyAttempt(a);
    s.startedAt = t;
    return s;
  });
}

/**
 * Folds one job event into the job's view. Returns the new view, or why the
 * event is rejected (never folded): stale attempts, other workers, older
 * leader epochs and impossible transitions.
 */
export function evolveJob(job: JobView | undefined, event: JobEvent): JobEvolveResult {
  const t = event.time;
  if (event.type === "job.submitted") {
    if (job) return reject("duplicate-job", `job ${event.data.jobId} was already submitted`);
    const spec = event.data.spec;
    return {
      ok: true,
      job: copyJob({
        id: event.data.jobId, status: "queued", spec, priority: spec.priority, url: spec.url, tags: spec.tags ?? [],
        idempotencyKey: event.data.idempotencyKey, attempt: 1, progress: 0, submittedAt: t, notBefore: spec.runAt, epoch: 0, history: [], updatedAt: t,
      }),
    };
  }
  if (!job) return reject("unknown-job", `${event.type} for unknown job ${event.data.jobId}`);

  // Decisions of the master carry its epoch; an older leader's decision is ignored.
  if ("epoch" in event.data && typeof event.data.epoch === "number" && event.data.epoch < job.epoch) {
    return reject("stale-epoch", `${event.type} from epoch ${event.data.epoch} < ${job.epoch}`);
  }
  const epoch = "epoch" in event.data && typeof event.data.epoch === "number" ? Math.max(job.epoch, event.data.epoch) : job.epoch;

  switch (event.type) {
    case "job.assigned": {
      const d = event.data;
      if (job.status !== "queued" && job.status !== "requeued") return reject("invalid-transition", `cannot assign a ${job.status} job`);
      if (d.attempt !== job.attempt) return reject("stale-attempt", `assignment of attempt ${d.attempt}, current is ${job.attempt}`);
      const n = copyJob(job);
      n.currentStep = undefined;
      // The view is the attempt under way: a retried job showed the last attempt's error, failed steps and end
      // beside "running" (an audit). Each attempt's error stays in its history record.
      n.error = undefined;
      n.steps = undefined;
      n.logs = undefined;
      n.finishedAt = undefined;
      n.duration = undefined;
      n.metrics = undefined;
      n.screenshots = undefined;
      n.status = "assigned";
      n.workerId = d.workerId;
      n.assignedAt = t;
      n.lastActivityAt = t;
      n.progress = 0;
      n.epoch = epoch;
      n.tokenHash = d.tokenHash;
      n.updatedAt = t;
      n.history = [...job.history, copyAttempt({ attempt: d.attempt, workerId: d.workerId, assignedAt: t })];
      return { ok: true, job: n };
    }
    case "job.started":
    case "job.progress":
    case "job.completed":
    case "job.failed": {
      const d = event.data;
      if (d.attempt !== job.attempt) return reject("stale-attempt", `${event.type} of attempt ${d.attempt}, current is ${job.attempt}`);
      if (d.workerId !== job.workerId) return reject("wrong-worker", `${event.type} from ${d.workerId}, attempt ${d.attempt} is held by ${job.workerId ?? "nobody"}`);
      // The body's ids can be written by any job-event writer; the token only by the worker the attempt was given to.
      if (job.tokenHash !== undefined && (d.token === undefined || sha256Hex(d.token) !== job.tokenHash)) {
        return reject("wrong-token", `${event.type} for attempt ${d.attempt} ${d.token === undefined ? "without" : "with another"} token than the one its assignment gave ${d.workerId}`);
      }
      if (job.status !== "assigned" && job.status !== "running") return reject("invalid-transition", `${event.type} for a ${job.status} job`);
      const n = copyJob(job);
      n.epoch = epoch;
      n.updatedAt = t;
      if (event.type === "job.started") {
        n.status = "running";
        n.lastActivityAt = t;
        // After a progress that reached the log first, the attempt already runs from that progress.
        if (job.status === "assigned") {
          n.startedAt = t;
          n.history = startAttempt(job, d, t);
        }
        return { ok: true, job: n };
      }
      if (event.type === "job.progress") {
        const p = event.data;
        n.status = "running";
        n.startedAt = job.startedAt ?? t;
        // A progress can reach the log before its started (a re-sent publish): the attempt runs from it, as the job.
        if (job.status === "assigned") n.history = startAttempt(job, d, t);
        n.progress = p.progress;
        if (p.currentStep) n.currentStep = p.currentStep;
        n.lastActivityAt = t;
        return { ok: true, job: n };
      }
      const started = job.startedAt ?? job.assignedAt ?? t;
      const duration = Math.max(0, Date.parse(t) - Date.parse(started));
      n.finishedAt = t;
      if (event.type === "job.completed") {
        const c = event.data;
        n.error = undefined;
        n.status = "completed";
        n.progress = 100;
        n.duration = c.metrics.totalDuration ?? duration;
        n.result = c.result;
        n.metrics = c.metrics;
        n.logs = c.result.logs;
        if (c.result.steps) n.steps = c.result.steps;
        n.screenshots = undefined;
        n.history = closeAttempt(job, t, "completed");
        return { ok: true, job: n };
      }
      const f = event.data;
      n.status = "failed";
      n.duration = f.metrics?.totalDuration ?? duration;
      n.error = f.error;
      if (f.logs) n.logs = f.logs;
      if (f.steps) n.steps = f.steps;
      // This attempt's, or none: an earlier attempt's pictures under this one's error would mislead.
      n.screenshots = f.screenshots;
      n.history = closeAttempt(job, t, "failed", f.error);
      return { ok: true, job: n };
    }
    case "job.requeued": {
      const d = event.data;
      const redrive = d.reason === "redrive";
      const allowed = redrive ? job.status === "failed" || job.status === "dead" : !["completed", "cancelled", "dead"].includes(job.status) && !(job.status === "failed" && !job.error?.retryable);
      if (!allowed) return reject("invalid-transition", `cannot requeue (${d.reason}) a ${job.status} job`);
      if (d.attempt <= job.attempt && !(job.status === "queued" || job.status === "requeued") ) {
        return reject("stale-attempt", `requeue to attempt ${d.attempt}, current is ${job.attempt}`);
      }
      if (d.attempt <= job.attempt && (job.status === "queued" || job.status === "requeued")) {
        return reject("stale-attempt", `requeue to attempt ${d.attempt}, job already waits as attempt ${job.attempt}`);
      }
      const history = job.status === "assigned" || job.status === "running" ? closeAttempt(job, t, "requeued", undefined, d.reason) : job.history;
      const n = copyJob(job);
      n.workerId = undefined;
      n.currentStep = undefined;
      n.assignedAt = undefined;
      n.startedAt = undefined;
      n.lastActivityAt = undefined;
      n.finishedAt = undefined;
      n.duration = undefined;
      n.endReason = undefined;
      n.status = "requeued";
      n.attempt = d.attempt;
      n.progress = 0;
      n.notBefore = d.notBefore;
      n.epoch = epoch;
      n.updatedAt = t;
      n.history = history;
      return { ok: true, job: n };
    }
    case "job.cancelled": {
      if (job.status === "completed" || job.status === "cancelled" || job.status === "dead") return reject("invalid-transition", `cannot cancel a ${job.status} job`);
      const history = job.status === "assigned" || job.status === "running" ? closeAttempt(job, t, "cancelled") : job.history;
      const n = copyJob(job);
      n.status = "cancelled";
      n.finishedAt = t;
      // How long the attempt it stopped ran ("Duration –" beside a job cancelled after 11 s, an audit).
      if (job.status === "assigned" || job.status === "running") n.duration = attemptRunMs(job, t);
      n.endReason = event.data.reason ?? "cancelled";
      n.epoch = epoch;
      n.updatedAt = t;
      n.history = history;
      return { ok: true, job: n };
    }
    case "job.dead": {
      if (job.status === "completed" || job.status === "cancelled" || job.status === "dead") return reject("invalid-transition", `cannot mark a ${job.status} job dead`);
      const history = job.status === "assigned" || job.status === "running" ? closeAttempt(job, t, "dead") : job.history;
      const n = copyJob(job);
      n.status = "dead";
      n.finishedAt = t;
      if (job.status === "assigned" || job.status === "running") n.duration = attemptRunMs(job, t);
      n.endReason = event.data.reason;
      if (event.data.lastError) n.error = event.data.lastError;
      n.epoch = epoch;
      n.updatedAt = t;
      n.history = history;
      return { ok: true, job: n };
    }
  }
}

/** True when the job waits for a worker and may be assigned at `now` (ms). */
export function isAssignable(job: JobView, nowMs: number): boolean {
  if (job.status !== "queued" && job.status !== "requeued") return false;
  if (job.notBefore && Date.parse(job.notBefore) > nowMs) return false;
  return true;
}
