import { describe, expect, it } from "vitest";
import { createEvent } from "../codec.ts";
import type { EventData, EventType, TroupeEvent } from "../events.ts";
import { ATTEMPT_ERROR_CHARS, attemptOf, attemptRecordOf, jobAttempts } from "./attempts.ts";
import { evolveJob, type JobView } from "./job.ts";

let clock = Date.parse("2026-01-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();
const ev = <T extends EventType>(type: T, data: EventData<T>) => createEvent(type, data, "test", new Date((clock += 1000))) as Extract<TroupeEvent, { type: `job.${string}` }>;
const spec = { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
const res = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
const met = { totalDuration: 900, responseTime: 100, memoryUsed: 10 };

function fold(events: ReturnType<typeof ev>[], from?: JobView): JobView {
  let job = from;
  for (const e of events) {
    const r = evolveJob(job, e);
    if (!r.ok) throw new Error(`${e.type} refused: ${r.reason} ${r.detail}`);
    job = r.job;
  }
  return job!;
}

describe("jobAttempts", () => {
  it("gives each attempt its worker and outcome: failed on w-a, then completed on w-b", () => {
    const t0 = clock;
    const job = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w-a", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w-a", attempt: 1 }),
      ev("job.failed", { jobId: "j", workerId: "w-a", attempt: 1, error: { message: "waited 5 s for #buy", code: "timeout", retryable: true } }),
      ev("job.requeued", { jobId: "j", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "failed-retryable", notBefore: iso(clock), epoch: 1 }),
      ev("job.assigned", { jobId: "j", workerId: "w-b", attempt: 2, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w-b", attempt: 2 }),
      ev("job.progress", { jobId: "j", workerId: "w-b", attempt: 2, progress: 50 }),
      ev("job.completed", { jobId: "j", workerId: "w-b", attempt: 2, result: res, metrics: met }),
    ]);
    expect(jobAttempts(job)).toEqual([
      { jobId: "j", attempt: 1, workerId: "w-a", assignedAt: iso(t0 + 2000), startedAt: iso(t0 + 3000), endedAt: iso(t0 + 4000), outcome: "failed", errorCode: "timeout", errorMessage: "waited 5 s for #buy", errorRetryable: true },
      { jobId: "j", attempt: 2, workerId: "w-b", assignedAt: iso(t0 + 6000), startedAt: iso(t0 + 7000), endedAt: iso(t0 + 9000), outcome: "completed" },
    ]);
  });

  it("says an attempt under way is assigned, then running, and one whose worker died was requeued for that reason", () => {
    const assigned = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w-a", attempt: 1, epoch: 1 }),
    ]);
    expect(jobAttempts(assigned).map((a) => a.outcome)).toEqual(["assigned"]);
    const running = fold([ev("job.started", { jobId: "j", workerId: "w-a", attempt: 1 })], assigned);
    expect(jobAttempts(running).map((a) => a.outcome)).toEqual(["running"]);
    const lost = fold([
      ev("job.requeued", { jobId: "j", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "worker-lost", notBefore: iso(clock), epoch: 1 }),
      ev("job.assigned", { jobId: "j", workerId: "w-b", attempt: 2, epoch: 1 }),
    ], running);
    expect(jobAttempts(lost).map((a) => [a.attempt, a.workerId, a.outcome, a.reason])).toEqual([[1, "w-a", "requeued", "worker-lost"], [2, "w-b", "assigned", undefined]]);
  });

  it("says an attempt whose progress reached the log before its started is running from the progress, and keeps that start", () => {
    const t0 = clock;
    const early = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w-a", attempt: 1, epoch: 1 }),
      ev("job.progress", { jobId: "j", workerId: "w-a", attempt: 1, progress: 10 }),
    ]);
    expect(early.status).toBe("running");
    expect(jobAttempts(early)).toEqual([{ jobId: "j", attempt: 1, workerId: "w-a", assignedAt: iso(t0 + 2000), startedAt: iso(t0 + 3000), outcome: "running" }]);
    const more = fold([
      ev("job.progress", { jobId: "j", workerId: "w-a", attempt: 1, progress: 20 }),
      ev("job.started", { jobId: "j", workerId: "w-a", attempt: 1 }),
    ], early);
    // Neither a later progress nor the late started moves the start: the job and its attempt ran from the first.
    expect(jobAttempts(more)[0]?.startedAt).toBe(iso(t0 + 3000));
    expect(more.startedAt).toBe(iso(t0 + 3000));
  });

  it("cuts a long error message (the job's own view keeps it whole), never inside a surrogate pair", () => {
    const long = "x".repeat(ATTEMPT_ERROR_CHARS - 1) + "😀" + "y".repeat(50);
    const a = attemptOf("j", { attempt: 1, workerId: "w", assignedAt: iso(clock), outcome: "failed", error: { message: long, retryable: false } });
    expect(a.errorMessage).toBe(`${"x".repeat(ATTEMPT_ERROR_CHARS - 1)}…`);
    expect(a.errorCode).toBeUndefined();
    const short = attemptOf("j", { attempt: 1, workerId: "w", assignedAt: iso(clock), outcome: "failed", error: { message: "boom", code: "navigation", retryable: false } });
    expect(short).toMatchObject({ errorMessage: "boom", errorCode: "navigation", errorRetryable: false });
  });

  it("a row back as a history record lets the reducer close the open attempt as it closes the original (a page folds live events on rows)", () => {
    const running = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w-a", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w-a", attempt: 1 }),
    ]);
    const fromRows: JobView = { ...running, history: jobAttempts(running).map(attemptRecordOf) };
    const next = [
      ev("job.failed", { jobId: "j", workerId: "w-a", attempt: 1, error: { message: "crashed", code: "browser-crashed", retryable: true } }),
      ev("job.requeued", { jobId: "j", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "failed-retryable", notBefore: iso(clock), epoch: 1 }),
      ev("job.assigned", { jobId: "j", workerId: "w-b", attempt: 2, epoch: 1 }),
    ];
    expect(jobAttempts(fold(next, fromRows))).toEqual(jobAttempts(fold(next, running)));
    expect(jobAttempts(fold(next, fromRows)).map((a) => a.outcome)).toEqual(["failed", "assigned"]);
  });
});
