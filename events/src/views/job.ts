import type { EventOf, TroupeEvent } from "../events.ts";
import type { JobError, JobSpec, LogEntry, StepRef, StepTiming } from "../payloads.ts";

/**
 * The job state machine, shared by the master (decisions), the projector (read
 * model) and the browser (live view). Pure and deterministic: every time comes
 * from the event. Fencing lives here so every host rejects the same events.
 */

export type JobStatus = "queued" | "assigned" | "running" | "completed" | "failed" | "requeued" | "cancelled" | "dead";
export const JOB_STATUSES: readonly JobStatus[] = ["queued", "assigned", "running", "completed", "failed", "requeued", "cancelled", "dead"];
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
  logs?: LogEntry[];
  steps?: StepTiming[];
  /** Highest master epoch that has decided about this job. */
  epoch: number;
  history: AttemptRecord[];
  /** Sequence of the last event folded, when the host knows it. */
  updatedAt: string;
}

export type Rejection =
  | "unknown-job"
  | "duplicate-job"
  | "stale-attempt"
  | "wrong-worker"
  | "stale-epoch"
  | "invalid-transition";

export type JobEvolveResult = { ok: true; job: JobView } | { ok: false; reason: Rejection; detail: string };

type JobEvent = Extract<TroupeEvent, { type: `job.${string}` }>;

const reject = (reason: Rejection, detail: string): JobEvolveResult => ({ ok: false, reason, detail });

function closeAttempt(job: JobView, patch: Partial<AttemptRecord>): AttemptRecord[] {
  const h = job.history.slice();
  const i = h.findIndex((a) => a.attempt === job.attempt && a.workerId === job.workerId && !a.outcome);
  if (i >= 0) h[i] = { ...(h[i] as AttemptRecord), ...patch };
  return h;
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
      job: {
        id: event.data.jobId,
        status: "queued",
        spec,
        priority: spec.priority,
        ...(spec.url !== undefined ? { url: spec.url } : {}),
        tags: spec.tags ?? [],
        ...(event.data.idempotencyKey !== undefined ? { idempotencyKey: event.data.idempotencyKey } : {}),
        attempt: 1,
        progress: 0,
        submittedAt: t,
        ...(spec.runAt !== undefined ? { notBefore: spec.runAt } : {}),
        epoch: 0,
        history: [],
        updatedAt: t,
      },
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
      const { currentStep: _s, ...rest } = job;
      return {
        ok: true,
        job: {
          ...rest, status: "assigned", workerId: d.workerId, assignedAt: t, lastActivityAt: t, progress: 0, epoch, updatedAt: t,
          history: [...job.history, { attempt: d.attempt, workerId: d.workerId, assignedAt: t }],
        },
      };
    }
    case "job.started":
    case "job.progress":
    case "job.completed":
    case "job.failed": {
      const d = event.data;
      if (d.attempt !== job.attempt) return reject("stale-attempt", `${event.type} of attempt ${d.attempt}, current is ${job.attempt}`);
      if (d.workerId !== job.workerId) return reject("wrong-worker", `${event.type} from ${d.workerId}, attempt ${d.attempt} is held by ${job.workerId ?? "nobody"}`);
      if (job.status !== "assigned" && job.status !== "running") return reject("invalid-transition", `${event.type} for a ${job.status} job`);
      if (event.type === "job.started") {
        return { ok: true, job: { ...job, status: "running", startedAt: t, lastActivityAt: t, epoch, updatedAt: t, history: job.history.map((a) => (a.attempt === d.attempt && a.workerId === d.workerId && !a.outcome ? { ...a, startedAt: t } : a)) } };
      }
      if (event.type === "job.progress") {
        const p = event.data;
        return {
          ok: true,
          job: { ...job, status: "running", startedAt: job.startedAt ?? t, progress: p.progress, ...(p.currentStep ? { currentStep: p.currentStep } : {}), lastActivityAt: t, epoch, updatedAt: t },
        };
      }
      const started = job.startedAt ?? job.assignedAt ?? t;
      const duration = Math.max(0, Date.parse(t) - Date.parse(started));
      if (event.type === "job.completed") {
        const c = event.data;
        const { error: _e, ...rest } = job;
        return {
          ok: true,
          job: {
            ...rest, status: "completed", progress: 100, finishedAt: t, duration: c.metrics.totalDuration ?? duration,
            result: c.result, metrics: c.metrics, logs: c.result.logs, ...(c.result.steps ? { steps: c.result.steps } : {}),
            epoch, updatedAt: t, history: closeAttempt(job, { finishedAt: t, outcome: "completed" }),
          },
        };
      }
      const f = event.data;
      return {
        ok: true,
        job: {
          ...job, status: "failed", finishedAt: t, duration: f.metrics?.totalDuration ?? duration, error: f.error,
          ...(f.logs ? { logs: f.logs } : {}), ...(f.steps ? { steps: f.steps } : {}),
          epoch, updatedAt: t, history: closeAttempt(job, { finishedAt: t, outcome: "failed", error: f.error }),
        },
      };
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
      const history = job.status === "assigned" || job.status === "running" ? closeAttempt(job, { finishedAt: t, outcome: "requeued", requeueReason: d.reason }) : job.history;
      const { workerId: _w, currentStep: _c, assignedAt: _a, startedAt: _s, lastActivityAt: _l, finishedAt: _f, duration: _d, ...rest } = job;
      return { ok: true, job: { ...rest, status: "requeued", attempt: d.attempt, progress: 0, notBefore: d.notBefore, epoch, updatedAt: t, history } };
    }
    case "job.cancelled": {
      if (job.status === "completed" || job.status === "cancelled" || job.status === "dead") return reject("invalid-transition", `cannot cancel a ${job.status} job`);
      const history = job.status === "assigned" || job.status === "running" ? closeAttempt(job, { finishedAt: t, outcome: "cancelled" }) : job.history;
      return { ok: true, job: { ...job, status: "cancelled", finishedAt: t, epoch, updatedAt: t, history } };
    }
    case "job.dead": {
      if (job.status === "completed" || job.status === "cancelled" || job.status === "dead") return reject("invalid-transition", `cannot mark a ${job.status} job dead`);
      const history = job.status === "assigned" || job.status === "running" ? closeAttempt(job, { finishedAt: t, outcome: "dead" }) : job.history;
      return { ok: true, job: { ...job, status: "dead", finishedAt: t, ...(event.data.lastError ? { error: event.data.lastError } : {}), epoch, updatedAt: t, history } };
    }
  }
}

/** True when the job waits for a worker and may be assigned at `now` (ms). */
export function isAssignable(job: JobView, nowMs: number): boolean {
  if (job.status !== "queued" && job.status !== "requeued") return false;
  if (job.notBefore && Date.parse(job.notBefore) > nowMs) return false;
  return true;
}
