import { evolveJob, type EventOf, type JobSpec, type JobView, type Rejection, type TroupeEvent } from "@troupe/events";

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
  /** Its labels, from its registration (a job's workerLabels must all be among them). */
  labels?: string[];
  /** It echoes an assignment's token in its events (capabilities.attemptTokens): its assignments get one. */
  tokens?: boolean;
  /** It runs page-JavaScript steps (capabilities.scriptSteps, TROUPE_ALLOW_SCRIPT_STEPS): only it is offered such jobs. */
  scriptSteps?: boolean;
  cpu: number;
  /** Server time (ms) of its last heartbeat or worker event. */
  lastSeenMs: number;
  /** Its own heartbeat interval, from its heartbeats (older workers do not say). */
  heartbeatMs?: number;
  /** The worker's own time (event `time`, ms) of its latest registration: a `draining` heartbeat its process made
   *  before that (a resume) is older news, whichever stream is stored or folded first. */
  registeredEventMs?: number;
  /** Jobs currently assigned to it or running on it, by the log. */
  held: Set<string>;
}

/** Statuses after which nothing happens to a job unless a command (retry, cancel of a failed job) brings it back. */
export type SettledStatus = "completed" | "cancelled" | "dead" | "failed";

/** Master event types appended to a job's own subjects after it was submitted: their guard sequences. */
const JOB_DECISIONS = ["assigned", "requeued", "cancelled", "dead"] as const;
type JobDecision = (typeof JOB_DECISIONS)[number];

/**
 * A settled job as the master keeps it: what its answers (cancel/retry),
 * guards and metrics need, at a small fixed size. The spec, result, logs and
 * history stay in the log; a redrive reads the spec back (see needSpec).
 */
export interface FinishedJob {
  id: string;
  status: SettledStatus;
  attempt: number;
  epoch: number;
  /** Worker of the last attempt (a redrive names it as previousWorkerId). */
  workerId: string | undefined;
  /** Stream sequence of the submission: FIFO order again after a redrive. */
  order: number;
  /** Last sequence on the job's decision subjects (the append guard), 0 when none. */
  assigned: number;
  requeued: number;
  cancelled: number;
  dead: number;
  /**
   * Attempts the log took from their worker (requeued, cancelled, dead) that the worker did not end itself: one
   * paused past its lease may still run it when its heartbeat comes back listing the job, and is told to stop.
   * Absent when there is none (most jobs), so the entry stays small; at most STRAYS_KEPT, newest.
   */
  strays?: { workerId: string; attempt: number }[];
}

export const STRAYS_KEPT = 8;

export interface MasterState {
  /** Jobs not settled (queued ... running, retryable failures), in full. */
  jobs: Map<string, JobView>;
  /** Settled jobs, compact (see FinishedJob). */
  finished: Map<string, FinishedJob>;
  /** Jobs brought back from `finished` (a redrive) whose spec is not read back from the log yet: not assignable, no decisions. */
  needSpec: Set<string>;
  workers: Map<string, WorkerView>;
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
    jobs: new Map(), finished: new Map(), needSpec: new Set(), workers: new Map(), subjectSeq: new Map(),
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
  if (e.type.startsWith("job.")) return applyJobEvent(s, e as Extract<TroupeEvent, { type: `job.${string}` }>, m);
  // Only subjects the master appends to need a guard sequence (workers' job events would be half the entries, never read).
  if (GUARDED.has(e.type)) s.subjectSeq.set(m.subject, m.seq);
  switch (e.type) {
    case "worker.registered": {
      const w = worker(s, e.data.workerId, m.timeMs);
      w.instanceId = e.data.instanceId;
      w.lifecycle = "online";
      w.maxSlots = e.data.capabilities.maxConcurrentJobs;
      w.browsers = e.data.capabilities.supportedBrowsers.map((b) => b.name);
      // A registration says everything it has: one without labels clears those of an earlier instance.
      if (e.data.capabilities.labels?.length) w.labels = e.data.capabilities.labels;
      else delete w.labels;
      if (e.data.capabilities.attemptTokens === true) w.tokens = true;
      else delete w.tokens;
      if (e.data.capabilities.scriptSteps === true) w.scriptSteps = true;
      else delete w.scriptSteps;
      w.registeredEventMs = Date.parse(e.time);
      w.lastSeenMs = Math.max(w.lastSeenMs, m.timeMs);
      break;
    }
    case "worker.draining":
    case "worker.deregistered": {
      const w = worker(s, e.data.workerId, m.timeMs);
      // Another process with this worker id leaving (a paused twin stopped after a new one registered, or an old
      // instance's slow stop after its replacement started) says nothing about the registered one.
      if (w.browsers !== null && w.instanceId !== undefined && e.data.instanceId !== w.instanceId) break;
      w.lifecycle = e.type === "worker.draining" ? "draining" : "offline";
      w.lastSeenMs = Math.max(w.lastSeenMs, m.timeMs);
      // The instance that left: its own heartbeats, stored after this (another stream), do not bring it back.
      if (e.type === "worker.deregistered") w.instanceId = e.data.instanceId;
      break;
    }
    case "worker.lost": {
      const w = worker(s, e.data.workerId, m.timeMs);
      // A heartbeat newer than the verdict means it came back; the verdict is about the silence before.
      const lastSeen = Date.parse(e.data.lastSeen);
      if (w.lastSeenMs <= lastSeen) {
        w.lifecycle = "lost";
        // Known seen then: the heartbeat the verdict was about, re-read at start, must not bring it back (applyHeartbeat).
        w.lastSeenMs = lastSeen;
      }
      break;
    }
    case "worker.heartbeat":
      applyHeartbeat(s, e, m.timeMs);
      break;
  }
  return { ok: true };
}

/** A placeholder spec for a job brought back from its compact form, until the real one is read back from the log. */
export const MISSING_SPEC: JobSpec = Object.freeze({ priority: 0, maxAttempts: 1, timeoutMs: 0 }) as JobSpec;
const NO_TAGS: string[] = Object.freeze([]) as unknown as string[];
const NO_HISTORY: JobView["history"] = Object.freeze([]) as unknown as JobView["history"];

/** True when nothing further happens to the job on its own: it can be kept compact. */
export function isSettled(job: Pick<JobView, "status" | "error">): boolean {
  return job.status === "completed" || job.status === "cancelled" || job.status === "dead" || (job.status === "failed" && !job.error?.retryable);
}

/** What the master keeps of a settled job (pure). `seqs` are the guard sequences of its decision subjects. */
export function compactJob(job: JobView, order: number, seqs: Partial<Record<JobDecision, number>>): FinishedJob {
  const strays = job.history
    .filter((r) => (r.outcome === "requeued" || r.outcome === "cancelled" || r.outcome === "dead") && r.requeueReason !== "worker-refused")
    .slice(-STRAYS_KEPT).map((r) => ({ workerId: r.workerId, attempt: r.attempt }));
  return {
    id: job.id, status: job.status as SettledStatus, attempt: job.attempt, epoch: job.epoch, workerId: job.workerId, order,
    assigned: seqs.assigned ?? 0, requeued: seqs.requeued ?? 0, cancelled: seqs.cancelled ?? 0, dead: seqs.dead ?? 0,
    ...(strays.length ? { strays } : {}),
  };
}

/**
 * A JobView to fold the next event into (pure): only what evolveJob reads of a
 * settled job (status, attempt, worker, epoch); the spec is MISSING_SPEC. A
 * compact "failed" job is a final failure (retryable ones are not compacted).
 */
export function thawJob(f: FinishedJob): JobView {
  return {
    id: f.id, status: f.status, spec: MISSING_SPEC, priority: 0, url: undefined, tags: NO_TAGS, idempotencyKey: undefined,
    attempt: f.attempt, workerId: f.workerId, progress: 0, currentStep: undefined, submittedAt: "",
    notBefore: undefined, assignedAt: undefined, startedAt: undefined, lastActivityAt: undefined, finishedAt: undefined,
    duration: undefined, result: undefined, metrics: undefined, error: f.status === "failed" ? { message: "", retryable: false } : undefined, logs: undefined, steps: undefined, screenshots: undefined, epoch: f.epoch,
    history: NO_HISTORY, updatedAt: "",
  };
}

/** A job by id, open (full) or settled (compact). */
export function lookupJob(s: MasterState, id: string): JobView | FinishedJob | undefined {
  return s.jobs.get(id) ?? s.finished.get(id);
}

/** The guard sequence for appending a `decision` about a settled job (undefined when the job is not settled). */
export function finishedGuardSeq(s: MasterState, jobId: string, type: string): number | undefined {
  const f = s.finished.get(jobId);
  if (!f) return undefined;
  const d = type.slice(4) as JobDecision;
  return (JOB_DECISIONS as readonly string[]).includes(d) ? f[d] : 0;
}

/** The subject of another event type of the same job: `<prefix>.evt.job.<id>.<type>` with the last token replaced. */
const sibling = (subject: string, type: string) => subject.slice(0, subject.lastIndexOf(".") + 1) + type;

function applyJobEvent(s: MasterState, e: Extract<TroupeEvent, { type: `job.${string}` }>, m: MessageMeta): ApplyResult {
  const id = e.data.jobId;
  const guarded = GUARDED.has(e.type);
  const fin = s.finished.get(id);
  if (fin) {
    // A settled job keeps its guard sequences in its compact entry, not as subject keys.
    const d = e.type.slice(4);
    if (guarded && (JOB_DECISIONS as readonly string[]).includes(d)) fin[d as JobDecision] = m.seq;
    const r = evolveJob(thawJob(fin), e);
    if (!r.ok) {
      s.rejected.set(r.reason, (s.rejected.get(r.reason) ?? 0) + 1);
      return r;
    }
    // Brought back (a redrive, or the cancel of a failed job): full again, its spec to be read back from the log.
    s.finished.delete(id);
    for (const t of JOB_DECISIONS) if (fin[t]) s.subjectSeq.set(sibling(m.subject, t), fin[t]);
    s.submitSeq.set(id, fin.order);
    s.needSpec.add(id);
    return settleOrKeep(s, e, m, r.job, undefined);
  }
  if (guarded) s.subjectSeq.set(m.subject, m.seq);
  const before = s.jobs.get(id);
  const r = evolveJob(before, e);
  if (!r.ok) {
    s.rejected.set(r.reason, (s.rejected.get(r.reason) ?? 0) + 1);
    return r;
  }
  return settleOrKeep(s, e, m, r.job, before);
}

function settleOrKeep(s: MasterState, e: Extract<TroupeEvent, { type: `job.${string}` }>, m: MessageMeta, job: JobView, before: JobView | undefined): ApplyResult {
  s.jobs.set(job.id, job);
  trackHeld(s, before, job);
  if (isSettled(job)) {
    settle(s, job, m);
  } else {
    s.open.add(job.id);
    trackJob(s, e, m, job);
  }
  return { ok: true, job, ...(before ? { previous: before } : {}) };
}

/** Replaces a settled job's full view with its compact entry and drops everything kept per open job. */
function settle(s: MasterState, job: JobView, m: MessageMeta) {
  const id = job.id;
  const seqs: Partial<Record<JobDecision, number>> = {};
  for (const t of JOB_DECISIONS) {
    const subj = sibling(m.subject, t);
    const v = s.subjectSeq.get(subj);
    if (v !== undefined) {
      seqs[t] = v;
      s.subjectSeq.delete(subj);
    }
  }
  s.subjectSeq.delete(sibling(m.subject, "submitted"));
  s.finished.set(id, compactJob(job, s.submitSeq.get(id) ?? 0, seqs));
  s.jobs.delete(id);
  s.open.delete(id);
  s.needSpec.delete(id);
  s.submitSeq.delete(id);
  s.activityMs.delete(id);
  s.attemptBase.delete(id);
  s.refusedAttempts.delete(id);
  s.assignedInstance.delete(id);
}

function trackJob(s: MasterState, e: Extract<TroupeEvent, { type: `job.${string}` }>, m: MessageMeta, job: JobView) {
  switch (e.type) {
    case "job.submitted":
      s.submitSeq.set(job.id, m.seq);
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
}

/** Folds a heartbeat (TROUPE_HEARTBEATS): presence, load hints, capacity. */
export function applyHeartbeat(s: MasterState, e: EventOf<"worker.heartbeat">, timeMs: number) {
  const w = worker(s, e.data.workerId, timeMs);
  if (timeMs < w.lastSeenMs) return;
  // Only a heartbeat after the one a lost verdict was about brings the worker back: folding the
  // heartbeat tail after the log (a start, a snapshot) must not undo the verdict.
  if (w.lifecycle === "lost" && timeMs <= w.lastSeenMs) return;
  // A deregistered instance is gone for good; only a new instance (a restart) comes back. Its last heartbeat
  // can be stored just after the deregistration (another stream), and it used to put the worker back in the pool
  // as draining, to be declared lost 3 heartbeats later.
  if (w.lifecycle === "offline" && e.data.instanceId === w.instanceId) return;
  // A registered worker's instance changes only by a registration: heartbeats of another process with its id
  // (one paused, then resumed after a new one registered) are not this worker's. Taking them made its instance
  // flip with every heartbeat, and each flip looked like a restart that requeued the jobs it was running.
  if (w.browsers !== null && w.instanceId !== undefined && e.data.instanceId !== w.instanceId) return;
  w.lastSeenMs = timeMs;
  w.cpu = e.data.metrics.cpuUsage;
  w.maxSlots = e.data.maxConcurrentJobs;
  if (e.data.heartbeatMs !== undefined) w.heartbeatMs = e.data.heartbeatMs;
  if (w.instanceId === undefined) w.instanceId = e.data.instanceId;
  // A draining heartbeat its process made before its latest registration is from before a resume (the same rule as
  // the read models' deriveWorkerStatus): the registration, newer, decides. Server times cannot tell: the two streams
  // store in either order, in the same millisecond too.
  if (e.data.status === "draining") {
    if (w.registeredEventMs === undefined || Date.parse(e.time) > w.registeredEventMs) w.lifecycle = "draining";
  }
  // A worker heard from again after it was lost (or after a restart) is back in the pool.
  else if (w.lifecycle === "lost" || w.lifecycle === "offline" || (w.lifecycle === "draining" && e.data.instanceId !== w.instanceId)) w.lifecycle = "online";
  w.instanceId = e.data.instanceId;
}

/** Attempts spent since the job's submission or its last redrive; refused ones are not spent. */
export function attemptsSpent(s: MasterState, job: JobView): number {
  return job.attempt - (s.attemptBase.get(job.id) ?? 0) - (s.refusedAttempts.get(job.id) ?? 0);
}

/**
 * The worker process (instance) an assignment is for: the one the folded assignment was made to, or before
 * the fold (an unacknowledged append being read back) the worker's current one — assignedInstance then still
 * names the previous attempt's, maybe another worker's.
 */
export function assignmentInstance(s: MasterState, jobId: string, workerId: string, attempt: number): string | undefined {
  const cur = s.jobs.get(jobId);
  const folded = cur?.status === "assigned" && cur.workerId === workerId && cur.attempt === attempt;
  return (folded ? s.assignedInstance.get(jobId) : undefined) ?? s.workers.get(workerId)?.instanceId;
}
