import type { StorageUse } from "@troupe/events";
import { context } from "$lib/server/context.ts";
import { pageLoad } from "$lib/server/pages.ts";
import type { PageServerLoad } from "./$types";

/** How long the Overview waits for JetStream's storage figures before it renders without them. */
const STORAGE_READ_MS = 1000;

export const load: PageServerLoad = async ({ depends }) => {
  depends("troupe:overview");
  const storage = await storageNow();
  return pageLoad(() => {
    const r = context().reads();
    return {
      workers: r.listWorkers(),
      stats: r.stats(),
      series: r.fleetSeries(),
      projector: r.projector(),
      queueByPriority: r.queueByPriority(),
      queueNeeds: r.queueNeeds(),
      storage,
    };
  });
};

/** JetStream's storage use; null when NATS cannot say in time (the page is not held up for it). */
async function storageNow(): Promise<StorageUse | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([context().nats.storage(), new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error("timeout")), STORAGE_READ_MS)))]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}
