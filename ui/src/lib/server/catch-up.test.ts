import { describe, expect, it } from "vitest";
import type { ProjectorStatus } from "@troupe/events";
import { waitForCheckpoints } from "./catch-up.ts";

const status = (checkpoints: Record<string, number>): ProjectorStatus => ({ mode: "live", updatedAt: new Date().toISOString(), lagMs: 1, lagP99Ms: 1, applied: 0, skipped: 0, checkpoints });
const heads = { TROUPE_EVENTS: 10, TROUPE_HEARTBEATS: 5 };

describe("waitForCheckpoints", () => {
  it("answers at once when the read models already hold the heads", async () => {
    const r = await waitForCheckpoints(heads, () => status({ TROUPE_EVENTS: 10, TROUPE_HEARTBEATS: 7 }), 5000);
    expect(r).toMatchObject({ caughtUp: true, behind: 0, heads, checkpoints: { TROUPE_EVENTS: 10, TROUPE_HEARTBEATS: 7 } });
    expect(r.waitedMs).toBeLessThan(5000);
  });

  it("answers when a later read of the status row reaches them", async () => {
    const rows = [status({ TROUPE_EVENTS: 3 }), status({ TROUPE_EVENTS: 8, TROUPE_HEARTBEATS: 5 }), status({ TROUPE_EVENTS: 10, TROUPE_HEARTBEATS: 5 })];
    let reads = 0;
    const r = await waitForCheckpoints(heads, () => rows[Math.min(reads++, rows.length - 1)] ?? null, 10_000);
    expect(r).toMatchObject({ caughtUp: true, behind: 0 });
    expect(reads).toBe(3);
  });

  it("gives up after its bound and says how far behind the read models are (no status row: nothing folded)", async () => {
    const r = await waitForCheckpoints(heads, () => null, 120);
    expect(r).toMatchObject({ caughtUp: false, behind: 15, checkpoints: {} });
    expect(r.waitedMs).toBeGreaterThanOrEqual(120);
  });

  it("stops waiting once its request is aborted (a newer catch-up of the page superseded it)", async () => {
    const ac = new AbortController();
    let reads = 0;
    const answer = waitForCheckpoints(heads, () => {
      if (++reads === 2) ac.abort();
      return null;
    }, 10_000, ac.signal);
    const r = await answer;
    expect(r).toMatchObject({ caughtUp: false, behind: 15 });
    expect(reads).toBe(2);
    expect(r.waitedMs).toBeLessThan(10_000);
  });
});
