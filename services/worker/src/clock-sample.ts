import type { NatsConnection } from "@nats-io/nats-core";
import { CLOCK_TOLERANCE_MS, monoNow, ServerClock, stampTime } from "@troupe/events";
import type { Logger } from "@troupe/events/node";

/**
 * The NATS server's clock as a worker can know it, to date its events: a worker whose clock ran minutes behind
 * dated its heartbeats minutes in the past, and every page showed it suspect while it worked (an attack).
 *
 * After one of its own heartbeats is stored as sequence `seq`, the worker reads back the last message on its own
 * heartbeat subject (a direct get: its credential allows that subject only). If that is ours or later, its stamp
 * was taken between our publish and the answer, so `stamp − local time at the answer` is a lower bound of the
 * offset, off by at most the round trip (ServerClock keeps the tightest recent one). An older message (a replica
 * behind) says nothing and is skipped. Once every `everyMs`, one request at a time.
 */
export class ServerTimeSampler {
  readonly clock: ServerClock;
  private lastMono = Number.NEGATIVE_INFINITY;
  private inFlight = false;
  private warnedOffset = 0;
  /** Samples taken and skipped or failed (the worker's metrics and tests). */
  readonly counts = { taken: 0, skipped: 0 };

  constructor(private readonly nc: NatsConnection, private readonly subject: string, private readonly log: Logger, private readonly everyMs = 30_000) {
    this.clock = new ServerClock(everyMs);
  }

  /** One of our own heartbeats was stored as `seq`. */
  afterOwnPublish(seq: number): void {
    const now = monoNow();
    if (this.inFlight || now - this.lastMono < this.everyMs || this.nc.isClosed()) return;
    this.inFlight = true;
    this.lastMono = now;
    void this.sample(seq).finally(() => (this.inFlight = false));
  }

  private async sample(seq: number): Promise<void> {
    try {
      const r = await this.nc.request(this.subject, "", { timeout: 2000 });
      const stamp = Date.parse(r.headers?.get("Nats-Time-Stamp") ?? "");
      const got = Number(r.headers?.get("Nats-Sequence"));
      if (r.headers?.hasError || !Number.isFinite(stamp) || !(got >= seq)) {
        this.counts.skipped++;
        this.log.debug({ status: r.headers?.code, seq, got }, "server clock sample skipped");
        return;
      }
      this.clock.observe(stamp);
      this.counts.taken++;
      this.warnIfOff();
    } catch (e) {
      // An older stream without direct gets, or a nats.conf without the permission: the wall clock stays.
      this.counts.skipped++;
      const msg = (e as Error).message;
      if (/permission/i.test(msg)) {
        // Each try would be one more violation in the server's log and ours: not again in this process.
        this.lastMono = Number.POSITIVE_INFINITY;
        this.log.info({ err: msg }, "may not read back its heartbeat (a nats.conf from before 2026-11-29: restart `troupe nats`): events keep this machine's clock");
      } else this.log.debug({ err: msg }, "server clock sample failed");
    }
  }

  /** The time to date an event with now (see stampTime): the wall clock unless it is off the server's. */
  now(): Date {
    const wall = Date.now();
    return new Date(this.clock.observed ? stampTime(wall, this.clock.now()) : wall);
  }

  private warnIfOff(): void {
    const off = this.clock.now() - Date.now();
    // Said when it first goes beyond the tolerance and when it moves by a second or more since: not at every sample.
    if (Math.abs(off) <= CLOCK_TOLERANCE_MS || Math.abs(off - this.warnedOffset) < 1000) return;
    this.warnedOffset = off;
    this.log.warn({ offsetMs: Math.round(off) },
      `this machine's clock is ${(Math.abs(off) / 1000).toFixed(1)} s ${off > 0 ? "behind" : "ahead of"} the NATS server's: events are dated on the server's clock (set up NTP on this machine)`);
  }
}
