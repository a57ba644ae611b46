import { describe, expect, it } from "vitest";
import { validateCommand } from "@troupe/events";
import { DEMO_MIX, demoJob, pickKind } from "./scenarios.ts";

describe("demo jobs", () => {
  it("every kind is a valid jobs.submit body", () => {
    for (const [kind] of DEMO_MIX) {
      const r = validateCommand("jobs.submit", demoJob(kind, "http://127.0.0.1:3005", 7));
      expect(r.ok, `${kind}: ${JSON.stringify(!r.ok && r.error)}`).toBe(true);
    }
  });

  it("picks kinds in the documented proportions", () => {
    expect(DEMO_MIX.reduce((s, [, p]) => s + p, 0)).toBeCloseTo(1);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) counts[pickKind(i / 1000)] = (counts[pickKind(i / 1000)] ?? 0) + 1;
    expect(counts).toEqual({ fast: 450, slow: 200, failing: 150, screenshot: 200 });
  });
});
