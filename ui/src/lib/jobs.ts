import { jobSummary, type JobStatus, type JobSummary, type JobView } from "@troupe/events";

/**
 * A list row as a JobView the shared reducer can fold: lists carry summaries
 * (no spec, history or epoch), and `evolveJob` only needs the fencing fields
 * (status, attempt, workerId) from them. Epoch 0 accepts any master decision;
 * the projector already fenced epochs for the rows it wrote.
 */
export function viewFromSummary(s: JobSummary): JobView {
  return { ...s, spec: { priority: s.priority, maxAttempts: 1, timeoutMs: 1000 }, epoch: 0, history: [] } as JobView;
}

/** Jobs for a list page: newest first, only those matching the status filter. */
export function listRows(jobs: Iterable<JobView>, status: JobStatus | "" | undefined, limit: number, workerId?: string): JobSummary[] {
  const rows: JobSummary[] = [];
  for (const j of jobs) if ((!status || j.status === status) && (!workerId || j.workerId === workerId)) rows.push(jobSummary(j));
  rows.sort((a, b) => (a.submittedAt === b.submittedAt ? (a.id < b.id ? 1 : -1) : a.submittedAt < b.submittedAt ? 1 : -1));
  return rows.slice(0, limit);
}

/**
 * The question the job page asks before a single Cancel, as "Cancel all" asks before its run (it acted on one
 * click, an audit). It names the job and where it is; a cancel is for good (only failed and dead jobs are retried).
 */
export function cancelQuestion(j: { id: string; status: JobStatus; progress: number }): string {
  const where = j.status === "running" ? `running, ${Math.round(j.progress)} %` : j.status;
  return `Cancel job ${j.id} (${where})? A cancelled job cannot be retried.`;
}

/** What a progress bar shows for a job: `stopped` greys it out. */
export interface ProgressShown {
  /** Width of the bar, 0–100. */
  value: number;
  stopped: boolean;
  /** "40 %", or "stopped at 40 %". */
  text: string;
}

/**
 * A job that ended without completing (failed, cancelled, dead) keeps the progress it reached — how far it got
 * is a fact of its attempt — but shows it stopped: greyed, "stopped at 40 %". It looked like a job still at 40 %
 * under way (an audit). A completed job is at 100 %; a waiting one at 0 % (a requeue starts the attempt over).
 */
export function progressShown(j: { status: JobStatus; progress: number }): ProgressShown {
  const value = Math.min(100, Math.max(0, j.progress));
  const stopped = j.status === "failed" || j.status === "cancelled" || j.status === "dead";
  return { value, stopped, text: `${stopped ? "stopped at " : ""}${Math.round(value)} %` };
}
