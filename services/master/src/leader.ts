import type { KV } from "@nats-io/kv";
import { randomBytes } from "node:crypto";
import { CLOCK_TOLERANCE_MS, LEADER_KEY, parseLease, type LeaseValue } from "@troupe/events";
import { isNatsOutage, isStorageFull, STORAGE_FULL_HINT } from "@troupe/events/node";
import type { Logger } from "pino";

/** How long a stop waits for a renewal in flight, and then for the release. */
const STOP_WAIT_MS = 2000;

/**
 * Leader election through the KV bucket `troupe-master`: one key holds
 * `{holder, expiresAtMs}`. Every write is revision-checked (create / update
 * with the previous revision), so two masters can never both succeed. KV TTL
 * expiry gives no watch event on 2.9, so expiry is a timestamp in the value.
 * The epoch is the revision of the write that won the lease; renewals keep it.
 */

export interface LeaderState {
  leader: boolean;
  epoch: number;
  /** Who holds the lease as last read (this master or another). */
  holder?: string;
}

export class LeaderLease {
  private revision = 0;
  private epoch = 0;
  /** Until when (monotonic ms, performance.now()) this master may decide. */
  private validUntilMs = 0;
  private timer?: NodeJS.Timeout;
  private busy = false;
  /** Set by stop(): an acquire still on its way when it gives up waiting must not make this process lead. */
  private stopped = false;
  private readonly token = randomBytes(9).toString("base64url");
  /** The other holder's lease revision this standby has seen standing, and since when (monotonic ms). */
  private standing?: { revision: number; sinceMono: number };
  /** `expiresAtMs` of renewals that got no answer since the last answered one: the only stored values this master may take up as its own. */
  private unanswered = new Set<number>();
  holder?: string;
  /** Told the server's stamp of the lease this master just won (its own write): the server's clock before any delivery. */
  onServerStamp?: (serverMs: number) => void;
  /** The server's time now as this master estimates it from live deliveries (undefined before any). */
  serverNow?: () => number | undefined;

  constructor(
    private kv: KV,
    private id: string,
    private leaseMs: number,
    private log: Logger,
    private onChange: (s: LeaderState) => void,
    private key = LEADER_KEY,
    /** This process's wall clock (tests give it a skew); how long a lease revision has stood is measured on the monotonic one. */
    private now: () => number = Date.now,
  ) {}

  /** The epoch while this master holds a valid lease, else 0. */
  currentEpoch(): number {
    return this.epoch > 0 && performance.now() < this.validUntilMs ? this.epoch : 0;
  }

  start(canLead: () => boolean): void {
    const run = () => void this.tick(canLead);
    run();
    this.timer = setInterval(run, Math.max(50, Math.floor(this.leaseMs / 3)));
  }

  async tick(canLead: () => boolean): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      if (this.epoch > 0 && performance.now() >= this.validUntilMs) this.lose("lease lapsed before it could be renewed");
      if (!canLead()) return;
      await this.acquireOrRenew();
    } catch (e) {
      this.log.warn({ err: (e as Error).message, ...(isStorageFull(e) ? { hint: STORAGE_FULL_HINT } : {}) }, "leader lease: KV unavailable");
      if (this.epoch > 0 && performance.now() >= this.validUntilMs) this.lose("KV unavailable past the lease");
    } finally {
      this.busy = false;
    }
  }

  private async acquireOrRenew(): Promise<void> {
    let startMs = this.now();
    // How long this master may decide is measured on the monotonic clock (a wall clock stepped back would have
    // stretched it past the lease a standby waits out); the value written says the wall-clock expiry for readers.
    let startMono = performance.now();
    const value = () => this.encode(startMs + this.leaseMs);
    if (this.epoch > 0) {
      // A second try only right after taking up this master's own stored renewal.
      for (let tries = 0; tries < 2; tries++, startMs = this.now(), startMono = performance.now()) {
        try {
          this.revision = await this.kv.update(this.key, value(), this.revision);
          this.validUntilMs = startMono + this.leaseMs;
          this.unanswered.clear();
          return;
        } catch (e) {
          if (!(await this.renewalFailed(e as Error, startMs + this.leaseMs))) return;
        }
      }
      return;
    }
    const cur = await this.kv.get(this.key);
    let rev: number;
    if (!cur || cur.operation !== "PUT") {
      rev = cur ? await this.kv.update(this.key, value(), cur.revision) : await this.kv.create(this.key, value());
    } else {
      const held = parseLease(cur.string());
      this.holder = held?.holder;
      // Another holder's lease (a restarted process or a twin with this master id included) lapses when its revision
      // has stood unrenewed for a whole lease, measured here: its expiresAtMs is on the holder's clock. Judged by it, a
      // standby 60 s behind waited 65 s for a dead leader (an attack run), and one ahead would take a live leader's lease.
      // Given back on a clean stop (0): free at once.
      // How long it stood is also read from the server's stamp of that revision, when this master knows the server's
      // clock (an estimate never ahead of it, less a second for the members of a cluster): a master restarted after
      // the leader died waited a full lease from its first look, with nothing leading.
      if (held && !this.isOwn(held) && held.expiresAtMs > 0) {
        if (this.standing?.revision !== cur.revision) this.standing = { revision: cur.revision, sinceMono: performance.now() };
        const server = this.serverNow?.();
        const stood = Math.max(performance.now() - this.standing.sinceMono, server === undefined ? 0 : server - cur.created.getTime() - CLOCK_TOLERANCE_MS);
        if (stood < Math.max(this.leaseMs, held.leaseMs ?? 0)) return;
      }
      rev = await this.kv.update(this.key, value(), cur.revision);
    }
    if (this.onServerStamp) {
      // Our write, read back: stored between our request and this answer, so its stamp bounds the server's clock
      // (the master's first events come before any live delivery could tell it). Before leading, and briefly: a
      // stop() meanwhile is seen below, and silences are not judged before onChange says it leads (a review).
      const won = await Promise.race([this.kv.get(this.key).catch(() => null), new Promise<null>((r) => setTimeout(() => r(null), 1000).unref())]);
      if (won?.revision === rev) this.onServerStamp(won.created.getTime());
    }
    if (this.stopped) {
      // Won by a request that was on its way when stop() stopped waiting for it: give it back, do not lead.
      await this.kv.update(this.key, this.encode(0), rev, STOP_WAIT_MS).catch((e: Error) => this.log.warn({ err: e.message }, "could not give back a lease won after stopping; it lapses by itself"));
      return;
    }
    this.revision = rev;
    this.epoch = rev;
    this.validUntilMs = startMono + this.leaseMs;
    this.holder = this.id;
    this.log.info({ epoch: rev }, "became leader");
    this.onChange({ leader: true, epoch: rev, holder: this.id });
  }

  /**
   * A renewal that did not go through. An outage (no answer in a cluster
   * failover, a lost connection) is no refusal: the lease holds until it
   * lapses, and the next tick tries again. A refusal may come from this
   * master's own earlier renewal, stored without its answer reaching us: the
   * key then holds exactly the value of one of those unanswered renewals
   * (this process's id, token and that renewal's expiry), at a newer
   * revision, which it goes on from with the same epoch. The id alone is not
   * enough: two processes given the same TROUPE_MASTER_ID would take each
   * other's renewals for their own and both lead. Anything else means another
   * master holds the lease. True when the renewal should be
   * tried again at once (from the revision taken up).
   */
  private async renewalFailed(e: Error, expiresAtMs: number): Promise<boolean> {
    if (isNatsOutage(e)) {
      this.unanswered.add(expiresAtMs);
      this.log.warn({ epoch: this.epoch, err: e.message, validForMs: Math.round(this.validUntilMs - performance.now()) }, "leader lease: renewal not answered; keeping the lease while it lasts and trying again");
      return false;
    }
    const cur = await this.kv.get(this.key).catch(() => null);
    const held = cur?.operation === "PUT" ? parseLease(cur.string()) : null;
    if (cur && held && this.isOwn(held) && this.unanswered.has(held.expiresAtMs) && cur.revision > this.revision) {
      this.log.warn({ epoch: this.epoch, revision: cur.revision }, "leader lease: an unanswered renewal had been stored; going on from it");
      this.revision = cur.revision;
      return true;
    }
    this.lose(`renewal refused: ${e.message}`);
    return false;
  }

  /** The lease value this process writes. */
  private encode(expiresAtMs: number): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ holder: this.id, expiresAtMs, token: this.token, leaseMs: this.leaseMs } satisfies LeaseValue));
  }

  /** Written by this very process (id and token): not a twin given the same master id. */
  private isOwn(held: LeaseValue): boolean {
    return held.holder === this.id && held.token === this.token;
  }

  private lose(why: string) {
    this.unanswered.clear();
    if (this.epoch === 0) return;
    // Stepping down to stop is no loss: info, not a warning on every clean stop.
    if (why === "stopped") this.log.info({ epoch: this.epoch }, "gave up leadership (stopping)");
    else this.log.warn({ epoch: this.epoch, why }, "lost leadership");
    this.epoch = 0;
    this.validUntilMs = 0;
    this.onChange({ leader: false, epoch: 0 });
  }

  /** Stops renewing; when leading, ends the lease now so a standby takes over at once. */
  async stop(release = true): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    // Bounded: with NATS gone a renewal in flight waits out its whole request timeout, and a stop
    // (SIGTERM from `troupe up`, systemd) must not take longer than its grace. A release that
    // misses (a renewal landed meanwhile, or no answer) only means the lease lapses by itself.
    const waitUntil = this.now() + STOP_WAIT_MS;
    while (this.busy && this.now() < waitUntil) await new Promise((r) => setTimeout(r, 10));
    if (release && this.epoch > 0) {
      try {
        await this.kv.update(this.key, this.encode(0), this.revision, STOP_WAIT_MS);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, "could not release the leader lease; it lapses by itself");
      }
    }
    this.lose("stopped");
  }
}

