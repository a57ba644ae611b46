import { describe, expect, it } from "vitest";
import { growthVerdict, latencySummary, median, percentile, spread } from "./stats.ts";

describe("stats", () => {
  it("median interpolates between the middle values and ignores input order", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it("spread gives median, min, max and count", () => {
    expect(spread([5, 1, 9])).toEqual({ median: 5, min: 1, max: 9, n: 3 });
    expect(() => spread([])).toThrow(/no values/);
  });

  it("percentiles interpolate linearly between ranks and reject out-of-range p", () => {
    const v = Array.from({ length: 101 }, (_, i) => i);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile([0, 10], 25)).toBe(2.5);
    expect(() => percentile(v, 101)).toThrow(/0\.\.100/);
  });

  it("latency summary reports p50, p99 and max", () => {
    const s = latencySummary(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(s.p50).toBeCloseTo(50.5);
    expect(s.p99).toBeCloseTo(99.01);
    expect(s.max).toBe(100);
  });

  it("growth verdict: flat cost passes, a cost that rises with size is super-linear", () => {
    const flat = [{ size: 1e3, perItem: 10 }, { size: 1e4, perItem: 9 }, { size: 1e5, perItem: 11 }];
    expect(growthVerdict(flat)?.superLinear).toBe(false);
    const nlogn = [{ size: 1e3, perItem: 10 }, { size: 1e4, perItem: 20 }, { size: 1e5, perItem: 40 }];
    expect(growthVerdict(nlogn)).toEqual({ ratio: 4, superLinear: true });
  });

  it("growth verdict compares with the cheapest smaller size, so start-up cost at 1× cannot hide a late rise", () => {
    const pts = [{ size: 1, perItem: 100 }, { size: 10, perItem: 5 }, { size: 100, perItem: 20 }];
    expect(growthVerdict(pts)).toEqual({ ratio: 4, superLinear: true });
  });

  it("growth verdict leaves out sizes below the minimum and gives none with fewer than two points", () => {
    const pts = [{ size: 100, perItem: 1 }, { size: 1000, perItem: 10 }, { size: 10_000, perItem: 11 }];
    expect(growthVerdict(pts, 2, 1000)?.superLinear).toBe(false);
    expect(growthVerdict(pts, 2, 5000)).toBeUndefined();
  });
});
