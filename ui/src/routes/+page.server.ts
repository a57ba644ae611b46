import { context } from "$lib/server/context.ts";
import { pageLoad } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

export const load: PageServerLoad = ({ depends }) =>
  pageLoad(() => {
    depends("troupe:overview");
    const r = context().reads();
    return {
      workers: r.listWorkers(),
      stats: r.stats(),
      series: r.fleetSeries(),
      projector: r.projector(),
      queueByPriority: r.queueByPriority(),
      queueNeeds: r.queueNeeds(),
    };
  });
