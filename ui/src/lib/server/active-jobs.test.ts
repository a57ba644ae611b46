import { describe, expect, it } from "vitest";
import type { JobListQuery, JobStatus, JobSummary } from "@troupe/events";
import { activeJobs } from "./active-jobs.ts";

describe("activeJobs", () => {
  it("takes the jobs that finish next (assigned, running) apart from the waiting ones, so a backlog does not crowd them out, and leaves out the page's own status", () => {
    const asked: JobListQuery[] = [];
    const reads = {
      listJobs(q: JobListQuery) {
        asked.push(q);
        return { jobs: (q.status as JobStatus[]).map((s) => ({ id: `j-${s}`, status: s }) as JobSummary), nextCursor: null };
      },
    };
    expect(activeJobs(reads).map((j) => j.status)).toEqual(["assigned", "running", "queued", "requeued"]);
    expect(asked).toEqual([{ status: ["assigned", "running"], limit: 200 }, { status: ["queued", "requeued"], limit: 100 }]);
    asked.length = 0;
    expect(activeJobs(reads, "running").map((j) => j.status)).toEqual(["assigned", "queued", "requeued"]);
    expect(asked[0]).toEqual({ status: ["assigned"], limit: 200 });
  });
});
