import { describe, expect, it } from "vitest";
import { bucketIndexAt, bucketLabel, chartScale, legendValue, niceCeil, sparkShape, timeTicks } from "./sparkline.ts";

describe("sparkline geometry", () => {
  it("two series with one point each (a dashboard's first minute): both shown as dots, centred", () => {
    const s = sparkShape([[[60_000, 3]], [[60_000, 5]]], 300, 60);
    expect(s.dots.map((d) => [d.series, d.x])).toEqual([[0, 150], [1, 150]]);
    expect(s.dots[1]!.y).toBeLessThan(s.dots[0]!.y); // 5 is drawn higher than 3
  });

  it("lines through runs, a null breaks the line, a lone point between nulls is a dot", () => {
    const s = sparkShape([[[0, 0], [1, 2], [2, null], [3, 4], [4, null], [5, 1], [6, 1]]], 600, 42);
    expect(s.paths[0]!.match(/[ML]/g)).toEqual(["M", "L", "M", "M", "L"]);
    expect(s.dots).toEqual([{ series: 0, x: 300, y: 2, open: false }]);
  });

  it("scales y to the largest value (at least 1), x to the time range", () => {
    const s = sparkShape([[[0, 0], [10, 0]]], 100, 10);
    expect(s.paths[0]).toBe("M0.0,8.0L100.0,8.0");
    expect(sparkShape([[[0, 0], [10, 10]]], 100, 10).paths[0]).toBe("M0.0,8.0L100.0,2.0");
  });

  describe("the minute in progress (openFrom)", () => {
    const M = 60_000;
    // Counts per minute; the last one is the minute in progress (10 so far of what will be ~30).
    const counts: [number, number | null][] = [[0, 30], [M, 30], [2 * M, 29], [3 * M, 10]];

    it("is left out of the solid line and drawn as its own path from the last finished minute", () => {
      const s = sparkShape([counts], 300, 10, 3 * M);
      expect(s.paths[0]).toBe("M0.0,2.0L100.0,2.0L200.0,2.2"); // no drop to 10 on the solid line
      expect(s.open[0]).toBe("M200.0,2.2L300.0,6.0"); // the drop is its own (dashed) path
      expect(s.dots).toEqual([]);
      // Without openFrom every point is on the solid line, as before.
      const all = sparkShape([counts], 300, 10);
      expect(all.paths[0]).toBe("M0.0,2.0L100.0,2.0L200.0,2.2L300.0,6.0");
      expect(all.open[0]).toBe("");
    });

    it("keeps the time and value ranges of the whole series (no rescale when the minute ends)", () => {
      // The finished minute is scaled against the open one's 50 and placed at the left, not centred alone.
      const s = sparkShape([[[0, 1], [M, 50]]], 100, 10, M);
      expect(s.paths[0]).toBe("M0.0,7.9");
      expect(s.open[0]).toBe("M0.0,7.9L100.0,2.0");
      expect(s.dots).toEqual([{ series: 0, x: 0, y: expect.closeTo(7.88, 6), open: false }]);
    });

    it("an open point with nothing before it is a faint dot of its own; a lone finished point stays a dot", () => {
      const s = sparkShape([[[3 * M, 4]], [[2 * M, 5], [3 * M, 1]]], 300, 60, 3 * M);
      expect(s.paths).toEqual(["", "M0.0,2.0"]);
      expect(s.open).toEqual(["M300.0,13.2", "M0.0,2.0L300.0,46.8"]);
      expect(s.dots.map((d) => [d.series, d.x, d.open])).toEqual([[0, 300, true], [1, 0, false]]);
    });

    it("a null before the open minute breaks the line: the open point stands alone", () => {
      const s = sparkShape([[[0, 2], [M, null], [2 * M, 1]]], 200, 10, 2 * M);
      expect(s.open[0]).toBe("M200.0,5.0");
      expect(s.dots.map((d) => d.open)).toEqual([false, true]);
    });

    it("the legend names the last finished minute; only a series with nothing finished shows its open value (so far)", () => {
      expect(legendValue(counts, 3 * M)).toEqual({ value: 29, open: false });
      expect(legendValue(counts)).toEqual({ value: 10, open: false });
      expect(legendValue([[3 * M, 4]], 3 * M)).toEqual({ value: 4, open: true });
      expect(legendValue([[M, 7], [2 * M, null], [3 * M, 4]], 3 * M)).toEqual({ value: 7, open: false });
      expect(legendValue([[0, null]], 3 * M)).toBeUndefined();
    });
  });

  describe("axes", () => {
    const M = 60_000;
    const T = Date.parse("2026-12-01T10:00:00Z");

    it("a percent series runs 0–100 whatever its values (2 % CPU is drawn near the bottom, not filling the box)", () => {
      expect(chartScale([2, 1.5, null, 3], true)).toBe(100);
      expect(chartScale([], true)).toBe(100);
      // Never clipped: a value past 100 (a bad reading) stretches the scale.
      expect(chartScale([130], true)).toBe(130);
      const s = sparkShape([[[0, 2], [M, 2]]], 100, 102, Infinity, { yMax: chartScale([2], true) });
      expect(s.paths[0]).toBe("M0.0,98.0L100.0,98.0");
    });

    it("other series start at 0 and run to their largest value rounded up to a figure the axis names, at least 1", () => {
      expect(chartScale([3, 12, 37], false)).toBe(40);
      expect(chartScale([0, 0], false)).toBe(1);
      expect(chartScale([null], false)).toBe(1);
      expect(chartScale([25_268], false)).toBe(30_000);
      expect([0.4, 1, 7, 9, 11, 100, 101, 2590].map(niceCeil)).toEqual([0.4, 1, 8, 10, 12, 100, 120, 3000]);
      // The top of the scale at the top of the box, 0 at the bottom (2 px margins).
      const s = sparkShape([[[0, 0], [M, 37]]], 100, 44, Infinity, { yMax: 40 });
      expect(s.paths[0]).toBe("M0.0,42.0L100.0,5.0");
    });

    it("a window's time range fixes x: a series that starts late starts right of the left edge", () => {
      // An hour's window, the series only in its last half (a worker registered 30 min ago).
      const s = sparkShape([[[T + 30 * M, 1], [T + 60 * M, 1]]], 120, 10, Infinity, { x0: T, x1: T + 60 * M, yMax: 1 });
      expect(s.paths[0]).toBe("M60.0,2.0L120.0,2.0");
    });

    it("the time axis names the first bucket, the middle one and the bucket in progress in UTC HH:MM", () => {
      expect(timeTicks(T - 59 * M, T, M)).toEqual([
        { at: T - 59 * M, x: 0, label: "09:01" },
        { at: T - 30 * M, x: 29 / 59, label: "09:30" },
        { at: T, x: 1, label: "10:00 UTC" },
      ]);
      expect(timeTicks(T, T, M)).toEqual([{ at: T, x: 0.5, label: "10:00 UTC" }]);
      expect(timeTicks(T - 15 * M, T, 15 * M).map((t) => t.label)).toEqual(["09:45", "10:00 UTC"]);
    });

    it("the readout names a minute, or a longer bucket's span; the pointer picks the nearest bucket", () => {
      expect(bucketLabel(T + 5 * M, M)).toBe("10:05 UTC");
      expect(bucketLabel(T + 45 * M, 15 * M)).toBe("10:45–11:00 UTC");
      expect(bucketIndexAt(0, 60)).toBe(0);
      expect(bucketIndexAt(0.5, 60)).toBe(30);
      expect(bucketIndexAt(1, 60)).toBe(59);
      expect(bucketIndexAt(1.3, 60)).toBe(59);
      expect(bucketIndexAt(-0.2, 60)).toBe(0);
      expect(bucketIndexAt(0.7, 1)).toBe(0);
    });
  });
});
