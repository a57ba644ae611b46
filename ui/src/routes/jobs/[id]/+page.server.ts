import { error } from "@sveltejs/kit";
import { isValidId } from "@troupe/events";
import { context } from "$lib/server/context.ts";
import { readModelsLoad } from "$lib/server/pages.ts";
import { liveOffers, waitingFor } from "@troupe/events";
import type { PageServerLoad } from "./$types";

export const load: PageServerLoad = ({ params }) =>
  readModelsLoad((reads) => {
    if (!isValidId(params.id)) error(400, { message: `invalid job id ${JSON.stringify(params.id)}` });
    const job = reads.getJob(params.id);
    if (!job) error(404, { message: `no job ${params.id} (the projector may not have folded it yet)` });
    // Said while it waits: a job whose browser or labels no live worker has is skipped until such a worker joins.
    return { job, waitingFor: waitingFor(job, liveOffers(reads.listWorkers(), Date.now(), context().cfg.suspectAfterMs)) };
  });
