import { MINUTE_MS, minuteOf } from "@troupe/events";

/**
 * A worker's success rate over a recent window (pure; the server, the live pages and the API share it).
 *
 * The window is the minute in progress and the 59 before it: RECENT_MINUTES of the projector's `worker_series`
 * minutes, so 59 to 60 minutes of time. Per-minute buckets are what the read models keep (a sliding 60 minutes to
 * the second would need every outcome's time); the minute in progress is in it, so a worker that starts failing
 * shows it at once; and the oldest minute leaves as the clock passes into a new one, so a page left open needs no
 * event to let an old burst go. An hour: long enough to hold a few attempts of a worker that runs long jobs (the
 * warning rule needs FAILING_MIN_JOBS of them in the window), short enough that a burst of failures an hour ago no
 * longer paints a healthy worker red, as the all-time rate did. The series are kept for at least an hour
 * (`--series-retention-hours` ≥ 1), so the window is always in them.
 */
export const RECENT_MINUTES = 60;

/** One minute of a worker's finished attempts: [minute (epoch ms, its start), completed, failed]. */
export type RecentMinute = readonly [minute: number, completed: number, failed: number];
/** A worker's finished attempts per minute of the window, oldest first; minutes without any are left out. */
export type RecentBuckets = readonly RecentMinute[];

export interface RecentRate {
  /** The first minute in the window (epoch ms). */
  fromMs: number;
  completed: number;
  failed: number;
  /** completed ÷ (completed + failed) × 100; null without attempts in the window. */
  successRate: number | null;
}

/** The start of the oldest minute of a window of `minutes` minutes at `nowMs`: the minute in progress and the ones before it. */
export function windowFrom(nowMs: number, minutes: number): number {
  return minuteOf(nowMs) - (minutes - 1) * MINUTE_MS;
}

/** The start of the recent window's oldest minute at `nowMs`. */
export function recentFrom(nowMs: number): number {
  return windowFrom(nowMs, RECENT_MINUTES);
}

/** The window's sums at `nowMs`: minutes older than the window are left out, so the figure rolls off with the clock. */
export function recentRate(buckets: RecentBuckets | undefined, nowMs: number): RecentRate {
  const fromMs = recentFrom(nowMs);
  let completed = 0;
  let failed = 0;
  // A minute ahead of `nowMs` (an event dated by a clock a little ahead of this one) is recent too.
  for (const [minute, c, f] of buckets ?? []) {
    if (minute < fromMs) continue;
    completed += c;
    failed += f;
  }
  const n = completed + failed;
  return { fromMs, completed, failed, successRate: n ? (completed / n) * 100 : null };
}

/**
 * Buckets with one more outcome in `minute` (a new array: views are values), without the minutes that left the
 * window at `nowMs` — a page left open for hours holds at most the window's minutes. An outcome of a minute already
 * out of the window counts for nothing here, as the server's read (and the projector's series retention) leave it
 * out.
 */
export function addRecent(buckets: RecentBuckets | undefined, minute: number, outcome: "completed" | "failed", nowMs: number): RecentBuckets {
  const fromMs = recentFrom(nowMs);
  const kept = (buckets ?? []).filter(([m]) => m >= fromMs);
  if (minute < fromMs) return kept;
  const i = kept.findIndex(([m]) => m >= minute);
  const add = (c: number, f: number): RecentMinute => (outcome === "completed" ? [minute, c + 1, f] : [minute, c, f + 1]);
  if (i === -1) return [...kept, add(0, 0)];
  const at = kept[i]!;
  if (at[0] === minute) return [...kept.slice(0, i), add(at[1], at[2]), ...kept.slice(i + 1)];
  return [...kept.slice(0, i), add(0, 0), ...kept.slice(i)];
}

/**
 * Two copies of the same worker's buckets, each missing something (a page's, which folded events the server's
 * rows have not seen; the rows, which hold what the page missed while away): per minute, the larger counts. Counts
 * only grow, so the larger is the one that saw more of that minute. As the all-time counts' merge (seedModels).
 */
export function mergeRecent(a: RecentBuckets | undefined, b: RecentBuckets | undefined): RecentBuckets {
  const by = new Map<number, [number, number]>();
  for (const [m, c, f] of [...(a ?? []), ...(b ?? [])]) {
    const had = by.get(m);
    by.set(m, had ? [Math.max(had[0], c), Math.max(had[1], f)] : [c, f]);
  }
  return [...by].sort((x, y) => x[0] - y[0]).map(([m, [c, f]]) => [m, c, f] as const);
}

/**
 * The read models' rows (`workerOutcomes`) as buckets per worker id. A Map, not an object: a worker id may be
 * `__proto__` (ids are [A-Za-z0-9_-]), and SvelteKit sends a Map to the page as one.
 */
export function recentByWorker(rows: Iterable<{ workerId: string; minute: number; completed: number; failed: number }>): Map<string, RecentBuckets> {
  const out = new Map<string, RecentMinute[]>();
  for (const r of rows) {
    if (!r.completed && !r.failed) continue;
    let b = out.get(r.workerId);
    if (!b) out.set(r.workerId, (b = []));
    b.push([r.minute, r.completed, r.failed]);
  }
  for (const b of out.values()) b.sort((x, y) => x[0] - y[0]);
  return out;
}

/** "last 60 min" */
export const RECENT_LABEL = `last ${RECENT_MINUTES} min`;
