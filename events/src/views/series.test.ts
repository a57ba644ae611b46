import { describe, expect, it } from "vitest";
import { bucketFleetMinutes, bucketOf, bucketWorkerMinutes, emptyFleetMinute, evolveFleetMinute, fleetPoint, histogramAdd, histogramBucketValue, histogramBucket, histogramMerge, histogramPercentile, minuteOf, workerPoint, type Histogram } from "./series.ts";

describe("time series", () => {
  it("buckets times by minute", () => {
    expect(minuteOf("2026-01-01T10:30:59.999Z")).toBe(Date.parse("2026-01-01T10:30:00Z"));
    expect(minuteOf(Date.parse("2026-01-01T10:31:00Z"))).toBe(Date.parse("2026-01-01T10:31:00Z"));
  });

  it("estimates percentiles within 9 % above the true value", () => {
    let h: Histogram = {};
    const values = Array.from({ length: 1000 }, (_, i) => i + 1);
    for (const v of values) h = histogramAdd(h, v);
    for (const [p, exact] of [[50, 500], [95, 950], [99, 990]] as const) {
      const est = histogramPercentile(h, p)!;
      expect(est).toBeGreaterThanOrEqual(exact);
      expect(est).toBeLessThan(exact * 1.09);
    }
    expect(histogramPercentile({}, 50)).toBeNull();
    expect(histogramBucketValue(histogramBucket(0))).toBe(1);
  });

  it("merges histograms by adding counts", () => {
    const a = histogramAdd(histogramAdd({}, 10), 100);
    const b = histogramAdd({}, 100);
    expect(histogramMerge(a, b)).toEqual({ [String(histogramBucket(10))]: 1, [String(histogramBucket(100))]: 2 });
  });

  it("folds fleet samples into a minute and reports throughput and percentiles", () => {
    let m = emptyFleetMinute(0);
    m = evolveFleetMinute(m, { kind: "submitted" });
    m = evolveFleetMinute(m, { kind: "assigned", queueWaitMs: 200 });
    m = evolveFleetMinute(m, { kind: "completed", runTimeMs: 1000 });
    m = evolveFleetMinute(m, { kind: "failed" });
    const p = fleetPoint(m);
    expect(p).toMatchObject({ submitted: 1, completed: 1, failed: 1, throughput: 2 });
    expect(p.runTime.p50).toBeGreaterThanOrEqual(1000);
    expect(p.queueWait.p99).toBeGreaterThanOrEqual(200);
  });

  it("averages worker heartbeats per minute", () => {
    expect(workerPoint({ workerId: "w", minute: 0, cpuSum: 90, memorySum: 300, samples: 3, completed: 2, failed: 1 })).toEqual({ minute: 0, cpu: 30, memory: 100, completed: 2, failed: 1, jobs: 3 });
    expect(workerPoint({ workerId: "w", minute: 0, cpuSum: 0, memorySum: 0, samples: 0, completed: 1, failed: 0 }).cpu).toBeNull();
  });

  describe("buckets for a long chart range", () => {
    const M = 60_000;
    const B = 15 * M;
    const T = Date.parse("2026-01-01T10:00:00Z");

    it("aligns buckets on the epoch (a 15-minute bucket starts at :00, :15, :30, :45 UTC)", () => {
      expect(bucketOf(T + 14 * M, B)).toBe(T);
      expect(bucketOf(T + 15 * M, B)).toBe(T + B);
      expect(bucketOf(T + 7 * M, M)).toBe(T + 7 * M);
    });

    it("sums the fleet's counts and merges its histograms: a bucket's p95 is that of all its attempts, not a mean of minutes", () => {
      let a = emptyFleetMinute(T + 2 * M);
      for (let i = 0; i < 19; i++) a = evolveFleetMinute(evolveFleetMinute(a, { kind: "completed", runTimeMs: 1000 }), { kind: "submitted" });
      let b = emptyFleetMinute(T + 9 * M);
      b = evolveFleetMinute(evolveFleetMinute(b, { kind: "failed", runTimeMs: 60_000 }), { kind: "assigned", queueWaitMs: 500 });
      const c = evolveFleetMinute(emptyFleetMinute(T + 16 * M), { kind: "submitted" });
      const points = bucketFleetMinutes([a, b, c], B);
      expect(points.map((p) => [p.minute, p.completed, p.failed, p.submitted, p.throughput])).toEqual([[T, 19, 1, 19, 20], [T + B, 0, 0, 1, 0]]);
      // 19 runs of 1 s and one of 60 s: p50 ~1 s, p99 (rank 20 of 20) ~60 s; the minutes' p95s averaged would be ~30 s.
      expect(points[0]!.runTime.p50).toBeLessThan(1000 * 1.09);
      expect(points[0]!.runTime.p99).toBeGreaterThanOrEqual(60_000);
      expect(points[0]!.queueWait.p50).toBeGreaterThanOrEqual(500);
      expect(points[1]!.runTime.p50).toBeNull();
      // A minute bucket changes nothing.
      expect(bucketFleetMinutes([a, b], M)).toEqual([fleetPoint(a), fleetPoint(b)]);
    });

    it("averages a worker's CPU and memory over every heartbeat in the bucket and sums its job counts", () => {
      const m = (minute: number, cpuSum: number, samples: number, completed: number) => ({ workerId: "w", minute, cpuSum, memorySum: cpuSum * 10, samples, completed, failed: 1 });
      // 6 heartbeats at 10 % and 2 at 90 %: the mean of the heartbeats is 30 %, not (10 + 90) / 2.
      const points = bucketWorkerMinutes([m(T, 60, 6, 2), m(T + 5 * M, 180, 2, 3), m(T + 20 * M, 0, 0, 4)], B);
      expect(points).toEqual([
        { minute: T, cpu: 30, memory: 300, completed: 5, failed: 2, jobs: 7 },
        // Jobs but no heartbeat: no CPU figure (a gap), not 0 %.
        { minute: T + B, cpu: null, memory: null, completed: 4, failed: 1, jobs: 5 },
      ]);
    });
  });
});
