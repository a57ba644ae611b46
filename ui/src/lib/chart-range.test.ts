import { describe, expect, it } from "vitest";
import { bucketName, CHART_RANGES, chartPoints, chartWindow, parseRange, rangeError, RANGE_NAMES } from "./chart-range.ts";

const M = 60_000;
const T = Date.parse("2026-12-01T10:00:00Z");

describe("chart range", () => {
  it("reads ?range=: 1h, 6h and 24h; absent or empty is 1h; anything else falls back to 1h and says what was asked", () => {
    expect(RANGE_NAMES).toEqual(["1h", "6h", "24h"]);
    expect(parseRange("6h")).toEqual({ range: "6h" });
    expect(parseRange("24h")).toEqual({ range: "24h" });
    expect(parseRange(null)).toEqual({ range: "1h" });
    expect(parseRange("")).toEqual({ range: "1h" });
    for (const bad of ["7d", "6H", " 6h", "toString", "__proto__", "1h,6h"]) expect(parseRange(bad), bad).toEqual({ range: "1h", invalid: bad });
    // Echoed on the page: bounded.
    expect(parseRange("x".repeat(500)).invalid).toHaveLength(40);
    expect(rangeError("7d")).toBe('range: expected one of 1h, 6h, 24h, got "7d"');
  });

  it("keeps every range near 60–100 points: 1 min buckets for 1 h, 5 min for 6 h, 15 min for 24 h", () => {
    for (const r of RANGE_NAMES) {
      const n = CHART_RANGES[r].ms / CHART_RANGES[r].bucketMs;
      expect(Number.isInteger(n), r).toBe(true);
      expect(n, r).toBeGreaterThanOrEqual(60);
      expect(n, r).toBeLessThanOrEqual(100);
    }
    expect([M, 5 * M, 15 * M].map(bucketName)).toEqual(["min", "5 min", "15 min"]);
  });

  it("a window ends with the bucket in progress and holds the range's buckets, aligned on UTC", () => {
    // 10:07:30: the minute in progress is 10:07; the hour shown is 09:08 … 10:07 (60 minutes).
    expect(chartWindow("1h", T + 7.5 * M)).toEqual({ range: "1h", bucketMs: M, from: T - 52 * M, to: T + 7 * M });
    // The 15-minute bucket in progress is 10:00–10:15; 96 buckets back to 10:15 of the day before.
    const day = chartWindow("24h", T + 7.5 * M);
    expect(day).toMatchObject({ bucketMs: 15 * M, to: T });
    expect((day.to - day.from) / day.bucketMs + 1).toBe(96);
    expect(day.from).toBe(T - 24 * 60 * M + 15 * M);
  });

  describe("points per bucket", () => {
    const w = chartWindow("1h", T + 30 * M); // 09:31 … 10:30
    const at = (i: number) => w.from + i * M; // bucket i

    it("one value per bucket, oldest first; counts read 0 where no row is, from the first minute held", () => {
      const pts = chartPoints([[at(10), 3], [at(12), 1]], w, { fill: "zero", heldFrom: at(5) });
      expect(pts).toHaveLength(60);
      expect(pts[0]).toEqual([at(0), null]); // before the first minute held: unknown, a gap
      expect(pts[4]).toEqual([at(4), null]);
      expect(pts[5]).toEqual([at(5), 0]);
      expect(pts[10]).toEqual([at(10), 3]);
      expect(pts[11]).toEqual([at(11), 0]);
      expect(pts[12]).toEqual([at(12), 1]);
      expect(pts[59]).toEqual([w.to, 0]); // the minute in progress, nothing yet
      // Nothing held at all: no zeros.
      expect(chartPoints([], w, { fill: "zero", heldFrom: null }).every(([, v]) => v === null)).toBe(true);
      // Held since before the window: zeros throughout.
      expect(chartPoints([], w, { fill: "zero", heldFrom: w.from - 3 * 3600_000 }).every(([, v]) => v === 0)).toBe(true);
    });

    it("gauges (CPU, percentiles) are gaps where no row is or the row has no value (a worker offline is no 0 %)", () => {
      const pts = chartPoints([[at(1), 40], [at(2), null], [at(3), 0]], w, { fill: "gap" });
      expect(pts.slice(0, 5)).toEqual([[at(0), null], [at(1), 40], [at(2), null], [at(3), 0], [at(4), null]]);
    });

    it("rolls on with the page's clock: points older than the window are left out, new buckets appear", () => {
      const rows: [number, number][] = [[at(0), 7], [at(59), 2]];
      const later = chartWindow("1h", T + 32 * M); // two minutes on, without a reload
      const pts = chartPoints(rows, later, { fill: "zero", heldFrom: at(0) });
      expect(pts).toHaveLength(60);
      expect(pts[0]).toEqual([at(2), 0]); // 7 at bucket 0 rolled off
      expect(pts[57]).toEqual([at(59), 2]);
      expect(pts.slice(58)).toEqual([[at(60), 0], [at(61), 0]]);
    });

    it("places bucketed rows (a bucket's start) on a long range's buckets", () => {
      const d = chartWindow("6h", T + 30 * M);
      const pts = chartPoints([[d.to - 5 * M, 12]], d, { fill: "zero", heldFrom: d.from });
      expect(pts).toHaveLength(72);
      expect(pts[70]).toEqual([d.to - 5 * M, 12]);
    });
  });
});
