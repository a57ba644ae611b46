import type { JobView } from "@troupe/events";
import { terminalSafe } from "@troupe/events/node";

/** One line describing a job's state with a progress bar, for `troupe submit --wait`. Pure. */
export function progressLine(job: JobView, width = 30, waitingBecause: string | null = null): string {
  const pct = Math.max(0, Math.min(100, Math.round(job.progress)));
  const filled = Math.round((pct / 100) * width);
  const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
  const where = job.workerId && (job.status === "assigned" || job.status === "running") ? ` on ${job.workerId}` : "";
  const step = job.status === "running" && job.currentStep ? ` step ${job.currentStep.index + 1} ${job.currentStep.name ?? job.currentStep.type}` : "";
  // The attempt number, not the budget: refusals by busy workers and redrives take numbers without spending
  // maxAttempts, so "attempt 4/3" read as an overrun budget.
  const attempt = job.attempt > 1 ? ` attempt ${job.attempt}` : "";
  const err = (job.status === "failed" || job.status === "dead") && job.error ? `: ${job.error.message}` : "";
  // Why it went back to the queue: "requeued attempt 4" alone left a job no worker would take a mystery (a walkthrough).
  const reason = job.status === "requeued" ? job.history.findLast((h) => h.requeueReason)?.requeueReason : undefined;
  const why = reason === "worker-refused" ? " (refused or not answered by the worker; the master's log says why)" : reason ? ` (${reason})` : "";
  // What stands in a waiting job's way, as `troupe submit --wait` read it from the streams (whyWaiting).
  const waits = waitingBecause && (job.status === "queued" || job.status === "requeued") ? ` — waiting: ${waitingBecause}` : "";
  return terminalSafe(`${bar} ${String(pct).padStart(3)}% ${job.status}${where}${step}${attempt}${why}${err}${waits}`);
}

/** Done waiting: 0 on completion, 1 on a final failure, undefined while the job can still finish. */
export function exitCodeFor(job: JobView): 0 | 1 | undefined {
  if (job.status === "completed") return 0;
  if (job.status === "dead" || job.status === "cancelled") return 1;
  if (job.status === "failed" && !job.error?.retryable) return 1;
  return undefined;
}
