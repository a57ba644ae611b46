import { describe, expect, it } from "vitest";
import { serviceGrowth, SERVICE_GROWTH, sizesFor } from "./growth.ts";
import type { Bench, BenchOptions } from "./report.ts";

const dispatch = SERVICE_GROWTH.find((g) => g.bench === "dispatch")!;

describe("growth series of a service bench (bench injected, no servers)", () => {
  it("sizes are 1×, 10×, 100×, 1000× the base (quick stops at 100×)", () => {
    expect(sizesFor(100, false)).toEqual([100, 1_000, 10_000, 100_000]);
    expect(sizesFor(20, true)).toEqual([20, 200, 2_000]);
  });

  it("runs the bench at each size and flags a per-item cost that grows with size", async () => {
    const calls: BenchOptions[] = [];
    // Cost per job doubles every 10×: super-linear.
    const bench: Bench = async (o) => {
      calls.push(o);
      const size = o.size as number;
      return { bench: "dispatch", params: { size }, figures: [{ name: "jobs/s", value: 1000 / 2 ** Math.log10(size / 100), unit: "jobs/s" }] };
    };
    const s = await serviceGrowth(dispatch, async () => bench, { quick: false, log: () => {} });
    // A quick probe at the smallest size, then the series in full mode.
    expect(calls.map((c) => [c.quick, c.size])).toEqual([[true, 100], [false, 100], [false, 1_000], [false, 10_000], [false, 100_000]]);
    expect(s.points.map((p) => Math.round(p.perItemUs))).toEqual([1000, 2000, 4000, 8000]);
    expect(s.superLinear).toBe(true);
    expect(s.ratio).toBeCloseTo(4);
  });

  it("a bench that ignores size is probed once in quick mode and reported, not run in full", async () => {
    const calls: BenchOptions[] = [];
    const bench: Bench = async (o) => {
      calls.push(o);
      return { bench: "projector", params: { events: 1_000_000 }, figures: [{ name: "rebuild events/s", value: 1, unit: "events/s" }] };
    };
    const s = await serviceGrowth(SERVICE_GROWTH.find((g) => g.bench === "projector")!, async () => bench, { quick: false, log: () => {} });
    expect(calls.map((c) => c.quick)).toEqual([true]);
    expect(s.points).toEqual([]);
    expect(s.note).toMatch(/does not honour BenchOptions\.size/);
  });

  it("a missing bench or a failure mid-series is a note, and the points measured so far stay", async () => {
    const missing = await serviceGrowth(dispatch, async () => { throw new Error("bench/dispatch.ts does not exist yet"); }, { quick: true, log: () => {} });
    expect(missing.note).toMatch(/does not exist yet/);
    const flaky: Bench = async (o) => {
      if ((o.size as number) > 20) throw new Error("out of memory");
      return { bench: "dispatch", params: { size: o.size as number }, figures: [{ name: "jobs/s", value: 100, unit: "jobs/s" }] };
    };
    const s = await serviceGrowth(dispatch, async () => flaky, { quick: true, log: () => {} });
    expect(s.points.map((p) => p.size)).toEqual([20]);
    expect(s.note).toMatch(/failed at size 200: out of memory/);
  });
});
