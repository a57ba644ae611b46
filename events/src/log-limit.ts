import { monoNow } from "./server-clock.ts";

/**
 * At most `burst` lines of one kind per `windowMs`; the lines over it are counted, and the count goes out with the
 * next line let through. Lines that anyone able to publish can cause (a request with a foreign reply subject, an
 * invalid heartbeat) were logged one each: a flood of them filled the master's log and its disk.
 */
export class LogLimit {
  private windowStartMs = -Infinity;
  private used = 0;
  private dropped = 0;

  // Monotonic: a wall clock stepped back would leave the window open for as long, dropping every line meanwhile.
  constructor(readonly burst = 10, readonly windowMs = 60_000, private readonly now: () => number = monoNow) {}

  /** undefined: leave this line out; otherwise log it, with how many lines were left out since the last one logged. */
  take(): number | undefined {
    const t = this.now();
    if (t - this.windowStartMs >= this.windowMs) {
      this.windowStartMs = t;
      this.used = 0;
    }
    if (this.used >= this.burst) {
      this.dropped++;
      return undefined;
    }
    this.used++;
    const left = this.dropped;
    this.dropped = 0;
    return left;
  }
}

/** The fields a limited line adds: nothing, or how many like it were left out before it. */
export const leftOut = (n: number): { leftOut?: number } => (n > 0 ? { leftOut: n } : {});
