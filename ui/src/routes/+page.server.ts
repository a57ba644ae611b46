import { parseRange } from "$lib/chart-range.ts";
import { context } from "$lib/server/context.ts";
import { readModelsLoad, within } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

/** How long the Overview waits for JetStream's storage figures before it renders without them. */
const STORAGE_READ_MS = 1000;

export const load: PageServerLoad = async ({ depends, url }) => {
  depends("troupe:overview");
  // The charts' range (?range=6h): one that is no range shows the default and says so, never an error page.
  const { range, invalid } = parseRange(url.searchParams.get("range"));
  const storage = await within(() => context().nats.storage(), STORAGE_READ_MS);
  return readModelsLoad((r) => ({
    workers: r.listWorkers(),
    // The workers' recent minutes: the "failing" warning judges the last 60 min (ui/src/lib/warnings.ts).
    recent: r.recentOutcomes(),
    // The window's failed attempts grouped by error ("Top errors", ui/src/lib/errors.ts), as of this load.
    errors: r.topErrors(),
    stats: r.stats(),
    // Per minute, the last hour: the warnings' trend and "Last full minute" (whatever range the charts show).
    series: r.fleetSeries(),
    chart: r.fleetChart(range),
    rangeInvalid: invalid ?? null,
    projector: r.projector(),
    queueByPriority: r.queueByPriority(),
    queueNeeds: r.queueNeeds(),
    storage,
  }));
};
