import { describe, expect, it } from "vitest";
import { formatUptime, JobStats } from "./stats.ts";

describe("JobStats", () => {
  it("starts neutral and averages what it records", () => {
    const s = new JobStats();
    expect([s.successRate, s.averageJobDuration, s.averageResponseTime]).toEqual([100, 0, 0]);
    s.record({ ok: true, durationMs: 1000, responseTimeMs: 100 });
    s.record({ ok: true, durationMs: 2000, responseTimeMs: 300 });
    s.record({ ok: false, durationMs: 3000 });
    expect(s.total).toBe(3);
    expect(s.successRate).toBe(66.7);
    expect(s.averageJobDuration).toBe(2000);
    expect(s.averageResponseTime).toBe(200);
  });
});

describe("formatUptime", () => {
  it.each([[45_000, "45s"], [5 * 60_000, "5m"], [(2 * 60 + 15) * 60_000, "2h 15m"], [(26 * 60 + 1) * 60_000, "1d 2h 1m"]])("%d ms → %s", (ms, s) => {
    expect(formatUptime(ms)).toBe(s);
  });
});
