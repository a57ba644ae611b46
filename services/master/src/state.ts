import { evolveJob, type EventOf, type JobView, type Rejection, type TroupeEvent } from "@troupe/events";

/**
 * The master's state: a deterministic fold of TROUPE_EVENTS plus the heartbeat
 * tail. No I/O and no clock: every time comes from the message (JetStream's
 * server timestamp, so worker clock skew cannot make a worker look lost).
 */

export type WorkerLifecycle = "online" | "draining" | "offline" | "lost";

export interface WorkerView {
  id: string;
  instanceId?: string;
  lifecycle: WorkerLifecycle;
  maxSlots: number;
  /** Browser names it runs; null when only heartbeats are known (matches jobs that name no browser). */
  browsers: string[] | null;
  cpu: number;
  /** Server time (ms) of its last heartbeat or worker event. */
  lastSeenMs: number;
  /** Jobs currently assigned to it or running on it, by the log. */
  held: Set<string>;
}

export interface MasterState {
  jobs: Map<string, JobView>;
  workers: Map<string, WorkerView>;
  byIdempotencyKey: Map<string, string>;
  /** Last stream sequence per subject the master appends to (its decisions, and job.submitted): the expected-last-subject-sequence guard. */
  subjectSeq: Map<string, number>;
  /** Server time (ms) of each running attempt's last sign of life: its lease runs from here. */
  activityMs: Map<string, number>;
  /** Attempt number a redrive started from: attempts spent = attempt - base. */
  attemptBase: Map<string, number>;
  /** Attempts a worker refused (or never answered): they do not count against maxAttempts. */
  refusedAttempts: Map<string, number>;
  /** The worker instance each running attempt was assigned to: a restarted worker no longer runs it. */
  assignedInstance: Map<string, string>;
  /** Stream sequence of each job's submission: FIFO order within a priority. */
  submitSeq: Map<string, number>;
  /** Jobs that may still need a decision (not completed, cancelled, dead or finally failed). */
  open: Set<string>;
  appliedSeq: number;
  rejected: Map<Rejection, number>;
}

export function emptyState(): MasterState {
  return {
    jobs: new Map(), workers: new Map(), byIdempotencyKey: new Map(), subjectSeq: new Map(),
    activityMs: new Map(), attemptBase: new Map(), refusedAttempts: new Map(), assignedInstance: new Map(), submitSeq: new Map(), open: new Set(), appliedSeq: 0, rejected: new Map(),
  };
}

export interface MessageMeta {
  seq: number;
  subject: string;
  /** JetStream server timestamp of the message, ms. */
  timeMs: number;
}

export type ApplyResult =
  | { ok: true; job?: JobView; previous?: JobView }
  | { ok: false; reason: Rejection; detail: string };

function worker(s: MasterState, id: string, timeMs: number): WorkerView {
  let w = s.workers.get(id);
  if (!w) {
    w = { id, lifecycle: "online", maxSlots: 1, browsers: null, cpu: 0, lastSeenMs: timeMs, held: new Set() };
    s.workers.set(id, w);
  }
  return w;
}

const HOLDING = new Set(["assigned", "running"]);

/** Event types the master appends, guarded by expected-last-subject-sequence. */
export const GUARDED: ReadonlySet<string> = new Set(["job.submitted", "job.assigned", "job.requeued", "job.cancelled", "job.dead", "worker.lost"]);

/** Keeps each worker's set of held jobs in step with a job transition. */
function trackHeld(s: MasterState, before: JobView | undefined, after: JobView) {
  const wasHeld = before && HOLDING.has(before.status) ? before.workerId : undefined;
  const isHeld = HOLDING.has(after.status) ? after.workerId : undefined;
  if (wasHeld === isHeld) return;
  if (wasHeld) s.workers.get(wasHeld)?.held.delete(after.id);
  if (isHeld) worker(s, isHeld, 0).held.add(after.id);
}

/** Folds one event of TROUPE_EVENTS. Rejected job events are counted, never folded. */
export function applyEvent(s: MasterState, e: TroupeEvent, m: MessageMeta): ApplyResult {
  s.appliedSeq = Math.max(s.appliedSeq, m.seq);
  // Only subjects the master appends to need a guard sequence (workers' job events would be half the entries, never read).
  if (GUARDED.has(e.type)) s.subjectSeq.set(m.subject, m.seq);
  if (e.type.startsWith("job.")) return applyJobEvent(s, e as Extract<TroupeEvent, { type: `job.${string}` }>, m);
  switch (e.type) {
    case "worker.registered": {
      const w = worker(s, e.data.workerId, m.timeMs);
      w.instanceId = e.data.instanceId;
      w.lifecycle = "online";
      w.maxSlots = e.data.capabilities.maxConcurrentJobs;
      w.browsers = e.data.capabilities.supportedBrowsers.map((b) => b.name);
      w.lastSeenMs = Math.max(w.lastSeenMs, m.timeMs);
      break;
    }
    case "worker.draining":
    case "worker.deregistered": {
      const w = worker(s, e.data.workerId, m.timeMs);
      w.lifecycle = e.type === "worker.draining" ? "draining" : "offline";
      w.lastSeenMs = Math.max(w.lastSeenMs, m.timeMs);
      break;
    }
    case "worker.lost": {
      const w = worker(s, e.data.workerId, m.timeMs);
      // A heartbeat newer than the verdict means it came back; the verdict is about the silence before.
      if (w.lastSeenMs <= Date.parse(e.data.lastSeen)) w.lifecycle = "lost";
      break;
    }
    case "worker.heartbeat":
      applyHeartbeat(s, e, m.timeMs);
      break;
  }
  return { ok: true };
}

function applyJobEvent(s: MasterState, e: Extract<TroupeEvent, { type: `job.${string}` }>, m: MessageMeta): ApplyResult {
  const before = s.jobs.get(e.data.jobId);
  const r = evolveJob(before, e);
  if (!r.ok) {
    s.rejected.set(r.reason, (s.rejected.get(r.reason) ?? 0) + 1);
    return r;
  }
  const job = r.job;
  s.jobs.set(job.id, job);
  trackHeld(s, before, job);
  const settled = job.status === "completed" || job.status === "cancelled" || job.status === "dead" || (job.status === "failed" && !job.error?.retryable);
  if (settled) s.open.delete(job.id);
  else s.open.add(job.id);
  switch (e.type) {
    case "job.submitted":
      s.submitSeq.set(job.id, m.seq);
      if (e.data.idempotencyKey) s.byIdempotencyKey.set(e.data.idempotencyKey, job.id);
      break;
    case "job.assigned": {
      s.activityMs.set(job.id, m.timeMs);
      const inst = s.workers.get(e.data.workerId)?.instanceId;
      if (inst) s.assignedInstance.set(job.id, inst);
      else s.assignedInstance.delete(job.id);
      break;
    }
    case "job.started":
    case "job.progress":
      s.activityMs.set(job.id, m.timeMs);
      break;
    case "job.requeued":
      s.activityMs.delete(job.id);
      if (e.data.reason === "redrive") {
        s.attemptBase.set(job.id, e.data.attempt - 1);
        s.refusedAttempts.delete(job.id);
      }
      if (e.data.reason === "worker-refused") s.refusedAttempts.set(job.id, (s.refusedAttempts.get(job.id) ?? 0) + 1);
      break;
    default:
      s.activityMs.delete(job.id);
  }
  return { ok: true, job, ...(before ? { previous: before } : {}) };
}

/** Folds a heartbeat (TROUPE_HEARTBEATS): presence, load hints, capacity. */
export function applyHeartbeat(s: MasterState, e: EventOf<"worker.heartbeat">, timeMs: number) {
  const w = worker(s, e.data.workerId, timeMs);
  if (timeMs < w.lastSeenMs) return;
  w.lastSeenMs = timeMs;
  w.cpu = e.data.metrics.cpuUsage;
  w.maxSlots = e.data.maxConcurrentJobs;
  if (w.instanceId === undefined) w.instanceId = e.data.instanceId;
  if (e.data.status === "draining") w.lifecycle = "draining";
  // A worker heard from again after it was lost (or after a restart) is back in the pool.
  else if (w.lifecycle === "lost" || w.lifecycle === "offline" || (w.lifecycle === "draining" && e.data.instanceId !== w.instanceId)) w.lifecycle = "online";
  w.instanceId = e.data.instanceId;
}

/** Attempts spent since the job's submission or its last redrive; refused ones are not spent. */
export function attemptsSpent(s: MasterState, job: JobView): number {
  return job.attempt - (s.attemptBase.get(job.id) ?? 0) - (s.refusedAttempts.get(job.id) ?? 0);
}
