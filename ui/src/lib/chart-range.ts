/**
 * The charts' time range (`?range=` of the Overview, a worker's page, `/api/stats` and `/api/workers/:id`): how far
 * back they look and the bucket one point stands for. Pure, shared by the server (which reads the buckets) and the
 * browser (which lays them out on the page's clock).
 */
import { bucketOf } from "@troupe/events";

/**
 * The ranges a chart offers. Buckets keep a chart near 60–100 points (1,440 minutes of SVG for a day read no better
 * and cost more); 24 h is also the projector's default series retention (`TROUPE_SERIES_RETENTION_HOURS`).
 */
export const CHART_RANGES = {
  "1h": { label: "1 h", ms: 3600_000, bucketMs: 60_000 },
  "6h": { label: "6 h", ms: 6 * 3600_000, bucketMs: 5 * 60_000 },
  "24h": { label: "24 h", ms: 24 * 3600_000, bucketMs: 15 * 60_000 },
} as const;

export type ChartRange = keyof typeof CHART_RANGES;
export const RANGE_NAMES = Object.keys(CHART_RANGES) as ChartRange[];
export const DEFAULT_RANGE: ChartRange = "1h";

export function isChartRange(v: unknown): v is ChartRange {
  return typeof v === "string" && Object.hasOwn(CHART_RANGES, v);
}

/**
 * A page's `?range=`: absent or empty is the default; anything else that is no range falls back to the default
 * too, with `invalid` saying what was asked (the page says so; the API refuses it instead, `rangeError`).
 */
export function parseRange(raw: string | null | undefined): { range: ChartRange; invalid?: string } {
  if (raw === null || raw === undefined || raw === "") return { range: DEFAULT_RANGE };
  if (isChartRange(raw)) return { range: raw };
  return { range: DEFAULT_RANGE, invalid: raw.slice(0, 40) };
}

/** What an API answer says of a `range` it does not take. */
export function rangeError(raw: string): string {
  return `range: expected one of ${RANGE_NAMES.join(", ")}, got ${JSON.stringify(raw.slice(0, 40))}`;
}

/** The buckets a chart shows at `nowMs`: `from` (the oldest bucket's start) to `to` (the bucket in progress), `bucketMs` apart. */
export interface ChartWindow {
  range: ChartRange;
  bucketMs: number;
  from: number;
  to: number;
}

/** The window of `range` at `nowMs`: as many buckets as the range holds, the last one the bucket in progress. */
export function chartWindow(range: ChartRange, nowMs: number): ChartWindow {
  const { ms, bucketMs } = CHART_RANGES[range];
  const to = bucketOf(nowMs, bucketMs);
  return { range, bucketMs, from: to - (ms / bucketMs - 1) * bucketMs, to };
}

/**
 * What a bucket without a row reads as. `zero` for counts (jobs per minute: no row means nothing happened), but only
 * from `heldFrom` on (the first minute the read models hold: before it there may have been jobs the retention
 * dropped, or nothing yet: unknown, a gap). `gap` for gauges (CPU, memory, percentiles): a worker offline has no
 * CPU, which is not 0 %.
 */
export type Missing = { fill: "zero"; heldFrom: number | null } | { fill: "gap" };

/**
 * One value per bucket of the window, oldest first, for a chart: the points in the window (by their bucket's start;
 * ones outside it, older than the window or later than the page's clock, are left out), the missing buckets as
 * `missing` says. Run on the page's clock, so old buckets roll off and new ones appear between reloads.
 */
export function chartPoints(points: readonly (readonly [number, number | null])[], w: ChartWindow, missing: Missing): [number, number | null][] {
  const byBucket = new Map<number, number | null>();
  for (const [t, v] of points) byBucket.set(bucketOf(t, w.bucketMs), v);
  const zeroFrom = missing.fill === "zero" && missing.heldFrom !== null ? bucketOf(missing.heldFrom, w.bucketMs) : Infinity;
  const out: [number, number | null][] = [];
  for (let t = w.from; t <= w.to; t += w.bucketMs) {
    const v = byBucket.get(t);
    out.push([t, v !== undefined && v !== null ? v : t >= zeroFrom ? 0 : null]);
  }
  return out;
}

/** A bucket's length as a chart's label says it: "min", "5 min" ("Jobs/5 min": counts are the bucket's sums). */
export function bucketName(bucketMs: number): string {
  const m = Math.round(bucketMs / 60_000);
  return m === 1 ? "min" : `${m} min`;
}
