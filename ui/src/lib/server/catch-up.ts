import { setTimeout as sleep } from "node:timers/promises";
import type { ProjectorStatus } from "@troupe/events";
import { behindBy } from "../live/catch-up.ts";

/** How often a waiting check reads the projector's status row: SQLite tells no other process that a batch committed. */
const POLL_MS = 50;

/** The answer of `GET /api/catch-up`, after `success: true`. */
export interface CatchUpAnswer {
  /** The read models hold everything the streams held when the check began. */
  caughtUp: boolean;
  /** Events of those not folded yet when the check ended (0 when caught up). */
  behind: number;
  /** The streams' last sequences when the check began. */
  heads: Record<string, number>;
  /** The projector's checkpoints when the check ended (empty before its first batch). */
  checkpoints: Record<string, number>;
  waitedMs: number;
}

/**
 * Waits, at most `waitMs`, until the projector's checkpoints (its status row, written in each batch's transaction)
 * reach `heads`, or `signal` aborts. The status is read once at least, so a check of caught-up read models answers at once.
 */
export async function waitForCheckpoints(heads: Record<string, number>, status: () => ProjectorStatus | null, waitMs: number, signal?: AbortSignal): Promise<CatchUpAnswer> {
  const start = Date.now();
  for (;;) {
    const checkpoints = status()?.checkpoints ?? {};
    const behind = behindBy(heads, checkpoints);
    const waitedMs = Date.now() - start;
    // A page that went away (a newer catch-up aborted this one) is not waited for: nobody reads the answer.
    if (behind === 0 || waitedMs >= waitMs || signal?.aborted) return { caughtUp: behind === 0, behind, heads, checkpoints, waitedMs };
    await sleep(Math.min(POLL_MS, waitMs - waitedMs));
  }
}
