import { missingLabels, needsScriptSteps, offersBrowser, type JobView } from "@troupe/events";
import type { WorkerView } from "./state.ts";

/** Worker presence and the choice of a worker for a job. Pure. */

export type Presence = "online" | "busy" | "draining" | "suspect" | "lost" | "offline";

export interface LivenessConfig {
  heartbeatIntervalMs: number;
}

/** The longest heartbeat interval a worker may state for itself (its config allows an hour). */
export const MAX_STATED_HEARTBEAT_MS = 600_000;

/**
 * online/busy → suspect after 2 missed intervals → lost after 3; a deregistered worker is offline, not lost.
 * `seeingSinceMs`: silence before it is no evidence (the master could not see the log then).
 */
export function presenceOf(w: WorkerView, nowMs: number, c: LivenessConfig, seeingSinceMs = Number.NEGATIVE_INFINITY): Presence {
  if (w.lifecycle === "offline") return "offline";
  if (w.lifecycle === "lost") return "lost";
  const silent = nowMs - Math.max(w.lastSeenMs, seeingSinceMs);
  // A worker heartbeating slower than the master's setting (a remote one left at the 30 s default under `troupe up`'s
  // 10 s) is judged by its own cadence; a faster one still gets the master's window.
  // Capped: a worker cannot buy itself more than 10 minutes between heartbeats (3 × that to be declared lost).
  const interval = Math.max(c.heartbeatIntervalMs, Math.min(w.heartbeatMs ?? 0, MAX_STATED_HEARTBEAT_MS));
  if (silent > 3 * interval) return "lost";
  if (silent > 2 * interval) return "suspect";
  if (w.lifecycle === "draining") return "draining";
  return w.held.size > 0 ? "busy" : "online";
}

export interface Candidate {
  worker: WorkerView;
  /** Slots in use, including assignments on their way. */
  load: number;
  /** When the master last picked it (ms), for round-robin among equals. */
  lastPickedMs: number;
}

export function supportsBrowser(w: WorkerView, browser: string | undefined): boolean {
  return browser === undefined || (w.browsers !== null && offersBrowser(w.browsers, browser));
}

/** Whether the worker has every label the job asks for. */
export function hasLabels(w: WorkerView, wanted: readonly string[] | undefined): boolean {
  return !wanted?.length || missingLabels(w.labels, wanted).length === 0;
}

/**
 * Whether the worker could run the job at all: registered (one known only from heartbeats may not even exist:
 * a worker credential can publish heartbeats for made-up ids, and asking each one spent an attempt number),
 * the job's browser, every label it asks for, page-JavaScript steps if the job has one (a worker without
 * TROUPE_ALLOW_SCRIPT_STEPS refuses it, and each offer spent an attempt number: the job waits instead).
 */
export function canRun(w: WorkerView, job: JobView): boolean {
  return w.browsers !== null && supportsBrowser(w, job.spec.browser) && hasLabels(w, job.spec.workerLabels)
    && (w.scriptSteps === true || !needsScriptSteps(job.spec));
}

/**
 * The best worker for a job, or undefined: online, a free slot, the job's
 * browser and labels, then most free slots, then least CPU, then least recently picked
 * (round-robin among equals). `exclude` holds workers that refused it just now.
 */
export function pickWorker(job: JobView, candidates: Iterable<Candidate>, nowMs: number, c: LivenessConfig, exclude?: ReadonlySet<string>): Candidate | undefined {
  let best: Candidate | undefined;
  for (const cand of candidates) {
    const w = cand.worker;
    if (exclude?.has(w.id)) continue;
    const p = presenceOf(w, nowMs, c);
    if (p !== "online" && p !== "busy") continue;
    if (cand.load >= w.maxSlots) continue;
    if (!canRun(w, job)) continue;
    if (!best || better(cand, best)) best = cand;
  }
  return best;
}

function better(a: Candidate, b: Candidate): boolean {
  const fa = a.worker.maxSlots - a.load;
  const fb = b.worker.maxSlots - b.load;
  if (fa !== fb) return fa > fb;
  if (a.worker.cpu !== b.worker.cpu) return a.worker.cpu < b.worker.cpu;
  if (a.lastPickedMs !== b.lastPickedMs) return a.lastPickedMs < b.lastPickedMs;
  return a.worker.id < b.worker.id;
}
