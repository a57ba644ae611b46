import { describe, expect, it } from "vitest";
import { fleetStats } from "./fleet.ts";
import { jobSummary } from "./read.ts";
import type { JobView } from "./job.ts";

const w = (status: "online" | "busy" | "lost", c: number, f: number) => ({
  status, maxJobs: 4, currentJobs: status === "busy" ? 2 : 0, jobsCompleted: c, jobsFailed: f,
  durationSum: (c + f) * 1000, durationCount: c + f, responseTimeSum: c * 100, responseTimeCount: c,
});

describe("fleet stats", () => {
  it("sums workers and jobs; lost workers add no capacity", () => {
    const s = fleetStats([w("online", 3, 1), w("busy", 1, 0), w("lost", 0, 4)], { completed: 4, failed: 5, queued: 2 });
    expect(s.workers).toMatchObject({ total: 3, capacity: 8, runningJobs: 2, byStatus: { online: 1, busy: 1, lost: 1, suspect: 0 } });
    expect(s.jobs).toMatchObject({ total: 11, byStatus: { completed: 4, failed: 5, queued: 2, running: 0 } });
    expect(s.successRate).toBeCloseTo((4 / 9) * 100, 10);
    expect(s.averageJobDuration).toBe(1000);
    expect(s.averageResponseTime).toBe(100);
  });

  it("is all zeros for an empty fleet", () => {
    expect(fleetStats([], {})).toMatchObject({ successRate: 0, averageJobDuration: 0, workers: { total: 0 }, jobs: { total: 0 } });
  });

  it("summarises a job without its heavy parts", () => {
    const job = { id: "j", status: "completed", spec: { priority: 5, maxAttempts: 1, timeoutMs: 1000 }, priority: 5, tags: [], attempt: 1, progress: 100, submittedAt: "t", epoch: 0, history: [], updatedAt: "u", result: { success: true, data: { big: "x" }, dataExtracted: 1, screenshots: [], logs: [] } } as unknown as JobView;
    const s = jobSummary(job);
    expect(s).toEqual({ id: "j", status: "completed", priority: 5, tags: [], attempt: 1, progress: 100, submittedAt: "t", updatedAt: "u" });
  });
});
