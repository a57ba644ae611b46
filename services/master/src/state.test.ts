import { describe, expect, it } from "vitest";
import { emptyState } from "./state.ts";
import { logBuilder, registration, SPEC } from "./testing.ts";

describe("applyEvent", () => {
  it("tracks held jobs per worker through assignment and completion", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1", 3, ["chromium", "firefox"]));
    log.add("job.submitted", { jobId: "j1", spec: SPEC, idempotencyKey: "k" });
    log.add("job.assigned", { jobId: "j1", workerId: "w1", attempt: 1, epoch: 4 });
    expect([...s.workers.get("w1")!.held]).toEqual(["j1"]);
    expect(s.workers.get("w1")).toMatchObject({ maxSlots: 3, browsers: ["chromium", "firefox"] });
    expect(s.byIdempotencyKey.get("k")).toBe("j1");
    expect(s.subjectSeq.get("troupe.evt.job.j1.assigned")).toBe(3);
    log.add("job.completed", { jobId: "j1", workerId: "w1", attempt: 1, result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] }, metrics: { totalDuration: 1, responseTime: 1, memoryUsed: 1 } });
    expect(s.workers.get("w1")!.held.size).toBe(0);
    expect(s.open.has("j1")).toBe(false);
    // Guard sequences only for what the master appends; the worker's events need none.
    expect(s.subjectSeq.has("troupe.evt.job.j1.completed")).toBe(false);
  });

  it("records worker.lost's sequence, so a second verdict on the same worker passes the guard", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1", 1, ["chromium"]));
    log.add("worker.lost", { workerId: "w1", lastSeen: new Date(log.now).toISOString(), epoch: 2, jobIds: [] });
    expect(s.subjectSeq.get("troupe.evt.worker.w1.lost")).toBe(2);
  });

  it("rejects and counts a stale attempt and an older epoch, and records their sequence for the guard", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("job.submitted", { jobId: "j", spec: SPEC });
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 5 });
    log.add("job.requeued", { jobId: "j", attempt: 2, reason: "worker-lost", notBefore: new Date(log.now).toISOString(), epoch: 5 });
    expect(log.add("job.started", { jobId: "j", workerId: "w1", attempt: 1 })).toMatchObject({ ok: false, reason: "stale-attempt" });
    expect(log.add("job.assigned", { jobId: "j", workerId: "w2", attempt: 2, epoch: 3 })).toMatchObject({ ok: false, reason: "stale-epoch" });
    expect(s.subjectSeq.get("troupe.evt.job.j.assigned")).toBe(5);
    expect(Object.fromEntries(s.rejected)).toEqual({ "stale-attempt": 1, "stale-epoch": 1 });
    expect(s.jobs.get("j")).toMatchObject({ status: "requeued", attempt: 2 });
  });

  it("brings a lost worker back when it heartbeats again, and counts a redrive's fresh budget", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1"));
    log.add("worker.lost", { workerId: "w1", lastSeen: new Date(log.now).toISOString(), epoch: 1, jobIds: [] });
    expect(s.workers.get("w1")?.lifecycle).toBe("lost");
    log.advance(1000);
    log.add("worker.heartbeat", {
      workerId: "w1", instanceId: "i-w1", status: "online", currentJobs: 0, maxConcurrentJobs: 2, jobIds: [],
      metrics: { memoryUsage: 1, cpuUsage: 42, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 100, averageJobDuration: 0 },
    });
    expect(s.workers.get("w1")).toMatchObject({ lifecycle: "online", cpu: 42 });
    log.add("job.submitted", { jobId: "j", spec: { ...SPEC, maxAttempts: 1 } });
    log.add("job.dead", { jobId: "j", reason: "x", attempts: 1, epoch: 1 });
    log.add("job.requeued", { jobId: "j", attempt: 2, reason: "redrive", notBefore: new Date(log.now).toISOString(), epoch: 1 });
    expect(s.attemptBase.get("j")).toBe(1);
    expect(s.open.has("j")).toBe(true);
  });
});
