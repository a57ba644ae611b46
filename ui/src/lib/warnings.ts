import { liveOffers, unmetNeeds, workerPresence, type FleetSeriesPoint, type QueueNeed, type WorkerView } from "@troupe/events";
import { isRetired } from "./workers.ts";
import { RECENT_LABEL, recentRate, type RecentBuckets } from "./recent.ts";

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
  for (const w of list) {
    // A machine gone for good is no longer a problem to act on; its record stays on its own page.
    if (isRetired(w, workerPresence(w, nowMs, suspectAfterMs), nowMs, retireAfterMs)) continue;
    const r = recentRate(recent(w.id), nowMs);
    const failing = failingPercent(r);
    if (failing !== null) {
      // "Worker Node 01" reads badly as "Worker Worker Node 01".
      out.push(`${/^worker\b/i.test(w.name) ? "" : "Worker "}${w.name} failing ${Math.round(failing)} % of its attempts in the ${RECENT_LABEL} (${r.failed} of ${r.completed + r.failed}).`);
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

