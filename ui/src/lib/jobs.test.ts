import { describe, expect, it } from "vitest";
import { bulkQuestion, cancelQuestion, progressShown } from "./jobs.ts";
import { createEvent, evolveJob, jobAttempts, jobSummary, type EventData, type EventType, type JobView, type TroupeEvent, type WorkerJob } from "@troupe/events";
import { attemptBadge, attemptText, jobsUnderWayOn, laterText, listRows, summaryOf, viewFromSummary, workerJobRows, workerPageJobs } from "./jobs.ts";
import { applyEvent, seedModels, type LiveModels } from "./live/apply.ts";

/** A worker page's "Recent jobs" (pure parts): rows from the server, then live events folded on them. */

const T0 = Date.parse("2026-01-15T10:00:00.000Z");
let clock = T0;
const ev = <T extends EventType>(type: T, data: EventData<T>) => createEvent(type, data, "test", new Date((clock += 1000))) as TroupeEvent;
const iso = () => new Date(clock).toISOString();
const spec = { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
const result = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
const metrics = { totalDuration: 900, responseTime: 90, memoryUsed: 10 };

/** What the projector holds after `events`: the job's row as workerJobs() returns it. */
function row(events: TroupeEvent[]): WorkerJob {
  let job: JobView | undefined;
  for (const e of events) {
    const r = evolveJob(job, e as Extract<TroupeEvent, { type: `job.${string}` }>);
    if (!r.ok) throw new Error(`${e.type}: ${r.reason}`);
    job = r.job;
  }
  return { job: jobSummary(job!), attempts: jobAttempts(job!) };
}

const models = (): LiveModels => ({ workers: new Map(), recent: new Map(), jobs: new Map(), trackNewJobs: true, trackNewWorkers: false, summariesOnly: true });
const shown = (m: LiveModels, workerId: string) => workerJobRows(m.jobs.values(), workerId, 20).map((r) => [r.job.id, attemptText(r.here), laterText(r.job, r.here)]);

describe("a worker's recent jobs", () => {
  it("keeps a job that failed here on screen while it is requeued, runs and completes on another worker, and says so", () => {
    clock = T0;
    const m = models();
    const running = row([
      ev("job.submitted", { jobId: "j1", spec }),
      ev("job.assigned", { jobId: "j1", workerId: "w-a", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j1", workerId: "w-a", attempt: 1 }),
    ]);
    seedModels(m, undefined, workerPageJobs([running], []), false);
    expect(shown(m, "w-a")).toEqual([["j1", "running", ""]]);
    const live = [
      ev("job.failed", { jobId: "j1", workerId: "w-a", attempt: 1, error: { message: "browser crashed", code: "browser-crashed", retryable: true } }),
      ev("job.requeued", { jobId: "j1", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "failed-retryable", notBefore: iso(), epoch: 1 }),
    ];
    for (const e of live) expect(applyEvent(m, e).rejected).toBeUndefined();
    expect(shown(m, "w-a")).toEqual([["j1", "failed", "requeued, attempt 2"]]);
    applyEvent(m, ev("job.assigned", { jobId: "j1", workerId: "w-b", attempt: 2, epoch: 1 }));
    expect(shown(m, "w-a")).toEqual([["j1", "failed", "assigned on w-b, attempt 2"]]);
    applyEvent(m, ev("job.completed", { jobId: "j1", workerId: "w-b", attempt: 2, result, metrics }));
    expect(shown(m, "w-a")).toEqual([["j1", "failed", "completed on w-b, attempt 2"]]);
    // w-b's page, from the same models: completed there, its own current attempt.
    expect(shown(m, "w-b")).toEqual([["j1", "completed", ""]]);
    const [r] = workerJobRows(m.jobs.values(), "w-a", 20);
    expect(r!.here.error).toMatchObject({ code: "browser-crashed", message: "browser crashed" });
    // The list as it was (jobs whose current worker this is) lost it.
    expect(listRows(m.jobs.values(), "", 20, "w-a")).toEqual([]);
  });

  it("says a job whose last attempt failed here went dead (it showed '–', as if still under way)", () => {
    clock = T0;
    const m = models();
    const r = row([
      ev("job.submitted", { jobId: "j-dead", spec }),
      ev("job.assigned", { jobId: "j-dead", workerId: "w-a", attempt: 1, epoch: 1 }),
      ev("job.started", { jobId: "j-dead", workerId: "w-a", attempt: 1 }),
    ]);
    seedModels(m, undefined, workerPageJobs([r], []), false);
    applyEvent(m, ev("job.failed", { jobId: "j-dead", workerId: "w-a", attempt: 1, error: { message: "no #checkout", code: "timeout", retryable: true } }));
    expect(shown(m, "w-a")).toEqual([["j-dead", "failed", ""]]);
    applyEvent(m, ev("job.dead", { jobId: "j-dead", reason: "gave up after 1 of 1 attempt: the last failed with an error worth retrying", attempts: 1, epoch: 1 }));
    expect(shown(m, "w-a")).toEqual([["j-dead", "failed", "dead, attempt 1"]]);
  });

  it("says a job whose worker died was lost here, and shows a job assigned here after the page loaded", () => {
    clock = T0;
    const m = models();
    const lostLater = row([
      ev("job.submitted", { jobId: "j-lost", spec }),
      ev("job.assigned", { jobId: "j-lost", workerId: "w-a", attempt: 1, epoch: 1 }),
      ev("job.requeued", { jobId: "j-lost", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "worker-lost", notBefore: iso(), epoch: 1 }),
    ]);
    // A waiting job the page follows (the jobs under way), without history; and a new submission.
    const waiting = row([ev("job.submitted", { jobId: "j-wait", spec })]).job;
    seedModels(m, undefined, workerPageJobs([lostLater], [waiting]), false);
    const [lost] = workerJobRows(m.jobs.values(), "w-a", 20);
    expect([attemptText(lost!.here), attemptBadge(lost!.here), laterText(lost!.job, lost!.here)]).toEqual(["lost (the worker stopped answering)", "lost", "requeued, attempt 2"]);
    applyEvent(m, ev("job.assigned", { jobId: "j-wait", workerId: "w-a", attempt: 1, epoch: 1 }));
    applyEvent(m, ev("job.submitted", { jobId: "j-new", spec }));
    applyEvent(m, ev("job.assigned", { jobId: "j-new", workerId: "w-a", attempt: 1, epoch: 1 }));
    applyEvent(m, ev("job.assigned", { jobId: "j-lost", workerId: "w-c", attempt: 2, epoch: 1 }));
    // Newest attempt here first; a job assigned elsewhere after it was here keeps its place (its attempt here).
    expect(shown(m, "w-a")).toEqual([["j-new", "assigned", ""], ["j-wait", "assigned", ""], ["j-lost", "lost (the worker stopped answering)", "assigned on w-c, attempt 2"]]);
    expect(workerJobRows(m.jobs.values(), "w-a", 2).map((r) => r.job.id)).toEqual(["j-new", "j-wait"]);
  });

  it("seeds a job both among the rows and among the jobs under way with its attempts (the history-less one took its row away)", () => {
    clock = T0;
    const r = row([
      ev("job.submitted", { jobId: "j1", spec }),
      ev("job.assigned", { jobId: "j1", workerId: "w-a", attempt: 1, epoch: 1 }),
      ev("job.requeued", { jobId: "j1", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "lease-expired", notBefore: iso(), epoch: 1 }),
    ]);
    const m = models();
    seedModels(m, undefined, workerPageJobs([r], [r.job]), false);
    expect(shown(m, "w-a")).toEqual([["j1", "lost (no sign of life within the lease)", "requeued, attempt 2"]]);
    // A job seen twice is seeded once.
    expect(workerPageJobs([r], [r.job])).toHaveLength(1);
  });

  it("a catch-up reload with rows older than the page keeps what the page folded (the projector is behind)", () => {
    clock = T0;
    const events = [
      ev("job.submitted", { jobId: "j1", spec }),
      ev("job.assigned", { jobId: "j1", workerId: "w-a", attempt: 1, epoch: 1 }),
    ];
    const old = row(events);
    const m = models();
    seedModels(m, undefined, workerPageJobs([old], []), false);
    for (const e of [
      ev("job.requeued", { jobId: "j1", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "worker-lost", notBefore: iso(), epoch: 1 }),
      ev("job.assigned", { jobId: "j1", workerId: "w-b", attempt: 2, epoch: 1 }),
    ]) applyEvent(m, e);
    seedModels(m, undefined, workerPageJobs([old], []), true);
    expect(shown(m, "w-a")).toEqual([["j1", "lost (the worker stopped answering)", "assigned on w-b, attempt 2"]]);
  });
});


describe("job page helpers", () => {
  it("the Cancel question names the job, its status and a running job's progress", () => {
    expect(cancelQuestion({ id: "j1", status: "running", progress: 39.6 })).toEqual({ title: "Cancel job j1 (running, 40 %)?", effect: "A cancelled job cannot be retried.", keep: "Keep it running" });
    expect(cancelQuestion({ id: "j2", status: "queued", progress: 0 })).toEqual({ title: "Cancel job j2 (queued)?", effect: "A cancelled job cannot be retried.", keep: "Keep it queued" });
  });

  it("the bulk question names the count, the status and the search, what the action does, and which jobs it leaves out and why", () => {
    const skipped = (n: string, s: string) => `Exactly the ${n} counted here: any that turns ${s} while this is open is left alone, any no longer ${s} by then is skipped, and any the master refuses is listed.`;
    expect(bulkQuestion("retry", { status: "dead", q: "shop", matched: 3, more: false })).toEqual({
      title: "Retry 3 dead jobs matching “shop”?", effect: "Each gets a new attempt, queued.", notes: [skipped("3 jobs", "dead")], confirm: "Retry 3 jobs", keep: "Keep them dead",
    });
    expect(bulkQuestion("cancel", { status: "queued", matched: 1, more: false })).toEqual({
      title: "Cancel 1 queued job?", effect: "A cancelled job cannot be retried; a running one is stopped on its worker.", notes: [skipped("1 job", "queued")], confirm: "Cancel 1 job", keep: "Keep it queued",
    });
    // Past the limit: the newest only, and it says so first.
    expect(bulkQuestion("cancel", { status: "running", matched: 1000, more: true }).notes).toEqual(["Only the newest 1000 are taken; run it again for the rest.", skipped("1000 jobs", "running")]);
  });

  it("a job that ended without completing shows the progress it reached as stopped; others as they are", () => {
    expect(progressShown({ status: "cancelled", progress: 40 })).toEqual({ value: 40, stopped: true, text: "stopped at 40 %" });
    expect(progressShown({ status: "failed", progress: 62.5 })).toEqual({ value: 62.5, stopped: true, text: "stopped at 63 %" });
    expect(progressShown({ status: "dead", progress: 0 })).toEqual({ value: 0, stopped: true, text: "stopped at 0 %" });
    expect(progressShown({ status: "running", progress: 40 })).toEqual({ value: 40, stopped: false, text: "40 %" });
    expect(progressShown({ status: "completed", progress: 100 })).toEqual({ value: 100, stopped: false, text: "100 %" });
    expect(progressShown({ status: "requeued", progress: 0 })).toEqual({ value: 0, stopped: false, text: "0 %" });
  });
});

describe("list rows across live frames", () => {
  it("a job that did not change keeps its row object (the table leaves it alone); a changed one gets a new row, in place, and the order stays newest first", () => {
    clock = T0;
    const m = models();
    for (const id of ["j1", "j2", "j3"]) applyEvent(m, ev("job.submitted", { jobId: id, spec }));
    for (const id of ["j1", "j2", "j3"]) applyEvent(m, ev("job.assigned", { jobId: id, workerId: "w-a", attempt: 1, epoch: 1 }));
    const before = listRows(m.jobs.values(), "", 20);
    expect(before.map((r) => r.id)).toEqual(["j3", "j2", "j1"]);
    const recentBefore = workerJobRows(m.jobs.values(), "w-a", 20);
    applyEvent(m, ev("job.started", { jobId: "j2", workerId: "w-a", attempt: 1 }));
    const after = listRows(m.jobs.values(), "", 20);
    expect(after.map((r) => r.id)).toEqual(["j3", "j2", "j1"]);
    expect(after[0]).toBe(before[0]);
    expect(after[2]).toBe(before[2]);
    expect(after[1]).not.toBe(before[1]);
    expect(after[1]).toMatchObject({ id: "j2", status: "running" });
    // A worker's Recent jobs the same way; asked for another worker, the same models give that worker's rows.
    const recentAfter = workerJobRows(m.jobs.values(), "w-a", 20);
    expect(recentAfter.map((r) => r.job.id)).toEqual(["j3", "j2", "j1"]);
    expect(recentAfter[0]).toBe(recentBefore[0]);
    expect(recentAfter[1]).not.toBe(recentBefore[1]);
    expect(recentAfter[1]!.job.status).toBe("running");
    expect(workerJobRows(m.jobs.values(), "w-b", 20)).toEqual([]);
    expect(workerJobRows(m.jobs.values(), "w-a", 20)).toEqual(recentAfter);
    // The same rows as built afresh.
    expect(after).toEqual([...m.jobs.values()].reverse().map(jobSummary));
  });
});

describe("a list row made from the projector's summary", () => {
  it("keeps a scenario job's label through the view the live fold continues (it fell back to '(scenario)')", () => {
    const s = { id: "j-sc", status: "queued" as const, priority: 5, tags: [], attempt: 1, progress: 0, submittedAt: iso(), updatedAt: iso(), scenario: { title: "checkout", url: "https://shop.example/cart" } };
    expect(summaryOf(viewFromSummary(s)).scenario).toEqual({ title: "checkout", url: "https://shop.example/cart" });
    expect(summaryOf(viewFromSummary({ ...s, scenario: { title: "no navigate" } })).scenario).toEqual({ title: "no navigate" });
    const { scenario: _, ...plain } = s;
    expect(summaryOf(viewFromSummary(plain))).not.toHaveProperty("scenario");
  });
});

describe("jobs under way on a worker (the Drain confirmation's figure)", () => {
  it("counts the jobs assigned or running there by the log, live: not those finished, requeued or on another worker", () => {
    clock = T0;
    const m = models();
    const seed = [
      row([ev("job.submitted", { jobId: "u-run", spec }), ev("job.assigned", { jobId: "u-run", workerId: "w-a", attempt: 1, epoch: 1 }), ev("job.started", { jobId: "u-run", workerId: "w-a", attempt: 1 })]),
      row([ev("job.submitted", { jobId: "u-done", spec }), ev("job.assigned", { jobId: "u-done", workerId: "w-a", attempt: 1, epoch: 1 }), ev("job.started", { jobId: "u-done", workerId: "w-a", attempt: 1 }), ev("job.completed", { jobId: "u-done", workerId: "w-a", attempt: 1, result, metrics })]),
      row([ev("job.submitted", { jobId: "u-other", spec }), ev("job.assigned", { jobId: "u-other", workerId: "w-b", attempt: 1, epoch: 1 })]),
    ];
    seedModels(m, undefined, workerPageJobs(seed, []), false);
    expect(jobsUnderWayOn(m.jobs.values(), "w-a")).toBe(1);
    expect(jobsUnderWayOn(m.jobs.values(), "w-b")).toBe(1);
    // A new assignment here counts at once; a job that fails here and is requeued leaves the count.
    applyEvent(m, ev("job.submitted", { jobId: "u-new", spec }));
    applyEvent(m, ev("job.assigned", { jobId: "u-new", workerId: "w-a", attempt: 1, epoch: 1 }));
    expect(jobsUnderWayOn(m.jobs.values(), "w-a")).toBe(2);
    applyEvent(m, ev("job.failed", { jobId: "u-run", workerId: "w-a", attempt: 1, error: { message: "drained", code: "drained", retryable: true } }));
    applyEvent(m, ev("job.requeued", { jobId: "u-run", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "failed-retryable", notBefore: iso(), epoch: 1 }));
    expect(jobsUnderWayOn(m.jobs.values(), "w-a")).toBe(1);
    expect(jobsUnderWayOn([], "w-a")).toBe(0);
  });
});
