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
  private readonly watches = new Set<SilenceWatch>();

  constructor(readonly doubtAfterMs: number, private readonly now: () => number = monoNow) {
    this.lastMs = now();
  }

  /** The link worked at `atMs` (monoNow scale). */
  saw(atMs = this.now()): void {
    if (atMs <= this.lastMs) return;
    const gap = atMs - this.lastMs;
    for (const w of this.watches) if (gap > w.longestEndedMs) w.longestEndedMs = gap;
    this.lastMs = atMs;
  }

  /**
   * Follows the silences that end from now on, for one attempt: a silence that ended during a step (a process paused
   * by SIGSTOP or a long GC, resumed before the step's end) must still hold the attempt before its next step. The fence
   * used to ask only whether the link was silent *now*, and a heartbeat acknowledged after the pause wiped out the
   * silence in which the master gave the attempt to another worker (a soak: the page after the pause visited twice).
   * `close()` when the attempt ends.
   */
  watch(): SilenceWatch {
    const w: SilenceWatch = { longestEndedMs: 0, renewedMs: this.now(), close: () => void this.watches.delete(w) };
    this.watches.add(w);
    return w;
  }

  /** The longest silence of a watch: the ones that ended since it began (or was reset), or the one going on. */
  longestSilenceMs(w: SilenceWatch): number {
    return Math.max(w.longestEndedMs, this.silentMs());
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

/** Silences that ended since an attempt began or was last confirmed (LinkFence.watch). */
export interface SilenceWatch {
  /** The longest silence that ended since; set back to 0 once the master confirmed the attempt. */
  longestEndedMs: number;
  /**
   * When the attempt's last lease renewal NATS acknowledged (its `job.started` or `job.progress`) was sent, or when
   * it began (monoNow scale): the master's job lease runs from that attempt's own events only (leaseSilenceHolds).
   */
  renewedMs: number;
  close(): void;
}

/**
 * Whether an attempt's own lease renewals have gone unacknowledged long enough that the master may have given it
 * away: 5/6 of the master's job lease, as for the link (doubtAfterMs). The link's silence alone was not enough: it
 * counts from the last acknowledgement of anything, and a heartbeat acknowledged just before a cut, up to a progress
 * interval (a third of the lease) after the attempt's last progress, put the worker's hold after the master's lease
 * lapse: the next steps ran beside the new attempt (a soak with a 12 s lease: 6 of 6 targeted cuts).
 */
export function leaseSilenceHolds(nowMs: number, w: SilenceWatch, jobLeaseMs: number): boolean {
  return nowMs - w.renewedMs > Math.floor((jobLeaseMs * 5) / 6);
}
