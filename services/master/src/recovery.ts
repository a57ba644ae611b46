import { ATTEMPT_MAX, CLOCK_TOLERANCE_MS, type JobError, type JobView, type RequeueReason } from "@troupe/events";
import { attemptsSpent, type MasterState } from "./state.ts";
import { presenceOf, type LivenessConfig } from "./scheduler.ts";

/**
 * What the leader must decide at a moment in time: lost workers, lapsed
 * leases, retryable failures, expired jobs. Pure: the caller appends the
 * decisions as events and the fold applies them.
 */

export interface RecoveryConfig extends LivenessConfig {
  /** A running attempt's lease, renewed by its progress events. */
  leaseMs: number;
  /** First retry delay; doubles with each attempt. */
  backoffMs: number;
  maxBackoffMs: number;
}

export type Decision =
  | { kind: "worker-lost"; workerId: string; instanceId?: string; lastSeenMs: number; jobIds: string[] }
  | { kind: "requeue"; jobId: string; attempt: number; previousAttempt: number; previousWorkerId?: string; reason: RequeueReason; notBeforeMs: number }
  | { kind: "dead"; jobId: string; reason: string; attempts: number; lastError?: JobError };

/** Delay before attempt `next` (2, 3, ...): backoff, 2×backoff, 4×backoff ... capped. */
export function backoffDelay(spent: number, c: Pick<RecoveryConfig, "backoffMs" | "maxBackoffMs">): number {
  return Math.min(c.maxBackoffMs, c.backoffMs * 2 ** Math.max(0, spent - 1));
}

/**
 * Dead, when the job has used the contract's last attempt number (refusals
 * and redrives take numbers without spending attempts): a requeue past it
 * would be an invalid event, and the job would wait for ever.
 */
function outOfAttemptNumbers(s: MasterState, job: JobView, why: string, lastError?: JobError): Decision | undefined {
  if (job.attempt < ATTEMPT_MAX) return undefined;
  return {
    kind: "dead", jobId: job.id, reason: `${why}; attempt number ${job.attempt} is the last the contract allows`.slice(0, 500), attempts: Math.max(0, attemptsSpent(s, job)),
    lastError: lastError ?? job.error ?? { message: why.slice(0, 8000), code: "attempts-exhausted", retryable: false },
  };
}

/**
 * What a retry's backoff counts from: the failure as the log dates it, when that is later than `nowMs`. The master's
 * "now" is an estimate of the server's clock that runs behind it by its deliveries' latency, so a retry was dated
 * 2 ms short of its backoff after the failure (CI). At most the clock tolerance ahead of `nowMs`: a failure dated
 * in the future must not hold its job back.
 */
export function failureClockMs(nowMs: number, failedAt: string | undefined): number {
  const at = failedAt === undefined ? Number.NaN : Date.parse(failedAt);
  return Number.isFinite(at) ? Math.min(Math.max(nowMs, at), nowMs + CLOCK_TOLERANCE_MS) : nowMs;
}

/** How the last attempt ended, in words, for a dead job's reason (it read "failed-retryable; 2 of 2 attempts spent"). */
const LAST_ENDED: Record<Exclude<RequeueReason, "redrive">, string> = {
  "failed-retryable": "the last failed with an error worth retrying",
  "worker-lost": "the last one's worker was lost",
  "lease-expired": "the last one's lease lapsed (no sign of life from its worker)",
  "worker-refused": "the last one was refused or not answered by its worker",
};

/** A new attempt after backoff, or dead once maxAttempts are spent. */
export function retryOrDead(s: MasterState, job: JobView, reason: Exclude<RequeueReason, "redrive">, nowMs: number, c: RecoveryConfig, lastError?: JobError): Decision {
  const spent = attemptsSpent(s, job);
  const last = outOfAttemptNumbers(s, job, `attempt ${job.attempt} ended: ${reason}`, lastError);
  if (last) return last;
  if (spent >= job.spec.maxAttempts) {
    const err = lastError ?? job.error ?? { message: `attempt ${job.attempt} ended: ${reason}`, code: reason, retryable: true };
    return { kind: "dead", jobId: job.id, reason: `gave up after ${spent} of ${job.spec.maxAttempts} attempt${job.spec.maxAttempts === 1 ? "" : "s"}: ${LAST_ENDED[reason]}`, attempts: spent, lastError: err };
  }
  return {
    kind: "requeue", jobId: job.id, attempt: job.attempt + 1, previousAttempt: job.attempt,
    ...(job.workerId ? { previousWorkerId: job.workerId } : {}), reason, notBeforeMs: nowMs + backoffDelay(spent, c),
  };
}

/**
 * After `workerId` refused the job: straight to the next worker, or — once
 * every online worker refused (`everyoneRefused`) — after a backoff. Refusals
 * spend no attempt, but each takes an attempt number.
 */
export function afterRefusal(s: MasterState, job: JobView, workerId: string, why: string, everyoneRefused: boolean, nowMs: number, c: RecoveryConfig): Decision {
  const refusals = s.refusedAttempts.get(job.id) ?? 0;
  const last = outOfAttemptNumbers(s, job, `refused ${refusals + 1} times by the workers, last by ${workerId}: ${why}`, { message: `no worker accepted the job; last refusal by ${workerId}: ${why}`.slice(0, 8000), code: "refused", retryable: false });
  if (last) return last;
  const delay = everyoneRefused ? backoffDelay(refusals + 1, c) : 0;
  return { kind: "requeue", jobId: job.id, attempt: job.attempt + 1, previousAttempt: job.attempt, previousWorkerId: workerId, reason: "worker-refused", notBeforeMs: nowMs + delay };
}

/** A worker declared lost, or one that deregistered while still holding jobs. */
const gone = (l: string | undefined) => l === "lost" || l === "offline";

/** The worker holding the job started again as a new instance since the assignment: the attempt died with the old one. */
function restarted(s: MasterState, job: JobView): boolean {
  const was = s.assignedInstance.get(job.id);
  const now = job.workerId ? s.workers.get(job.workerId)?.instanceId : undefined;
  return was !== undefined && now !== undefined && was !== now;
}

/**
 * Every decision due at `nowMs`. Jobs and workers for which `skip` is true have a decision on its way already.
 * `seeingSinceMs`: since when the master has been leading and connected. Silence before it (no heartbeat,
 * no progress) is not evidence, because the master could not have seen them: after a takeover or a lost
 * connection every worker and every running attempt gets a full window again, instead of being declared
 * lost or lapsed for the master's own blindness (a nats-server restart is not a worker failure).
 * `scheduleMs`: the server's time now, which backoffs count from. `nowMs` lags it while the master's fold is behind
 * (silences are judged as of what it has read); a backoff counted from there ran short by the lag (a review).
 */
export function decide(s: MasterState, nowMs: number, c: RecoveryConfig, skip: (id: string) => boolean = () => false, seeingSinceMs = Number.NEGATIVE_INFINITY, scheduleMs = nowMs): Decision[] {
  const out: Decision[] = [];
  const lostJobs = new Set<string>();
  for (const w of s.workers.values()) {
    if (w.lifecycle === "lost" || w.lifecycle === "offline") continue;
    // Never registered and holding nothing: nothing to announce or recover (forgetUnregistered drops it).
    if (w.browsers === null && w.held.size === 0) continue;
    if (skip(w.id) || presenceOf(w, nowMs, c, seeingSinceMs) !== "lost") continue;
    const jobIds = [...w.held].slice(0, 1000);
    out.push({ kind: "worker-lost", workerId: w.id, ...(w.instanceId ? { instanceId: w.instanceId } : {}), lastSeenMs: w.lastSeenMs, jobIds });
    for (const id of jobIds) lostJobs.add(id);
  }
  for (const id of s.open) {
    const job = s.jobs.get(id);
    // A redriven job whose spec is being read back from the log waits for it.
    if (!job || skip(job.id) || s.needSpec.has(id)) continue;
    switch (job.status) {
      case "assigned":
      case "running": {
        if (lostJobs.has(job.id)) out.push(retryOrDead(s, job, "worker-lost", scheduleMs, c));
        else if (nowMs - Math.max(s.activityMs.get(job.id) ?? nowMs, seeingSinceMs) > c.leaseMs) out.push(retryOrDead(s, job, "lease-expired", scheduleMs, c));
        else if (job.workerId && (gone(s.workers.get(job.workerId)?.lifecycle) || restarted(s, job))) out.push(retryOrDead(s, job, "worker-lost", scheduleMs, c));
        break;
      }
      case "failed":
        if (job.error?.retryable) out.push(retryOrDead(s, job, "failed-retryable", failureClockMs(scheduleMs, job.finishedAt), c, job.error));
        break;
      case "queued":
      case "requeued":
        if (job.spec.expiresAt && Date.parse(job.spec.expiresAt) <= nowMs) {
          out.push({ kind: "dead", jobId: job.id, reason: `expired at ${job.spec.expiresAt} before it started`, attempts: attemptsSpent(s, job) - 1, ...(job.error ? { lastError: job.error } : {}) });
        }
        break;
    }
  }
  return out;
}

/**
 * Drops workers known only from heartbeats (never registered: no browsers known), holding no job,
 * once silent for the lost window. Real workers register at start; heartbeats alone (a worker
 * credential publishing made-up ids) must not grow the state without bound. Returns the ids dropped.
 */
export function forgetUnregistered(s: MasterState, nowMs: number, c: LivenessConfig): string[] {
  const out: string[] = [];
  for (const w of s.workers.values()) {
    if (w.browsers !== null || w.held.size > 0 || presenceOf(w, nowMs, c) !== "lost") continue;
    s.workers.delete(w.id);
    out.push(w.id);
  }
  return out;
}
