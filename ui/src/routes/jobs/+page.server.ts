import { JOB_STATUSES, type JobStatus } from "@troupe/events";
import { error } from "@sveltejs/kit";
import { context } from "$lib/server/context.ts";
import { pageLoad } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

const PAGE_SIZE = 50;

export const load: PageServerLoad = ({ url }) =>
  pageLoad(() => {
    const status = url.searchParams.get("status") ?? "";
    if (status && !(JOB_STATUSES as readonly string[]).includes(status)) error(400, { message: `unknown status ${JSON.stringify(status)}` });
    const q = url.searchParams.get("q")?.trim() ?? "";
    const cursor = url.searchParams.get("cursor") ?? "";
    const page = context().reads().listJobs({
      limit: PAGE_SIZE,
      ...(status ? { status: status as JobStatus } : {}),
      ...(q ? { q } : {}),
      ...(cursor ? { cursor } : {}),
    });
    return { ...page, status: status as JobStatus | "", q, cursor };
  });
