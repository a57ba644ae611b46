import { describe, expect, it } from "vitest";
import { serviceGrowth, SERVICE_GROWTH } from "./growth.ts";
import { bench, workersFor } from "./projector.ts";

describe("bench projector --quick", () => {
  it("still runs and reports its figures (speeds are not asserted here)", async () => {
    const r = await bench({ quick: true, log: () => {} });
    expect(r.figures.map((f) => f.name)).toEqual(["bare ordered read+parse events/s", "rebuild events/s", "rebuild / bare read", "bare push read+parse events/s", "rebuild peak RSS above its start", "rebuild / bare push read", "live offered rate", "live lag p50", "live lag p99"]);
    for (const f of r.figures) expect(Number.isFinite(f.value)).toBe(true);
    expect(r.params.bareRead).toBe(r.params.events);
    expect(r.params.pushRead).toBe(r.params.events);
    expect(r.params.size).toBeUndefined();
    expect(r.notes?.join("\n")).toMatch(/rebuild CPU per event: reading thread [\d.]+ µs, writer thread [\d.]+ µs/);
  }, 180_000);

  it("honours BenchOptions.size, so bench growth runs its series (1×, 10× the quick base here)", async () => {
    const g = SERVICE_GROWTH.find((x) => x.bench === "projector")!;
    const sizes: number[] = [];
    const s = await serviceGrowth(g, async () => async (o) => {
      const r = await bench(o);
      expect(r.params).toMatchObject({ size: o.size, events: o.size, bareRead: o.size, workers: workersFor(o.size as number, true, o.size) });
      sizes.push(o.size as number);
      return r;
    }, { quick: true, log: () => {}, maxMultiplier: 10 });
    expect(s.note).toBeUndefined();
    expect(sizes).toEqual([100, 1000]);
    expect(s.points.map((p) => p.size)).toEqual([100, 1000]);
    for (const p of s.points) expect(p.rate).toBeGreaterThan(0);
  }, 180_000);

  it("scales the workers with the size: 1,000 events per worker, 10 to 1,000", () => {
    expect([1_000, 10_000, 100_000, 1_000_000, 5_000_000].map((n) => workersFor(n, false, n))).toEqual([10, 10, 100, 1000, 1000]);
    expect([workersFor(1_000_000, false), workersFor(20_000, true)]).toEqual([1000, 100]);
  });
});
