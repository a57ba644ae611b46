import { liveOffers, unmetNeeds, workerPresence, type FleetSeriesPoint, type QueueNeed, type WorkerView } from "@troupe/events";
import { isRetired } from "./workers.ts";
import { RECENT_LABEL, recentRate, type RecentBuckets } from "./recent.ts";
import { errorLine, type ErrorGroup } from "./errors.ts";

/**
 * Thresholds of the Overview's warnings. A worker is *failing* when more than FAILING_PERCENT of its finished
 * attempts in the recent window (ui/src/lib/recent.ts, the last 60 min) failed, of at least FAILING_MIN_JOBS there:
 * the all-time minimum, now asked of the window (1 failure of 1 is no pattern). It judged every attempt since the
 * worker registered until 2026-12-01: a burst an hour before kept a healthy worker red, and a worker failing now
 * after 10,000 good attempts never turned red.
 */
export const FAILING_PERCENT = 20;
export const FAILING_MIN_JOBS = 5;
export const TREND_MINUTES = 5;
/**
 * A worker does *clearly better* than the fleet when its failure rate in the window is below this share of the
 * pooled rate of the workers judged (fleetWideFailure): 10 % beside a pooled 30 %, not 18 %.
 */
export const CLEARLY_BETTER_SHARE = 0.5;

/**
 * The problems users otherwise ask other tools about, from the read models
 * (pure, so it is unit-tested without a server).
 */
export function fleetWarnings(
  workers: Iterable<WorkerView>,
  queued: number,
  series: readonly FleetSeriesPoint[],
  nowMs: number,
  suspectAfterMs: number,
  retireAfterMs = 0,
  needs: readonly QueueNeed[] = [],
  /** A worker's finished attempts per minute of the recent window (the page's live copy, or the server's read). */
  recent: (workerId: string) => RecentBuckets | undefined = () => undefined,
  /** The window's most frequent error (ui/src/lib/errors.ts), named by the jobs-not-workers warning. */
  topError?: Pick<ErrorGroup, "code" | "message" | "count">,
): string[] {
  const out: string[] = [];
  const list = [...workers];
  const canTake = list.some((w) => {
    const s = workerPresence(w, nowMs, suspectAfterMs);
    return (s === "online" || s === "busy") && w.currentJobs < w.maxJobs;
  });
  if (queued > 0 && !canTake) out.push(`No worker can take queued jobs: ${queued} waiting, no online worker has a free slot.`);
  // Jobs that ask for a browser or labels no live worker has are skipped by the master until such a worker joins.
  const live = liveOffers(list, nowMs, suspectAfterMs);
  if (live.length) {
    for (const n of unmetNeeds(needs, live)) {
      out.push(`${n.count} queued job${n.count === 1 ? " asks" : "s ask"} for ${n.reason}, which no live worker has: ${n.count === 1 ? "it waits" : "they wait"} until such a worker joins.`);
    }
  }
  const trend = [...series].sort((a, b) => a.minute - b.minute).slice(-TREND_MINUTES);
  const inflow = trend.reduce((s, p) => s + p.submitted, 0);
  const outflow = trend.reduce((s, p) => s + p.throughput, 0);
  if (queued > 0 && trend.length > 0 && inflow > outflow * 1.1 + 1) {
    out.push(`Queue growing faster than it drains: ${inflow} submitted vs ${outflow} finished in the last ${trend.length} min.`);
  }
  // A machine gone for good is no longer a problem to act on; its record stays on its own page.
  const rated = list
    .filter((w) => !isRetired(w, workerPresence(w, nowMs, suspectAfterMs), nowMs, retireAfterMs))
    .map((w) => ({ name: w.name, ...recentRate(recent(w.id), nowMs) }));
  const fleet = fleetWideFailure(rated);
  if (fleet) {
    // One cause on every worker: said once, instead of naming each worker (which sent people to look at machines).
    const range = fleet.minPercent === fleet.maxPercent ? `${fleet.minPercent}` : `${fleet.minPercent}–${fleet.maxPercent}`;
    const how = fleet.failing === fleet.judged
      ? `every worker (${fleet.judged === 2 ? "both" : `all ${fleet.judged}`} fail ${range} % of their attempts in the ${RECENT_LABEL})`
      : `the workers alike (${fleet.failing} of ${fleet.judged} fail more than ${FAILING_PERCENT} % of their attempts in the ${RECENT_LABEL}, the others close: ${range} %, none clearly better)`;
    out.push(`Jobs are failing on ${how}: most likely the jobs or their targets, not the workers${topError ? ` — top error: ${errorLine(topError)}` : ""}.`);
    return out;
  }
  for (const r of rated) {
    const failing = failingPercent(r);
    if (failing !== null) {
      // "Worker Node 01" reads badly as "Worker Worker Node 01".
      out.push(`${/^worker\b/i.test(r.name) ? "" : "Worker "}${r.name} failing ${Math.round(failing)} % of its attempts in the ${RECENT_LABEL} (${r.failed} of ${r.completed + r.failed}).`);
    }
  }
  return out;
}

/**
 * The share of finished attempts that failed, in %, when it is past the Overview's warning threshold (enough
 * attempts, more than FAILING_PERCENT failed); else null. Given a worker's recent window (`recentRate`): the worker
 * cards and page mark it with the same rule the Overview warns by (they showed a plain "79 %" beside the Overview's
 * warning).
 */
export function failingPercent(r: { completed: number; failed: number }): number | null {
  const finished = r.completed + r.failed;
  if (finished < FAILING_MIN_JOBS) return null;
  const p = (r.failed / finished) * 100;
  return p > FAILING_PERCENT ? p : null;
}


/** Jobs failing alike on every worker (fleetWideFailure): how many workers were judged, how many fail, their range. */
export interface FleetFailure {
  /** Workers with at least FAILING_MIN_JOBS finished attempts in the window. */
  judged: number;
  /** Of those, the ones past the failing rule (failingPercent). */
  failing: number;
  /** The judged workers' failure rates, lowest and highest, rounded (%). */
  minPercent: number;
  maxPercent: number;
}

/**
 * Bad jobs or a bad worker? The failures are the jobs' (or their targets') rather than the workers' when they are
 * spread over the workers alike: at least two workers are failing by the Overview's rule (failingPercent), and
 * none of the workers judged — those with at least FAILING_MIN_JOBS finished attempts in the window — does clearly
 * better, i.e. fails less than CLEARLY_BETTER_SHARE of the pooled rate (all their failures ÷ all their finished
 * attempts). A worker with fewer attempts tells nothing either way and is left out. One healthy worker beside
 * failing ones (10 % where the pool fails 30 %) points at the failing machines, and each is named as before. Pure:
 * the Overview gives it the workers' windows as it folds them live.
 */
export function fleetWideFailure(rates: readonly { completed: number; failed: number }[]): FleetFailure | null {
  const judged = rates.filter((r) => r.completed + r.failed >= FAILING_MIN_JOBS);
  const failing = judged.filter((r) => failingPercent(r) !== null).length;
  if (failing < 2) return null;
  const failed = judged.reduce((s, r) => s + r.failed, 0);
  const finished = judged.reduce((s, r) => s + r.completed + r.failed, 0);
  const pooled = failed / finished;
  const rate = (r: { completed: number; failed: number }) => r.failed / (r.completed + r.failed);
  if (judged.some((r) => rate(r) < pooled * CLEARLY_BETTER_SHARE)) return null;
  const percents = judged.map((r) => Math.round(rate(r) * 100));
  return { judged: judged.length, failing, minPercent: Math.min(...percents), maxPercent: Math.max(...percents) };
}
