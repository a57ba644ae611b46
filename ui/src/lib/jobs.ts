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
