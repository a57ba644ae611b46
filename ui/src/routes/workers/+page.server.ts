import { context } from "$lib/server/context.ts";
import { pageLoad } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

export const load: PageServerLoad = () => pageLoad(() => ({ workers: context().reads().listWorkers() }));
