import { JOB_STATUSES, type JobStatus } from "@troupe/events";
import { error } from "@sveltejs/kit";
import { activeJobs } from "$lib/server/active-jobs.ts";
import { readModelsLoad } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

const PAGE_SIZE = 50;

export const load: PageServerLoad = ({ url }) =>
  readModelsLoad((reads) => {
    const status = url.searchParams.get("status") ?? "";
    if (status && !(JOB_STATUSES as readonly string[]).includes(status)) error(400, { message: `unknown status ${JSON.stringify(status)}` });
    const q = url.searchParams.get("q")?.trim() ?? "";
    const cursor = url.searchParams.get("cursor") ?? "";
    const page = reads.listJobs({
      limit: PAGE_SIZE,
      ...(status ? { status: status as JobStatus } : {}),
      ...(q ? { q } : {}),
      ...(cursor ? { cursor } : {}),
    });
    // A filtered first page also gets the newest jobs still under way that it does not show yet: one reaching the
    // filter's status later appears live (only jobs submitted after the page loaded did; a dashboard attack).
    const active = status && !q && !cursor ? activeJobs(reads, status as JobStatus) : [];
    // How many jobs each status holds, in the filter (bull-board's and Sidekiq's tabs say it; it was nowhere here).
    const counts = reads.stats().jobs;
    return { ...page, active, status: status as JobStatus | "", q, cursor, counts };
  });
