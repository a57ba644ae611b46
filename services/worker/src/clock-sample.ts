import type { NatsConnection } from "@nats-io/nats-core";
import { eventTimeMs, monoNow, type OffsetBounds } from "@troupe/events";
import type { Logger } from "@troupe/events/node";

/**
 * The NATS server's clock as a worker can know it, to date its events: a worker whose clock ran minutes behind
 * dated its heartbeats minutes in the past, and every page showed it suspect while it worked (an attack).
 *
 * After one of its own heartbeats is stored as sequence `seq`, the worker reads back the last message on its own
 * heartbeat subject (a direct get: its credential allows that subject only). That message is ours or a later one
 * of ours, so the server stamped it after we sent ours and before the answer came (before our ack came, when it
 * is ours): the offset lies between `stamp − that arrival` and `stamp − our send`. Bounds from a local monotonic
 * clock, so a wall clock stepped meanwhile changes nothing until the next sample; the narrower of the last two
 * samples is used. An older message (a replica behind) says nothing and is skipped. Once every `everyMs`.
 */
export class ServerTimeSampler {
  private lastMono = Number.NEGATIVE_INFINITY;
  private inFlight = false;
  private warnedOff = 0;
  private skippedInRow = 0;
  private latest?: OffsetBounds;
  private previous?: OffsetBounds;
  /** Samples taken and skipped or failed (Worker#clockSamples, for tests and debugging). */
  readonly counts = { taken: 0, skipped: 0 };

  constructor(private readonly nc: NatsConnection, private readonly subject: string, private readonly log: Logger, private readonly everyMs = 30_000) {}

  /** One of our own heartbeats, sent at `sentMono` and acknowledged at `ackMono` (monoNow()), was stored as `seq`. */
  afterOwnPublish(seq: number, sentMono: number, ackMono: number): void {
    const now = monoNow();
    if (this.inFlight || now - this.lastMono < this.everyMs || this.nc.isClosed()) return;
    this.inFlight = true;
    this.lastMono = now;
    void this.sample(seq, sentMono, ackMono).finally(() => (this.inFlight = false));
  }

  /** The bounds in use: the narrower of the last two samples. */
  bounds(): OffsetBounds | undefined {
    const [a, b] = [this.latest, this.previous];
    if (!a || !b) return a ?? b;
    return b.hi - b.lo < a.hi - a.lo ? b : a;
  }

  private async sample(seq: number, sentMono: number, ackMono: number): Promise<void> {
    try {
      const r = await this.nc.request(this.subject, "", { timeout: 2000 });
      const answered = monoNow();
      const stamp = Date.parse(r.headers?.get("Nats-Time-Stamp") ?? "");
      const got = Number(r.headers?.get("Nats-Sequence"));
      if (r.headers?.hasError || !Number.isFinite(stamp) || !(got >= seq)) {
        this.counts.skipped++;
        // A replica behind answered with an older heartbeat: try again after the next one, not a whole period later
        // (a cluster run dated a skewed worker's events on its own clock for 30 s; an attack); three times in a row
        // at most, then at the usual pace (a reply that never fits must not cost a request per heartbeat).
        if (++this.skippedInRow <= 3) this.lastMono = Number.NEGATIVE_INFINITY;
        this.log.debug({ status: r.headers?.code, seq, got }, "server clock sample skipped");
        return;
      }
      this.skippedInRow = 0;
      this.previous = this.latest;
      this.latest = { lo: stamp - (got === seq ? ackMono : answered), hi: stamp - sentMono };
      this.counts.taken++;
      this.warnIfOff();
    } catch (e) {
      // An older stream without direct gets, or a nats.conf without the permission: the wall clock stays.
      this.counts.skipped++;
      const msg = (e as Error).message;
      if (/permission/i.test(msg)) {
        // Each try would be one more violation in the server's log and ours: not again in this process.
        this.lastMono = Number.POSITIVE_INFINITY;
        this.log.warn({ err: msg }, "may not read back its heartbeat (a nats.conf from before 2026-11-29: restart `troupe nats`): events keep this machine's clock");
      } else this.log.debug({ err: msg }, "server clock sample failed");
    }
  }

  /** The time to date an event with now. */
  now(): Date {
    return new Date(eventTimeMs(Date.now(), monoNow(), this.bounds()));
  }

  private warnIfOff(): void {
    const wall = Date.now();
    const at = eventTimeMs(wall, monoNow(), this.bounds());
    const off = at - wall;
    // Said when it first goes beyond the tolerance and when it moves by a second or more since: not at every sample.
    if (off === 0 || Math.abs(off - this.warnedOff) < 1000) return;
    this.warnedOff = off;
    this.log.warn({ offsetMs: off },
      `this machine's clock is ${(Math.abs(off) / 1000).toFixed(1)} s ${off > 0 ? "behind" : "ahead of"} the NATS server's: events are dated on the server's clock (set up NTP on this machine)`);
  }
}
