import { canTake, unmetNeeds, type QueueNeed, type WorkerOffer } from "../placement.ts";
import { needsScriptSteps } from "../scenario.ts";
import type { JobView } from "./job.ts";
import { workerPresence, type WorkerView } from "./worker.ts";

/** Presences of a worker that can be offered jobs (draining ones take none, offline and lost ones are gone). */
const TAKING = ["online", "busy", "suspect"];

/** The live workers (online, busy, suspect: not draining, not gone) that have registered what they offer. */
export function liveWorkers(workers: Iterable<WorkerView>, nowMs: number, suspectAfterMs: number): WorkerView[] {
  return [...workers].filter((w) => w.capabilities && TAKING.includes(workerPresence(w, nowMs, suspectAfterMs)));
}

/** What a worker offers a job: browsers, labels, page-JavaScript steps. */
export function offerOf(w: WorkerView): WorkerOffer {
  return {
    browsers: w.capabilities?.supportedBrowsers.map((b) => b.name) ?? [], labels: w.capabilities?.labels ?? [],
    ...(w.capabilities?.scriptSteps ? { scriptSteps: true } : {}),
  };
}

/** What the live workers offer a job. */
export function liveOffers(workers: Iterable<WorkerView>, nowMs: number, suspectAfterMs: number): WorkerOffer[] {
  return liveWorkers(workers, nowMs, suspectAfterMs).map(offerOf);
}

/** What a job asks of a worker, as one need. */
export function needOf(job: Pick<JobView, "spec">): QueueNeed {
  return { ...(job.spec.browser !== undefined ? { browser: job.spec.browser } : {}), labels: job.spec.workerLabels ?? [], ...(needsScriptSteps(job.spec) ? { scriptSteps: true } : {}), count: 1 };
}

/** For a waiting job: what it asks for that no live worker has (null: some live worker could take it, or it is not waiting). */
export function waitingFor(job: JobView, offers: readonly WorkerOffer[]): string | null {
  if (job.status !== "queued" && job.status !== "requeued") return null;
  return unmetNeeds([needOf(job)], offers)[0]?.reason ?? null;
}

/**
 * Why a waiting job is not running yet, in words, for someone following it (`troupe submit --wait`): not due yet,
 * no live worker, something no live worker has, or every worker that could take it busy. Null when none of these
 * holds (it should be assigned at once) or the job is not waiting. Pure.
 */
export function whyWaiting(job: JobView, workers: Iterable<WorkerView>, nowMs: number, suspectAfterMs: number): string | null {
  if (job.status !== "queued" && job.status !== "requeued") return null;
  const due = job.notBefore !== undefined ? Date.parse(job.notBefore) : NaN;
  if (due > nowMs) {
    const at = `${new Date(due).toISOString().slice(11, 19)} UTC`;
    return job.status === "requeued" ? `retried after a backoff, not before ${at}` : `scheduled (runAt), not before ${at}`;
  }
  const all = [...workers];
  const live = liveWorkers(all, nowMs, suspectAfterMs);
  if (!live.length) {
    // Draining workers heartbeat, but take nothing.
    if (all.some((w) => workerPresence(w, nowMs, suspectAfterMs) === "draining")) return "no live worker takes jobs: the ones heartbeating are draining";
    return "no live worker: none has sent a heartbeat lately";
  }
  const need = needOf(job);
  const unmet = unmetNeeds([need], live.map(offerOf))[0];
  if (unmet) return `asks for ${unmet.reason}, which no live worker has`;
  const able = live.filter((w) => canTake(offerOf(w), need));
  // Suspect ones still count above (they may be back any moment, as the dashboard says), but take nothing meanwhile.
  const heard = able.filter((w) => workerPresence(w, nowMs, suspectAfterMs) !== "suspect");
  if (!heard.length) return `the worker${able.length === 1 ? "" : "s"} that can take it ${able.length === 1 ? "has" : "have"} gone quiet (suspect: no heartbeat for two of ${able.length === 1 ? "its" : "their"} intervals)`;
  if (heard.every((w) => w.currentJobs >= w.maxJobs)) {
    const used = heard.reduce((s, w) => s + w.currentJobs, 0);
    const slots = heard.reduce((s, w) => s + w.maxJobs, 0);
    return `every live worker that can take it is busy (${heard.length} worker${heard.length === 1 ? "" : "s"}, ${used} of ${slots} slots in use)`;
  }
  return null;
}
