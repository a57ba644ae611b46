import { createEvent, jobAttempts, minuteOf, type EventData, type EventType, type FleetMinute, type JobView, type TroupeEvent, type WorkerMinute, type WorkerView } from "@troupe/events";
import { describe, expect, it } from "vitest";
import { foldEvent, isExpectedSkip, type ViewStore } from "./fold.ts";

function mapStore() {
  const m = { jobs: new Map<string, JobView>(), workers: new Map<string, WorkerView>(), fleet: new Map<number, FleetMinute>(), series: new Map<string, WorkerMinute>() };
  const store: ViewStore = {
    job: (id) => m.jobs.get(id), putJob: (j) => void m.jobs.set(j.id, j),
    worker: (id) => m.workers.get(id), putWorker: (w) => void m.workers.set(w.id, w),
    fleetMinute: (x) => m.fleet.get(x), putFleetMinute: (f) => void m.fleet.set(f.minute, f),
    workerMinute: (w, x) => m.series.get(`${w}/${x}`), putWorkerMinute: (s) => void m.series.set(`${s.workerId}/${s.minute}`, s),
  };
  return { m, store };
}

const T0 = Date.parse("2026-05-01T12:00:00Z");
const ev = <T extends EventType>(type: T, data: EventData<T>, at: number) => createEvent(type, data, "t", new Date(T0 + at)) as TroupeEvent;
const spec = { url: "https://e.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
const res = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
const o = { seriesCutoffMs: 0 };

describe("foldEvent", () => {
  it("measures queue wait from (re)queueing or notBefore to assignment, and run time at the end", () => {
    const { m, store } = mapStore();
    const steps = [
      ev("job.submitted", { jobId: "j", spec }, 0),
      ev("job.assigned", { jobId: "j", workerId: "w", attempt: 1, epoch: 1 }, 3000),
      ev("job.started", { jobId: "j", workerId: "w", attempt: 1 }, 3500),
      ev("job.requeued", { jobId: "j", attempt: 2, reason: "lease-expired", notBefore: new Date(T0 + 10_000).toISOString(), epoch: 1 }, 5000),
      ev("job.assigned", { jobId: "j", workerId: "w", attempt: 2, epoch: 1 }, 10_500),
      ev("job.started", { jobId: "j", workerId: "w", attempt: 2 }, 11_000),
      ev("job.completed", { jobId: "j", workerId: "w", attempt: 2, result: res, metrics: { totalDuration: 4000, responseTime: 50, memoryUsed: 1 } }, 15_000),
    ];
    for (const e of steps) expect(foldEvent(store, e, o)).toEqual({ ok: true });
    const f = m.fleet.get(minuteOf(T0))!;
    expect(f).toMatchObject({ submitted: 1, completed: 1, failed: 0 });
    // Waits: 3000 ms, then 500 ms after notBefore (not 5500 after the requeue).
    expect(Object.values(f.queueWait).reduce((a, b) => a + b, 0)).toBe(2);
    expect(f.queueWait).toEqual({ [String(Math.ceil(Math.log2(3000) * 8))]: 1, [String(Math.ceil(Math.log2(500) * 8))]: 1 });
    expect(m.workers.get("w")).toMatchObject({ jobsCompleted: 1, averageJobDuration: 4000 });
    expect(m.series.get(`w/${minuteOf(T0)}`)).toMatchObject({ completed: 1, failed: 0, samples: 0 });
  });

  it("a job that fails on one worker and completes on another: each worker counts its outcome, and the job's attempts say which was where", () => {
    const { m, store } = mapStore();
    const steps = [
      ev("job.submitted", { jobId: "j", spec }, 0),
      ev("job.assigned", { jobId: "j", workerId: "w-a", attempt: 1, epoch: 1 }, 1000),
      ev("job.started", { jobId: "j", workerId: "w-a", attempt: 1 }, 1500),
      ev("job.failed", { jobId: "j", workerId: "w-a", attempt: 1, error: { message: "browser crashed", code: "browser-crashed", retryable: true } }, 2000),
      ev("job.requeued", { jobId: "j", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "failed-retryable", notBefore: new Date(T0 + 2500).toISOString(), epoch: 1 }, 2500),
      ev("job.assigned", { jobId: "j", workerId: "w-b", attempt: 2, epoch: 1 }, 3000),
      ev("job.completed", { jobId: "j", workerId: "w-b", attempt: 2, result: res, metrics: { totalDuration: 900, responseTime: 50, memoryUsed: 1 } }, 4000),
      // w-a's late report of the attempt it lost: fenced, changes nothing.
      ev("job.completed", { jobId: "j", workerId: "w-a", attempt: 1, result: res, metrics: { totalDuration: 900, responseTime: 50, memoryUsed: 1 } }, 4500),
    ];
    expect(steps.map((e) => foldEvent(store, e, o).ok)).toEqual([true, true, true, true, true, true, true, false]);
    expect(m.workers.get("w-a")).toMatchObject({ jobsFailed: 1, jobsCompleted: 0 });
    expect(m.workers.get("w-b")).toMatchObject({ jobsFailed: 0, jobsCompleted: 1 });
    const job = m.jobs.get("j")!;
    expect(job).toMatchObject({ status: "completed", workerId: "w-b" });
    expect(jobAttempts(job).map((a) => [a.workerId, a.attempt, a.outcome, a.errorCode])).toEqual([["w-a", 1, "failed", "browser-crashed"], ["w-b", 2, "completed", undefined]]);
  });

  it("rejects stale and unknown job events without touching any view", () => {
    const { m, store } = mapStore();
    expect(foldEvent(store, ev("job.started", { jobId: "nope", workerId: "w", attempt: 1 }, 0), o)).toMatchObject({ ok: false, reason: "unknown-job" });
    foldEvent(store, ev("job.submitted", { jobId: "j", spec }, 0), o);
    foldEvent(store, ev("job.assigned", { jobId: "j", workerId: "w", attempt: 1, epoch: 2 }, 1), o);
    const r = foldEvent(store, ev("job.completed", { jobId: "j", workerId: "w", attempt: 7, result: res, metrics: { totalDuration: 1, responseTime: 1, memoryUsed: 1 } }, 2), o);
    expect(r).toMatchObject({ ok: false, reason: "stale-attempt" });
    expect(foldEvent(store, ev("job.cancelled", { jobId: "j", epoch: 1 }, 3), o)).toMatchObject({ ok: false, reason: "stale-epoch" });
    expect(m.workers.size).toBe(0);
    expect(m.jobs.get("j")!.status).toBe("assigned");
  });

  it("drops series samples older than the window but still folds the views", () => {
    const { m, store } = mapStore();
    foldEvent(store, ev("worker.heartbeat", { workerId: "w", instanceId: "i", status: "online", currentJobs: 0, maxConcurrentJobs: 1, jobIds: [],
      metrics: { memoryUsage: 1, cpuUsage: 1, diskUsage: 1, networkUsage: 1, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 0, averageJobDuration: 0 } }, 0), { seriesCutoffMs: T0 + 60_000 });
    expect(m.workers.get("w")!.cpu).toBe(1);
    expect(m.series.size).toBe(0);
  });
});

describe("isExpectedSkip", () => {
  it("takes the races of ordinary work for information and everything else for a warning", () => {
    for (const r of ["stale-attempt", "stale-epoch", "invalid-transition"]) expect(isExpectedSkip(r), r).toBe(true);
    for (const r of ["wrong-token", "wrong-worker", "unknown-job", "not-json", "invalid-data"]) expect(isExpectedSkip(r), r).toBe(false);
  });
});
