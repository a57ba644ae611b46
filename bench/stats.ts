/** Summary statistics for benchmark figures and latency samples (pure, no I/O). */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many values were summarised. */
  n: number;
}

/** Median, min and max of the values; throws on an empty list (a figure with no runs is a bug upstream). */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) throw new Error("spread of no values");
  const s = [...values].sort((a, b) => a - b);
  return { median: percentileSorted(s, 50), min: s[0] as number, max: s[s.length - 1] as number, n: s.length };
}

export function median(values: readonly number[]): number {
  return spread(values).median;
}

/**
 * The p-th percentile (0..100) of ascending values, interpolating linearly
 * between the two closest ranks (so the median of [1,2,3,4] is 2.5).
 */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error("percentile of no values");
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile must be within 0..100, got ${p}`);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

export function percentile(values: readonly number[], p: number): number {
  return percentileSorted([...values].sort((a, b) => a - b), p);
}

/** p50 / p99 / max of latency samples, in the samples' unit. */
export function latencySummary(samples: readonly number[]): { p50: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentileSorted(s, 50), p99: percentileSorted(s, 99), max: s[s.length - 1] as number };
}

/**
 * Flags super-linear growth of a per-item cost series: the per-item cost at
 * the largest size divided by the cheapest per-item cost at any smaller size
 * (small sizes carry fixed start-up cost, so comparing with the first point
 * alone would hide a late rise). Flat work is ~1; `superLinear` when the ratio
 * exceeds `tolerance` (default 2× — a shared 2-core machine jitters by tens of
 * percent, while an O(n log n) or O(n²) drift over three orders of magnitude
 * shows as far more). Points below `minSize` items are left out: there
 * fixed costs and pipelining (everything in flight at once) dominate. No
 * verdict (undefined) with fewer than two points left.
 */
export function growthVerdict(points: readonly { size: number; perItem: number }[], tolerance = 2, minSize = 0): { ratio: number; superLinear: boolean } | undefined {
  const sorted = points.filter((p) => p.size >= minSize).sort((a, b) => a.size - b.size);
  if (sorted.length < 2) return undefined;
  const last = sorted[sorted.length - 1] as { perItem: number };
  const cheapest = Math.min(...sorted.slice(0, -1).map((p) => p.perItem));
  const ratio = last.perItem / cheapest;
  return { ratio, superLinear: ratio > tolerance };
}
