import { readModelsLoad } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

export const load: PageServerLoad = () => readModelsLoad((reads) => ({ workers: reads.listWorkers(), recent: reads.recentOutcomes() }));
