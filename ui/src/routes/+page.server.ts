import { context } from "$lib/server/context.ts";
import { readModelsLoad, within } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

/** How long the Overview waits for JetStream's storage figures before it renders without them. */
const STORAGE_READ_MS = 1000;

export const load: PageServerLoad = async ({ depends }) => {
  depends("troupe:overview");
  const storage = await within(() => context().nats.storage(), STORAGE_READ_MS);
  return readModelsLoad((r) => ({
    workers: r.listWorkers(),
    // The workers' recent minutes: the "failing" warning judges the last 60 min (ui/src/lib/warnings.ts).
    recent: r.recentOutcomes(),
    stats: r.stats(),
    series: r.fleetSeries(),
    projector: r.projector(),
    queueByPriority: r.queueByPriority(),
    queueNeeds: r.queueNeeds(),
    storage,
  }));
};
