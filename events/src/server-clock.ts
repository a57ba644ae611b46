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
/**
 * The largest (or smallest) value seen in the current and the previous window, so a change (a server clock set
 * back) is followed within two windows; with nothing seen lately, the last such value holds.
 */
class WindowedExtreme {
  private cur: number;
  private prev: number;
  private bucketStart: number;
  private last: number;
  private readonly none: number;

  constructor(private readonly pick: "max" | "min", private readonly windowMs: number, now: number) {
    this.none = pick === "max" ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    this.cur = this.prev = this.last = this.none;
    this.bucketStart = now;
  }

  add(v: number, now: number): void {
    this.rotate(now);
    this.cur = this.best(this.cur, v);
    // Held from here, not only once read: a value seen once and read only after two windows was lost
    // (a review: a master's events dated 20 s off).
    this.last = this.best(this.cur, this.prev);
  }

  /** The extreme of the recent windows, else the last one held; undefined before any value. */
  value(now: number): number | undefined {
    this.rotate(now);
    const m = this.best(this.cur, this.prev);
    if (m !== this.none) this.last = m;
    return this.last === this.none ? undefined : this.last;
  }

  private best(a: number, b: number): number {
    return this.pick === "max" ? Math.max(a, b) : Math.min(a, b);
  }

  private rotate(now: number): void {
    const steps = Math.floor((now - this.bucketStart) / this.windowMs);
    if (steps <= 0) return;
    this.prev = steps === 1 ? this.cur : this.none;
    this.cur = this.none;
    this.bucketStart += steps * this.windowMs;
  }
}

export class ServerClock {
  private readonly offsets: WindowedExtreme;

  constructor(windowMs = 30_000, private readonly local: () => number = monoNow) {
    this.offsets = new WindowedExtreme("max", windowMs, local());
  }

  /** A message the server stored at `serverMs`, received now. */
  observe(serverMs: number): void {
    const now = this.local();
    this.offsets.add(serverMs - now, now);
  }

  /** Whether any delivery was observed yet. */
  get observed(): boolean {
    return this.offsets.value(this.local()) !== undefined;
  }

  /** Server time minus local time, as estimated (0 before anything was observed). */
  offset(): number {
    return this.offsets.value(this.local()) ?? 0;
  }

  /** The server's time now, as estimated. */
  now(): number {
    return this.local() + this.offset();
  }

  /** A local time (monoNow() taken earlier) on the server's clock. */
  toServer(localMs: number): number {
    return localMs + this.offset();
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
  private readonly offsets: WindowedExtreme;

  constructor(windowMs = 30_000, private readonly local: () => number = monoNow) {
    this.offsets = new WindowedExtreme("min", windowMs, local());
  }

  /** One of our messages, sent at `sentLocalMs` (local()), was stored at `serverMs`. */
  observe(serverMs: number, sentLocalMs: number): void {
    this.offsets.add(serverMs - sentLocalMs, this.local());
  }

  /** The upper bound of server time minus local time, undefined before any observation. */
  offset(): number | undefined {
    return this.offsets.value(this.local());
  }
}
