import { defineCommand, UsageError } from "@troupe/events/node";
import { liveOptions, replayOptions } from "./config.ts";
import { parseUntil } from "./progress.ts";

/** `troupe projector` and `troupe replay`; the service loads only when run. */
export const command = defineCommand({
  name: "projector",
  summary: "Fold TROUPE_EVENTS and TROUPE_HEARTBEATS into the SQLite read models (workers, jobs, time series), exactly once; GET /metrics shows the lag.",
  options: liveOptions,
  details: `
The database is <data dir>/readmodels.sqlite (a symlink to the current file). --rebuild folds the
whole log into a fresh file first and swaps it in while readers keep working. See docs/projector.md.`,
  async run({ values }) {
    const { runProjector } = await import("./main.ts");
    return runProjector(values);
  },
});

export const replayCommand = defineCommand({
  name: "replay",
  summary: "Rebuild the read models from the whole log into a fresh file and swap it in (progress, events/s, ETA); --until for a past state.",
  options: replayOptions,
  details: `
A running projector notices the swap and continues from the new file's checkpoints. With --until,
stop the projector first (it would fold the rest on top) or write elsewhere with --db.`,
  async run({ values }) {
    if (values.until !== undefined) {
      try {
        parseUntil(values.until);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    }
    const { runReplay } = await import("./main.ts");
    return runReplay(values);
  },
});
