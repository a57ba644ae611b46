import { describe, expect, it } from "vitest";
import { createEvent } from "../codec.ts";
import type { EventData, EventType, TroupeEvent } from "../events.ts";
import { sha256Hex } from "../sha256.ts";
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

  it("keeps the screenshots a failed attempt names (the page at the failure among them) for the job's page; the next attempt's assignment clears them", () => {
    const err = { message: "step 2 (click): no", code: "timeout", retryable: true };
    const shots = ["j/1/002-before.png", "j/1/003-failed.png"];
    const first = [
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
      ev("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: err, screenshots: shots }),
    ];
    expect(fold(first).job).toMatchObject({ status: "failed", screenshots: shots });
    const second = [...first, ev("job.requeued", { jobId: "j", attempt: 2, reason: "failed-retryable", notBefore: "2026-01-01T00:00:00Z", epoch: 1 }), ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 2, epoch: 1 })];
    // The view is the attempt under way: a retry running showed the last attempt's failure pictures beside "running" (a review).
    expect(fold(second).job!.screenshots).toBeUndefined();
    // An attempt that failed without any: none shown under its error.
    expect(fold([...second, ev("job.failed", { jobId: "j", workerId: "w1", attempt: 2, error: err })]).job!.screenshots).toBeUndefined();
    const done = fold([...second, ev("job.completed", { jobId: "j", workerId: "w1", attempt: 2, result: { ...res, screenshots: ["j/2/002-before.png"] }, metrics: met })]).job!;
    expect(done.screenshots).toBeUndefined();
    expect(done.result?.screenshots).toEqual(["j/2/002-before.png"]);
  });

  it("takes a worker's events for a tokened attempt only with its token, whatever ids their body names", () => {
    const token = "tok_abcdefghijklmnopqrstu";
    const tokenHash = sha256Hex(token);
    const { job, rejected } = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1, tokenHash }),
      // Forged in w1's name by a credential that was not given the attempt: no token, then a guessed one.
      ev("job.started", { jobId: "j", workerId: "w1", attempt: 1 }),
      ev("job.completed", { jobId: "j", workerId: "w1", attempt: 1, token: "tok_guessedguessedguess", result: res, metrics: met }),
      ev("job.started", { jobId: "j", workerId: "w1", attempt: 1, token }),
      ev("job.progress", { jobId: "j", workerId: "w1", attempt: 1, token, progress: 50 }),
      ev("job.completed", { jobId: "j", workerId: "w1", attempt: 1, token, result: res, metrics: met }),
    ]);
    expect(rejected).toEqual(["job.started:wrong-token", "job.completed:wrong-token"]);
    expect(job).toMatchObject({ status: "completed", tokenHash });
  });

  it("a tokenless assignment (a worker older than tokens) takes events without one, and the next assignment's hash replaces the last", () => {
    const token = "tok_abcdefghijklmnopqrstu";
    const { job, rejected } = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1, tokenHash: sha256Hex(token) }),
      ev("job.requeued", { jobId: "j", attempt: 2, reason: "worker-lost", notBefore: "2026-01-01T00:00:00Z", epoch: 1 }),
      ev("job.assigned", { jobId: "j", workerId: "w0", attempt: 2, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w0", attempt: 2 }),
    ]);
    expect(rejected).toEqual([]);
    expect(job).toMatchObject({ status: "running", workerId: "w0" });
    expect(job!.tokenHash).toBeUndefined();
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
    // Why it died is kept while it is dead, and goes with the redrive.
    expect(job!.endReason).toBeUndefined();
    expect(fold([ev("job.submitted", { jobId: "j", spec }), ev("job.dead", { jobId: "j", reason: "expired at x before it started", attempts: 0, epoch: 1 })]).job!.endReason).toBe("expired at x before it started");
    expect(fold([ev("job.submitted", { jobId: "j", spec }), ev("job.cancelled", { jobId: "j", reason: "not needed", epoch: 1 })]).job!.endReason).toBe("not needed");
    expect(fold([ev("job.submitted", { jobId: "j", spec }), ev("job.cancelled", { jobId: "j", epoch: 1 })]).job!.endReason).toBe("cancelled");
    expect(isAssignable(job!, Date.parse("2026-06-01T00:00:00Z"))).toBe(true);
    const delayed = fold([ev("job.submitted", { jobId: "k", spec: { ...spec, runAt: "2030-01-01T00:00:00Z" } })]).job!;
    expect(isAssignable(delayed, Date.parse("2026-06-01T00:00:00Z"))).toBe(false);
  });

  it("shows the attempt under way: a new assignment clears the last attempt's error, steps, logs and end, which its history record keeps", () => {
    const failed = { message: "step 2 failed", code: "timeout", retryable: true, step: { index: 1, type: "click" } };
    const { job, rejected } = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
      ev("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: failed, logs: [{ time: "2026-01-01T00:00:01Z", level: "error", message: "boom", source: "page" }], steps: [{ index: 0, type: "navigate", status: "ok", durationMs: 5 }, { index: 1, type: "click", status: "failed", durationMs: 9 }], metrics: met }),
      ev("job.requeued", { jobId: "j", attempt: 2, reason: "failed-retryable", notBefore: "2026-01-01T00:00:00Z", epoch: 1 }),
    ]);
    expect(rejected).toEqual([]);
    // Waiting for its next attempt, it still says why.
    expect(job).toMatchObject({ status: "requeued", error: failed });
    const next = evolveJob(job, ev("job.assigned", { jobId: "j", workerId: "w2", attempt: 2, epoch: 1 }));
    if (!next.ok) throw new Error(next.reason);
    expect(next.job).toMatchObject({ status: "assigned", attempt: 2, workerId: "w2" });
    for (const k of ["error", "steps", "logs", "finishedAt", "duration", "metrics"] as const) expect(next.job[k], k).toBeUndefined();
    expect(next.job.history[0]).toMatchObject({ attempt: 1, outcome: "failed", error: failed });
  });

  it("gives a job cancelled while it ran the duration of that attempt (it said \"–\" after 11 s)", () => {
    const { job, rejected } = fold([
      ev("job.submitted", { jobId: "j", spec }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w1", attempt: 1 }),
      ev("job.progress", { jobId: "j", workerId: "w1", attempt: 1, progress: 50 }),
      ev("job.cancelled", { jobId: "j", workerId: "w1", attempt: 1, reason: "enough", epoch: 1 }),
    ]);
    expect(rejected).toEqual([]);
    // One second per event here: started at +3 s, cancelled at +5 s.
    expect(job).toMatchObject({ status: "cancelled", duration: 2000 });
    const queued = fold([ev("job.submitted", { jobId: "q", spec }), ev("job.cancelled", { jobId: "q", epoch: 1 })]);
    expect(queued.job?.duration).toBeUndefined();
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

  it("returns views of one key order whatever path built them; a view reloaded from its JSON evolves to the same JSON", () => {
    const events = [
      ev("job.submitted", { jobId: "j", spec: { ...spec, tags: ["a"], runAt: "2026-01-01T00:00:00Z" }, idempotencyKey: "k" }),
      ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j", workerId: "w1", attempt: 1 }),
      ev("job.progress", { jobId: "j", workerId: "w1", attempt: 1, progress: 40, currentStep: { index: 1, type: "click" } }),
      ev("job.requeued", { jobId: "j", attempt: 2, reason: "worker-lost", notBefore: "2026-01-01T00:00:00Z", epoch: 1 }),
      ev("job.assigned", { jobId: "j", workerId: "w2", attempt: 2, epoch: 2 }),
      ev("job.failed", { jobId: "j", workerId: "w2", attempt: 2, error: { message: "x", retryable: true }, metrics: { totalDuration: 5 } }),
      ev("job.requeued", { jobId: "j", attempt: 3, reason: "failed-retryable", notBefore: "2026-01-01T00:00:00Z", epoch: 2 }),
      ev("job.assigned", { jobId: "j", workerId: "w3", attempt: 3, epoch: 2 }),
      ev("job.completed", { jobId: "j", workerId: "w3", attempt: 3, result: res, metrics: met }),
    ];
    let live: JobView | undefined;
    let reloaded: JobView | undefined;
    const order: string[] = [];
    for (const e of events) {
      const a = evolveJob(live, e);
      // Like the projector after a dropped cache: the previous view comes back from its stored JSON.
      const b = evolveJob(reloaded === undefined ? undefined : (JSON.parse(JSON.stringify(reloaded)) as JobView), e);
      expect(a.ok && b.ok).toBe(true);
      if (!a.ok || !b.ok) return;
      expect(JSON.stringify(b.job)).toBe(JSON.stringify(a.job));
      order.push(Object.keys(a.job).join());
      live = a.job;
      reloaded = b.job;
    }
    expect(new Set(order).size).toBe(1);
    // Stored JSON: present fields only, in the interface's order.
    expect(Object.keys(JSON.parse(JSON.stringify(live)))).toEqual(["id", "status", "spec", "priority", "url", "tags", "idempotencyKey", "attempt", "workerId", "progress", "currentStep", "submittedAt", "notBefore", "assignedAt", "startedAt", "lastActivityAt", "finishedAt", "duration", "result", "metrics", "error", "logs", "epoch", "history", "updatedAt"].filter((k) => !["error", "startedAt", "currentStep"].includes(k)));
    expect(live).toMatchObject({ status: "completed", attempt: 3, workerId: "w3", currentStep: undefined });
    expect(live!.history.map((a) => [a.attempt, a.workerId, a.outcome, a.requeueReason, a.error?.message])).toEqual([
      [1, "w1", "requeued", "worker-lost", undefined], [2, "w2", "failed", undefined, "x"], [3, "w3", "completed", undefined, undefined],
    ]);
  });

  it("never changes the view it is given", () => {
    const submitted = evolveJob(undefined, ev("job.submitted", { jobId: "j", spec }));
    if (!submitted.ok) throw new Error("rejected");
    const before = JSON.stringify(submitted.job);
    const assigned = evolveJob(submitted.job, ev("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 }));
    expect(assigned.ok).toBe(true);
    expect(JSON.stringify(submitted.job)).toBe(before);
  });
});
