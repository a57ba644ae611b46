import { describe, expect, it } from "vitest";
import { validateCommand } from "@troupe/events";
import { FAILING_PERCENT } from "../src/lib/warnings.ts";
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
    expect(counts).toEqual({ fast: 560, slow: 200, failing: 40, screenshot: 200 });
  });

  it("fails few enough attempts that the Overview does not warn about the demo's healthy workers (it did, at 25 %, and at 15 % within minutes of a start)", () => {
    const failing = DEMO_MIX.find(([k]) => k === "failing")![1];
    const attempts = demoJob("failing", "http://127.0.0.1:3005", 1).maxAttempts as number;
    // Each failing job spends all its attempts; every other job one.
    const failedShare = (failing * attempts) / (1 - failing + failing * attempts);
    // Half the threshold: the Overview judges a worker's last 60 min from 5 attempts on, and a first few dozen attempts
    // at 15 % crossed 20 % by chance.
    expect(failedShare * 100).toBeLessThan(FAILING_PERCENT * 0.5);
  });
});
