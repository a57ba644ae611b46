import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";

/**
 * Leader election through the KV bucket `troupe-master`: one key holds
 * `{holder, expiresAtMs}`. Every write is revision-checked (create / update
 * with the previous revision), so two masters can never both succeed. KV TTL
 * expiry gives no watch event on 2.9, so expiry is a timestamp in the value.
 * The epoch is the revision of the write that won the lease; renewals keep it.
 */

export interface LeaseValue {
  holder: string;
  expiresAtMs: number;
}

export interface LeaderState {
  leader: boolean;
  epoch: number;
  /** Who holds the lease as last read (this master or another). */
  holder?: string;
}

export class LeaderLease {
  private revision = 0;
  private epoch = 0;
  private validUntilMs = 0;
  private timer?: NodeJS.Timeout;
  private busy = false;
  holder?: string;

  constructor(
    private kv: KV,
    private id: string,
    private leaseMs: number,
    private log: Logger,
    private onChange: (s: LeaderState) => void,
    private key = "leader",
  ) {}

  /** The epoch while this master holds a valid lease, else 0. */
  currentEpoch(nowMs = Date.now()): number {
    return this.epoch > 0 && nowMs < this.validUntilMs ? this.epoch : 0;
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
      if (this.epoch > 0 && Date.now() >= this.validUntilMs) this.lose("lease lapsed before it could be renewed");
      if (!canLead()) return;
      await this.acquireOrRenew();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "leader lease: KV unavailable");
      if (this.epoch > 0 && Date.now() >= this.validUntilMs) this.lose("KV unavailable past the lease");
    } finally {
      this.busy = false;
    }
  }

  private async acquireOrRenew(): Promise<void> {
    const startMs = Date.now();
    const value = (): Uint8Array => new TextEncoder().encode(JSON.stringify({ holder: this.id, expiresAtMs: startMs + this.leaseMs } satisfies LeaseValue));
    if (this.epoch > 0) {
      try {
        this.revision = await this.kv.update(this.key, value(), this.revision);
        this.validUntilMs = startMs + this.leaseMs;
      } catch (e) {
        this.lose(`renewal refused: ${(e as Error).message}`);
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
      if (held && held.holder !== this.id && held.expiresAtMs > startMs) return;
      rev = await this.kv.update(this.key, value(), cur.revision);
    }
    this.revision = rev;
    this.epoch = rev;
    this.validUntilMs = startMs + this.leaseMs;
    this.holder = this.id;
    this.log.info({ epoch: rev }, "became leader");
    this.onChange({ leader: true, epoch: rev, holder: this.id });
  }

  private lose(why: string) {
    if (this.epoch === 0) return;
    this.log.warn({ epoch: this.epoch, why }, "lost leadership");
    this.epoch = 0;
    this.validUntilMs = 0;
    this.onChange({ leader: false, epoch: 0 });
  }

  /** Stops renewing; when leading, ends the lease now so a standby takes over at once. */
  async stop(release = true): Promise<void> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    if (release && this.epoch > 0) {
      try {
        await this.kv.update(this.key, new TextEncoder().encode(JSON.stringify({ holder: this.id, expiresAtMs: 0 })), this.revision);
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, "could not release the leader lease; it lapses by itself");
      }
    }
    this.lose("stopped");
  }
}

export function parseLease(text: string): LeaseValue | null {
  try {
    const v = JSON.parse(text) as Partial<LeaseValue>;
    if (typeof v.holder === "string" && typeof v.expiresAtMs === "number") return { holder: v.holder, expiresAtMs: v.expiresAtMs };
  } catch {
    // An unreadable lease is treated as free: the revision check still prevents two winners.
  }
  return null;
}
