import { error } from "@sveltejs/kit";
import { isValidId } from "@troupe/events";
import { parseRange } from "$lib/chart-range.ts";
import { RECENT_JOBS } from "$lib/jobs.ts";
import { activeJobs } from "$lib/server/active-jobs.ts";
import { readModelsLoad } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

export const load: PageServerLoad = ({ params, depends, url }) =>
  // One snapshot (readModelsLoad): a job committed between two reads showed in the active list without its attempts here.
  readModelsLoad((reads) => {
    depends("troupe:worker");
    if (!isValidId(params.id)) error(400, { message: `invalid worker id ${JSON.stringify(params.id)}` });
    const worker = reads.getWorker(params.id);
    if (!worker) error(404, { message: `no worker ${params.id}` });
    // Also the newest jobs still under way: one this worker takes later appears in its list live (a dashboard attack).
    const active = activeJobs(reads);
    // The charts' range (?range=6h): one that is no range shows the default and says so.
    const { range, invalid } = parseRange(url.searchParams.get("range"));
    // The jobs that ran here (job_attempts), wherever they are now: one that failed here and completed on another
    // worker left this list, although it counted in this worker's failures.
    // Its finished attempts per minute of the recent window (the success rate's main figure), as the live view holds them.
    const recent = new Map([[worker.id, reads.workerRecent(worker.id)]]);
    return { worker, chart: reads.workerChart(params.id, range), rangeInvalid: invalid ?? null, recent, jobs: reads.workerJobs(params.id, RECENT_JOBS), active };
  });
