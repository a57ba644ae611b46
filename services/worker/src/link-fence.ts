import { monoNow } from "@troupe/events";

/**
 * How long this worker may hear nothing from NATS before it must assume the master could have taken its attempts
 * away: the master requeues a running job after a job lease without its progress, or a worker after three missed
 * heartbeats (of its own cadence or the master's, the longer). 5/6 of the shorter, so the worker holds before the
 * master acts.
 */
export function doubtAfterMs(heartbeatMs: number, jobLeaseMs: number): number {
  return Math.floor((Math.min(3 * heartbeatMs, jobLeaseMs) * 5) / 6);
}

/**
 * When NATS last proved the link worked: a publish of ours it acknowledged (dated when it was sent, the earliest
 * the master could have seen it) or a command it delivered. A worker cut off from NATS, or paused past a lease,
 * kept running attempts the master had given to another worker: the same pages twice, at the same time.
 */
export class LinkFence {
  private lastMs: number;

  constructor(readonly doubtAfterMs: number, private readonly now: () => number = monoNow) {
    this.lastMs = now();
  }

  /** The link worked at `atMs` (monoNow scale). */
  saw(atMs = this.now()): void {
    if (atMs > this.lastMs) this.lastMs = atMs;
  }

  /** When the link last worked (monoNow scale). */
  get lastSeenMs(): number {
    return this.lastMs;
  }

  silentMs(): number {
    return this.now() - this.lastMs;
  }

  /** `afterMs`: a running attempt's own threshold (its lease is the master's, which may be shorter than ours). */
  inDoubt(afterMs = this.doubtAfterMs): boolean {
    return this.silentMs() > afterMs;
  }
}
