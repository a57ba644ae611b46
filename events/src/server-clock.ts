/**
 * The NATS server's clock as this process can know it. Every message a follower delivers carries the server's
 * time of storing it; the master judges silences and leases (stamped with that time) against "now", which must be
 * on the same clock: a master whose own clock ran 20 s ahead of the server declared every healthy worker lost.
 *
 * offset = server stamp − local time at receipt, for each delivered message. A delivery is never earlier than
 * its store, so each is at most the true offset, and the largest recent one is the tightest (and never ahead of
 * the server: deciding late is safe, deciding early requeues running jobs). Recent: the largest of the last one
 * to two windows, so a server clock set back is followed; with nothing observed lately the last value holds.
 * The local clock is a monotonic one on the wall clock's scale (a wall clock stepped by NTP or a VM resume moved
 * every estimate by the step for a window: a step of 20 s ahead declared healthy workers lost; a review). Pure:
 * the local clock is a parameter. The master and the workers both keep one (the workers from the stamp of the
 * last message after one of their own, see services/worker/src/clock-sample.ts).
 */

/** Milliseconds on the wall clock's scale that never step (the process's start time plus its monotonic clock). */
export const monoNow = (): number => performance.timeOrigin + performance.now();
export class ServerClock {
  private cur = Number.NEGATIVE_INFINITY;
  private prev = Number.NEGATIVE_INFINITY;
  private bucketStart: number;
  private last = 0;
  private seen = false;

  constructor(private readonly windowMs = 30_000, private readonly local: () => number = monoNow) {
    this.bucketStart = local();
  }

  /** A message the server stored at `serverMs`, received now. */
  observe(serverMs: number): void {
    const now = this.local();
    this.rotate(now);
    this.cur = Math.max(this.cur, serverMs - now);
    // Held from here, not only once offset() is asked: a clock observed once and asked only after two windows
    // had lost its one value and answered the local clock (a review: a master's events dated 20 s off).
    this.last = Math.max(this.cur, this.prev);
    this.seen = true;
  }

  /** Whether any delivery was observed yet. */
  get observed(): boolean {
    return this.seen;
  }

  /** Server time minus local time, as estimated (0 before anything was observed). */
  offset(): number {
    this.rotate(this.local());
    const m = Math.max(this.cur, this.prev);
    if (m > Number.NEGATIVE_INFINITY) this.last = m;
    return this.last;
  }

  /** The server's time now, as estimated. */
  now(): number {
    return this.local() + this.offset();
  }

  /** A local time (monoNow() taken earlier) on the server's clock. */
  toServer(localMs: number): number {
    return localMs + this.offset();
  }

  private rotate(now: number): void {
    const steps = Math.floor((now - this.bucketStart) / this.windowMs);
    if (steps <= 0) return;
    this.prev = steps === 1 ? this.cur : Number.NEGATIVE_INFINITY;
    this.cur = Number.NEGATIVE_INFINITY;
    this.bucketStart += steps * this.windowMs;
  }
}

/**
 * The server time now as the clocks of several streams say it: the smallest (deciding late is the safe side), of
 * those that observed anything; the local clock when none did. In a cluster each stream's leader stamps its own
 * messages, and two members' clocks may differ.
 */
export function earliestNow(clocks: readonly ServerClock[], local: () => number = monoNow): number {
  let t = Number.POSITIVE_INFINITY;
  for (const c of clocks) if (c.observed) t = Math.min(t, c.now());
  return t === Number.POSITIVE_INFINITY ? local() : t;
}

/** How far a producer's clock may be from the server's before its events are dated on the server's clock instead. */
export const CLOCK_TOLERANCE_MS = 1000;

/**
 * The time to date an event with: the wall clock while it agrees with the server's estimate within the tolerance
 * (healthy clocks keep their own, exact times), else the estimate. A worker whose clock ran 3 min behind dated its
 * heartbeats 3 min in the past, and every page showed it "suspect, last seen 3 min ago" while it worked.
 */
export function stampTime(wallMs: number, serverMs: number, toleranceMs = CLOCK_TOLERANCE_MS): number {
  return Math.abs(serverMs - wallMs) <= toleranceMs ? wallMs : Math.round(serverMs);
}

/** Server time minus local monotonic time (monoNow), known to lie between `lo` and `hi`. */
export interface OffsetBounds {
  lo: number;
  hi: number;
}

/**
 * The time to date an event with (pure): the wall clock while it lies within the tolerance of the server's time
 * as bounded, else the middle of the bounds. A healthy producer behind a slow link keeps its exact wall clock
 * (judged by one end of the bounds alone, a worker's heartbeats were dated 1.2 s in the past: a review; and a
 * master's decisions 1.4 s: an attack).
 */
export function eventTimeMs(wallMs: number, monoMs: number, b: OffsetBounds | undefined, toleranceMs = CLOCK_TOLERANCE_MS): number {
  if (!b) return wallMs;
  if (wallMs >= monoMs + b.lo - toleranceMs && wallMs <= monoMs + b.hi + toleranceMs) return wallMs;
  return Math.round(monoMs + (b.lo + b.hi) / 2);
}

/**
 * The other side of ServerClock: an upper bound of the offset, from messages of our own whose send time we know
 * (stored after we sent them: `stamp − send time` is at least the offset). The smallest of the last one to two
 * windows; with nothing observed lately the last value holds.
 */
export class OffsetCeiling {
  private cur = Number.POSITIVE_INFINITY;
  private prev = Number.POSITIVE_INFINITY;
  private last = Number.POSITIVE_INFINITY;
  private bucketStart: number;

  constructor(private readonly windowMs = 30_000, private readonly local: () => number = monoNow) {
    this.bucketStart = local();
  }

  /** One of our messages, sent at `sentLocalMs` (local()), was stored at `serverMs`. */
  observe(serverMs: number, sentLocalMs: number): void {
    this.rotate(this.local());
    this.cur = Math.min(this.cur, serverMs - sentLocalMs);
    this.last = Math.min(this.cur, this.prev);
  }

  /** The upper bound of server time minus local time, undefined before any observation. */
  offset(): number | undefined {
    this.rotate(this.local());
    const m = Math.min(this.cur, this.prev);
    if (m < Number.POSITIVE_INFINITY) this.last = m;
    return this.last < Number.POSITIVE_INFINITY ? this.last : undefined;
  }

  private rotate(now: number): void {
    const steps = Math.floor((now - this.bucketStart) / this.windowMs);
    if (steps <= 0) return;
    this.prev = steps === 1 ? this.cur : Number.POSITIVE_INFINITY;
    this.cur = Number.POSITIVE_INFINITY;
    this.bucketStart += steps * this.windowMs;
  }
}
