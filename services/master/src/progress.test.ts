import { describe, expect, it } from "vitest";
import type { JobView } from "@troupe/events";
import { exitCodeFor, progressLine } from "./progress.ts";

const job = (o: Partial<JobView>): JobView => ({
  id: "j", status: "queued", spec: { url: "https://x.io", priority: 5, maxAttempts: 3, timeoutMs: 60_000 }, priority: 5, tags: [], attempt: 1,
  progress: 0, submittedAt: "2026-01-01T00:00:00Z", epoch: 0, history: [], updatedAt: "2026-01-01T00:00:00Z", ...o,
});

describe("progressLine", () => {
  it("draws the bar, status, worker and step", () => {
    expect(progressLine(job({ status: "running", progress: 50, workerId: "w1", currentStep: { index: 1, type: "click", name: "login" } }), 10))
      .toBe("[#####.....]  50% running on w1 step 2 login");
    expect(progressLine(job({ status: "requeued", attempt: 2 }), 4)).toBe("[....]   0% requeued attempt 2");
    // Why it went back (a job no worker would take said only "requeued attempt 4").
    const rec = (attempt: number, requeueReason: string) => ({ attempt, workerId: "w", assignedAt: "2026-01-01T00:00:00Z", outcome: "requeued" as const, requeueReason });
    expect(progressLine(job({ status: "requeued", attempt: 4, history: [rec(2, "lease-expired"), rec(3, "worker-refused")] }), 4)).toBe("[....]   0% requeued attempt 4 (refused or not answered by the worker; the master's log says why)");
    expect(progressLine(job({ status: "requeued", attempt: 2, history: [rec(1, "worker-lost")] }), 4)).toBe("[....]   0% requeued attempt 2 (worker-lost)");
    // Refusals take attempt numbers without spending the budget: no "4/3".
    expect(progressLine(job({ status: "assigned", attempt: 4, workerId: "w" }), 4)).toBe("[....]   0% assigned on w attempt 4");
    expect(progressLine(job({ status: "dead", error: { message: "boom", retryable: true } }), 4)).toBe("[....]   0% dead: boom");
  });
  it("shows control characters a page or worker wrote as \\xNN instead of sending them to the terminal", () => {
    expect(progressLine(job({ status: "failed", error: { message: 'title "\u001b[2J\u001b]0;pwned\u0007" does not contain "x"', retryable: false } }), 4))
      .toBe('[....]   0% failed: title "\\x1b[2J\\x1b]0;pwned\\x07" does not contain "x"');
  });
});

describe("exitCodeFor", () => {
  it("is 0 on completion, 1 on a final outcome, undefined while a retry may come", () => {
    expect(exitCodeFor(job({ status: "completed" }))).toBe(0);
    expect(exitCodeFor(job({ status: "dead" }))).toBe(1);
    expect(exitCodeFor(job({ status: "cancelled" }))).toBe(1);
    expect(exitCodeFor(job({ status: "failed", error: { message: "x", retryable: false } }))).toBe(1);
    expect(exitCodeFor(job({ status: "failed", error: { message: "x", retryable: true } }))).toBeUndefined();
    expect(exitCodeFor(job({ status: "running" }))).toBeUndefined();
  });
});
