/**
 * The masters' leader lease: KV bucket `<prefix>-master`, key `leader`, value `{holder, expiresAtMs, token?}`
 * (docs/master.md, Leader election). The master writes it; the dashboard reads it to say when no master leads.
 */

export const LEADER_KEY = "leader";

export interface LeaseValue {
  holder: string;
  expiresAtMs: number;
  /** Random per process: two processes given the same master id are still told apart. */
  token?: string;
  /** The holder's lease length: a standby waits at least this long for a renewal before it takes over. */
  leaseMs?: number;
}

/** The lease in a KV value, or null when it is not one (an unreadable lease is treated as free by the masters). */
export function parseLease(text: string): LeaseValue | null {
  try {
    const v = JSON.parse(text) as Partial<LeaseValue>;
    if (typeof v.holder === "string" && typeof v.expiresAtMs === "number") {
      return { holder: v.holder, expiresAtMs: v.expiresAtMs, ...(typeof v.token === "string" ? { token: v.token } : {}), ...(typeof v.leaseMs === "number" && v.leaseMs > 0 ? { leaseMs: v.leaseMs } : {}) };
    }
  } catch {
    // not JSON: no lease
  }
  return null;
}

/** What the dashboard says about the masters. */
export type MasterStatus =
  | { state: "leading"; holder: string }
  /** No lease was ever written: no master has run on this stack. */
  | { state: "never" }
  /** The last leader gave the lease up on a clean stop (expiresAtMs 0). */
  | { state: "stopped"; holder: string }
  /** The lease ran out without a renewal: the leader died, is paused, or cannot write (a full store). */
  | { state: "lapsed"; holder: string; sinceMs: number };

/** A lease past its expiry by less than this still counts (a renewal on its way, clocks a little apart). */
export const LEASE_GRACE_MS = 3000;

export function masterStatus(lease: LeaseValue | null, nowMs: number): MasterStatus {
  if (!lease) return { state: "never" };
  if (lease.expiresAtMs === 0) return { state: "stopped", holder: lease.holder };
  if (nowMs > lease.expiresAtMs + LEASE_GRACE_MS) return { state: "lapsed", holder: lease.holder, sinceMs: lease.expiresAtMs };
  return { state: "leading", holder: lease.holder };
}
