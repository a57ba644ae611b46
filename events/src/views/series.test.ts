import { describe, expect, it } from "vitest";
import { emptyFleetMinute, evolveFleetMinute, fleetPoint, histogramAdd, histogramBucketValue, histogramBucket, histogramMerge, histogramPercentile, minuteOf, workerPoint, type Histogram } from "./series.ts";

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
});
