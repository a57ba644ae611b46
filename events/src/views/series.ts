/**
 * Per-minute time series for the charts: bucketing, a mergeable histogram for
 * percentiles, and the fleet-wide minute reducer. Pure and deterministic (times
 * come from events), shared by the projector and the browser.
 */

export const MINUTE_MS = 60_000;

/** Start (epoch ms) of the minute that contains `time` (ISO string or epoch ms). */
export function minuteOf(time: string | number): number {
  const ms = typeof time === "number" ? time : Date.parse(time);
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

/**
 * A sparse log-scale histogram of non-negative values (ms): bucket i holds
 * values in (2^((i-1)/8), 2^(i/8)], bucket 0 values ≤ 1. Relative error of a
 * percentile is below 9 %; merging is adding counts, so minutes combine into
 * any range.
 */
export type Histogram = Record<string, number>;

const STEPS_PER_DOUBLING = 8;

export function histogramBucket(value: number): number {
  if (!(value > 1)) return 0;
  return Math.ceil(Math.log2(value) * STEPS_PER_DOUBLING);
}

/** Upper bound of a bucket: the value reported for a percentile that falls in it. */
export function histogramBucketValue(bucket: number): number {
  return bucket <= 0 ? 1 : Math.round(2 ** (bucket / STEPS_PER_DOUBLING) * 1000) / 1000;
}

export function histogramAdd(h: Histogram, value: number): Histogram {
  const k = String(histogramBucket(value));
  return { ...h, [k]: (h[k] ?? 0) + 1 };
}

export function histogramMerge(a: Histogram, b: Histogram): Histogram {
  const out: Histogram = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return out;
}

export function histogramCount(h: Histogram): number {
  let n = 0;
  for (const v of Object.values(h)) n += v;
  return n;
}

/** The p-th percentile (0–100) of the histogram, or null when it is empty. */
export function histogramPercentile(h: Histogram, p: number): number | null {
  const buckets = Object.entries(h).map(([k, n]) => [Number(k), n] as const).sort((x, y) => x[0] - y[0]);
  const total = buckets.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const [b, n] of buckets) {
    seen += n;
    if (seen >= rank) return histogramBucketValue(b);
  }
  return histogramBucketValue((buckets[buckets.length - 1] as readonly [number, number])[0]);
}

/** Percentiles the read side reports. */
export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export function percentiles(h: Histogram): Percentiles {
  return { p50: histogramPercentile(h, 50), p95: histogramPercentile(h, 95), p99: histogramPercentile(h, 99) };
}

/** One minute of the fleet: what the projector stores (histograms) ... */
export interface FleetMinute {
  minute: number;
  /** Attempts that completed / failed in this minute. */
  completed: number;
  failed: number;
  /** Jobs submitted in this minute. */
  submitted: number;
  /** Queue wait (ms): from the moment an attempt could run to its assignment, by assignment minute. */
  queueWait: Histogram;
  /** Run time (ms) of attempts that finished in this minute. */
  runTime: Histogram;
}

export function emptyFleetMinute(minute: number): FleetMinute {
  return { minute, completed: 0, failed: 0, submitted: 0, queueWait: {}, runTime: {} };
}

export type FleetSample =
  | { kind: "submitted" }
  | { kind: "assigned"; queueWaitMs: number }
  | { kind: "completed"; runTimeMs: number }
  | { kind: "failed"; runTimeMs?: number };

/** Adds one sample to its minute. */
export function evolveFleetMinute(m: FleetMinute, s: FleetSample): FleetMinute {
  switch (s.kind) {
    case "submitted":
      return { ...m, submitted: m.submitted + 1 };
    case "assigned":
      return { ...m, queueWait: histogramAdd(m.queueWait, s.queueWaitMs) };
    case "completed":
      return { ...m, completed: m.completed + 1, runTime: histogramAdd(m.runTime, s.runTimeMs) };
    case "failed":
      return { ...m, failed: m.failed + 1, runTime: s.runTimeMs === undefined ? m.runTime : histogramAdd(m.runTime, s.runTimeMs) };
  }
}

/** ... and what the read side returns for a chart. */
export interface FleetSeriesPoint {
  minute: number;
  completed: number;
  failed: number;
  submitted: number;
  /** completed + failed */
  throughput: number;
  queueWait: Percentiles;
  runTime: Percentiles;
}

export function fleetPoint(m: FleetMinute): FleetSeriesPoint {
  return {
    minute: m.minute, completed: m.completed, failed: m.failed, submitted: m.submitted, throughput: m.completed + m.failed,
    queueWait: percentiles(m.queueWait), runTime: percentiles(m.runTime),
  };
}

/** One minute of one worker. Heartbeat sums and job counts are additive, so the two streams may arrive in any order. */
export interface WorkerMinute {
  workerId: string;
  minute: number;
  cpuSum: number;
  memorySum: number;
  /** Heartbeats in the minute. */
  samples: number;
  completed: number;
  failed: number;
}

export interface WorkerSeriesPoint {
  minute: number;
  /** Mean of the minute's heartbeats, null without heartbeats. */
  cpu: number | null;
  memory: number | null;
  completed: number;
  failed: number;
  /** completed + failed in the minute */
  jobs: number;
}

export function workerPoint(m: WorkerMinute): WorkerSeriesPoint {
  return {
    minute: m.minute,
    cpu: m.samples ? m.cpuSum / m.samples : null,
    memory: m.samples ? m.memorySum / m.samples : null,
    completed: m.completed, failed: m.failed, jobs: m.completed + m.failed,
  };
}

/**
 * Start of the bucket of `bucketMs` (a whole number of minutes) that holds `minute`: buckets are aligned on the
 * epoch, so a 15-minute bucket starts at :00, :15, :30 or :45 UTC.
 */
export function bucketOf(minute: number, bucketMs: number): number {
  return Math.floor(minute / bucketMs) * bucketMs;
}

/** Minutes (ascending) merged into buckets of `bucketMs`, `add` combining two of one bucket; each keeps its bucket's start. */
function bucketMinutes<M extends { minute: number }>(minutes: readonly M[], bucketMs: number, add: (a: M, b: M) => M): M[] {
  const out: M[] = [];
  for (const m of minutes) {
    const start = bucketOf(m.minute, bucketMs);
    const last = out[out.length - 1];
    if (last && last.minute === start) out[out.length - 1] = { ...add(last, m), minute: start };
    else out.push({ ...m, minute: start });
  }
  return out;
}

/**
 * Fleet minutes (ascending) merged into buckets of `bucketMs`, one point per bucket that has a minute, its `minute`
 * the bucket's start. Counts are summed; the queue-wait and run-time histograms are merged, so a bucket's
 * percentiles are those of every attempt in it (not an average of the minutes' percentiles). A minute bucket is the
 * minute itself.
 */
export function bucketFleetMinutes(minutes: readonly FleetMinute[], bucketMs: number): FleetSeriesPoint[] {
  return bucketMinutes(minutes, bucketMs, (a, b) => ({
    minute: a.minute, completed: a.completed + b.completed, failed: a.failed + b.failed, submitted: a.submitted + b.submitted,
    queueWait: histogramMerge(a.queueWait, b.queueWait), runTime: histogramMerge(a.runTime, b.runTime),
  })).map(fleetPoint);
}

/**
 * A worker's minutes (ascending) merged into buckets of `bucketMs`, as `bucketFleetMinutes`: job counts summed, CPU and
 * memory the mean of every heartbeat in the bucket (their sums and counts add up), null when none came.
 */
export function bucketWorkerMinutes(minutes: readonly WorkerMinute[], bucketMs: number): WorkerSeriesPoint[] {
  return bucketMinutes(minutes, bucketMs, (a, b) => ({
    workerId: b.workerId, minute: a.minute, cpuSum: a.cpuSum + b.cpuSum, memorySum: a.memorySum + b.memorySum, samples: a.samples + b.samples,
    completed: a.completed + b.completed, failed: a.failed + b.failed,
  })).map(workerPoint);
}
