import { describe, expect, it } from "vitest";
import { bench } from "./projector.ts";

describe("bench projector --quick", () => {
  it("still runs and reports its figures (speeds are not asserted here)", async () => {
    const r = await bench({ quick: true, log: () => {} });
    expect(r.figures.map((f) => f.name)).toEqual(["bare ordered read+parse events/s", "rebuild events/s", "rebuild / bare read", "live offered rate", "live lag p50", "live lag p99"]);
    for (const f of r.figures) expect(Number.isFinite(f.value)).toBe(true);
    expect(r.params.bareRead).toBe(r.params.events);
  }, 180_000);
});
