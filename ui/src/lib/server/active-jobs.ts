import type { JobStatus, JobSummary } from "@troupe/events";
import type { Reads } from "./reads.ts";

/**
 * Jobs under way a page follows beside its rows (a filtered list, a worker's latest jobs), so that one reaching
 * what the page shows appears live: the 200 newest assigned or running (they finish next) and the 100 newest
 * waiting, except those of `shown` status (the page's own rows). The newest 200 of all three were all waiting
 * ones behind a backlog, leaving out the running jobs (a review).
 */
export function activeJobs(reads: Pick<Reads, "listJobs">, shown?: JobStatus): JobSummary[] {
  const pick = (s: JobStatus[], limit: number) => {
    const st = s.filter((x) => x !== shown);
    return st.length ? reads.listJobs({ status: st, limit }).jobs : [];
  };
  return [...pick(["assigned", "running"], 200), ...pick(["queued", "requeued"], 100)];
}
