/** The cadence of a running attempt's progress events when nothing else sets it. */
export const PROGRESS_EVERY_MS = 5000;

/** Never more often than this: every progress event is kept in the log for good (a 100 ms lease gave 30 a second per job). */
const MIN_PROGRESS_EVERY_MS = 100;

/**
 * How often a running attempt reports progress: every 5 s, or a third of the job lease when that is shorter (not
 * under 100 ms). The master renews a running job's lease only from its progress events, and a fixed 5 s tick under a
 * shorter lease lapsed every job that ran longer than the lease (the test suite's masters run a 3 s one). A third
 * leaves two ticks to lose to a loaded machine before the lease lapses.
 */
export function progressEveryMs(jobLeaseMs: number): number {
  return Math.max(MIN_PROGRESS_EVERY_MS, Math.min(PROGRESS_EVERY_MS, Math.floor(jobLeaseMs / 3)));
}
