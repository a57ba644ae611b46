import { describe, expect, it } from "vitest";
import { createEvent } from "../codec.ts";
import type { EventData, EventType, TroupeEvent } from "../events.ts";
import { evolveJob, isAssignable, type JobView } from "./job.ts";

let clock = Date.parse("2026-01-01T00:00:00Z");
const ev = <T extends EventType>(type: T, data: EventData<T>) => createEvent(type, data, "test", new Date((clock += 1000))) as Extract<TroupeEvent, { type: `job.${string}` }>;
const spec = { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
const res = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
const met = { totalDuration: 900, responseTime: 100, memoryUsed: 10 };

function fold(events: ReturnType<typeof ev>[]): { job?: JobView; rejected: string[] } {
  let job: JobView | undefined;
  const rejected: string[] = [];
  for (const e of events) {
    const r = evolveJob(job, e);
    if (r.ok) job = r.job;
    else rejected.push(`${e.type}:${r.reason}`);
  }
  return { job, rejected };
}

describe("evolveJob", () => {
  it("runs the happy path and records the attempt", () => {
    const { job, rejected } = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w1", attempt: 1 }),
      ev("job.progress", { jobId: "j", workerId: "w1", attempt: 1, progress: 50, currentStep: { index: 0, type: "navigate" } }),
      ev("job.completed", { jobId: "j", workerId: "w1", attempt: 1, result: res, metrics: met }),
    ]);
    expect(rejected).toEqual([]);
    expect(job).toMatchObject({ status: "completed", progress: 100, attempt: 1, workerId: "w1", duration: 900 });
    expect(job!.history).toEqual([expect.objectContaining({ attempt: 1, workerId: "w1", outcome: "completed" })]);
  });

  it("rejects a late completion from a lost worker's old attempt (fencing)", () => {
    const { job, rejected } = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w1", attempt: 1 }),
      ev("job.requeued", { jobId: "j", attempt: 2, reason: "worker-lost", notBefore: "2026-01-01T00:00:00Z", epoch: 1 }),
      ev("job.assigned", { jobId: "j", workerId: "w2", attempt: 2, epoch: 1 }),
      ev("job.completed", { jobId: "j", workerId: "w1", attempt: 1, result: res, metrics: met }),
      ev("job.completed", { jobId: "j", workerId: "w2", attempt: 2, result: res, metrics: met }),
    ]);
    expect(rejected).toEqual(["job.completed:stale-attempt"]);
    expect(job).toMatchObject({ status: "completed", workerId: "w2", attempt: 2 });
    expect(job!.history.map((a) => [a.attempt, a.workerId, a.outcome])).toEqual([[1, "w1", "requeued"], [2, "w2", "completed"]]);
  });

  it("rejects events from a worker that does not hold the attempt", () => {
    const { rejected } = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w9", attempt: 1 }),
    ]);
    expect(rejected).toEqual(["job.started:wrong-worker"]);
  });

  it("never assigns one attempt twice and ignores an older leader epoch", () => {
    const { job, rejected } = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 5 }),
      ev("job.assigned", { jobId: "j", workerId: "w2", attempt: 1, epoch: 5 }),
      ev("job.requeued", { jobId: "j", attempt: 2, reason: "lease-expired", notBefore: "2026-01-01T00:00:00Z", epoch: 4 }),
    ]);
    expect(rejected).toEqual(["job.assigned:invalid-transition", "job.requeued:stale-epoch"]);
    expect(job).toMatchObject({ status: "assigned", workerId: "w1", epoch: 5 });
  });

  it("redrives a dead job and honours notBefore", () => {
    const { job, rejected } = fold([
      ev("job.submitted", { jobId: "j", spec: { ...spec, runAt: "2030-01-01T00:00:00Z" } }),
      ev("job.dead", { jobId: "j", reason: "expired", attempts: 0, epoch: 1 }),
      ev("job.requeued", { jobId: "j", attempt: 2, reason: "redrive", notBefore: "2026-01-01T00:00:00Z", epoch: 1 }),
    ]);
    expect(rejected).toEqual([]);
    expect(job).toMatchObject({ status: "requeued", attempt: 2 });
    expect(isAssignable(job!, Date.parse("2026-06-01T00:00:00Z"))).toBe(true);
    const delayed = fold([ev("job.submitted", { jobId: "k", spec: { ...spec, runAt: "2030-01-01T00:00:00Z" } })]).job!;
    expect(isAssignable(delayed, Date.parse("2026-06-01T00:00:00Z"))).toBe(false);
  });

  it("refuses to requeue a non-retryable failure, allows a retryable one", () => {
    const base = [
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
    ];
    const hard = fold([...base, ev("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: { message: "x", retryable: false } }), ev("job.requeued", { jobId: "j", attempt: 2, reason: "failed-retryable", notBefore: "2026-01-01T00:00:00Z", epoch: 1 })]);
    expect(hard.rejected).toEqual(["job.requeued:invalid-transition"]);
    const soft = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
      ev("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: { message: "x", retryable: true } }),
      ev("job.requeued", { jobId: "j", attempt: 2, reason: "failed-retryable", notBefore: "2026-01-01T00:00:00Z", epoch: 1 }),
    ]);
    expect(soft.rejected).toEqual([]);
    expect(soft.job).toMatchObject({ status: "requeued", attempt: 2 });
  });

  it("rejects events for unknown jobs and duplicate submissions", () => {
    const { rejected } = fold([
      ev("job.started", { jobId: "nope", workerId: "w1", attempt: 1 }),
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.submitted", { jobId: "j", spec }),
    ]);
    expect(rejected).toEqual(["job.started:unknown-job", "job.submitted:duplicate-job"]);
  });
});
