import { context } from "$lib/server/context.ts";
import { pageLoad } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

const QUEUE_SAMPLE = 500;

export const load: PageServerLoad = ({ depends }) =>
  pageLoad(() => {
    depends("troupe:overview");
    const r = context().reads();
    // Queue depth by priority from the waiting jobs (the first 500 are enough for the chart).
    const waiting = r.listJobs({ status: ["queued", "requeued"], limit: QUEUE_SAMPLE });
    const byPriority: Record<number, number> = {};
    for (const j of waiting.jobs) byPriority[j.priority] = (byPriority[j.priority] ?? 0) + 1;
    return {
      workers: r.listWorkers(),
      stats: r.stats(),
      series: r.fleetSeries(),
      projector: r.projector(),
      queueByPriority: byPriority,
      queueSampled: waiting.nextCursor !== null,
    };
  });
