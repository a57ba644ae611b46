import { describe, expect, it } from "vitest";
import { doubtAfterMs, leaseSilenceHolds, LinkFence } from "./link-fence.ts";

describe("doubtAfterMs", () => {
  it("is 5/6 of the shorter of three heartbeats and the job lease", () => {
    expect(doubtAfterMs(30_000, 30_000)).toBe(25_000);
    expect(doubtAfterMs(5_000, 30_000)).toBe(12_500);
    expect(doubtAfterMs(500, 30_000)).toBe(1_250);
    expect(doubtAfterMs(30_000, 6_000)).toBe(5_000);
  });
});

describe("LinkFence", () => {
  it("is in doubt once nothing was seen for longer than its window, and trusts the latest proof only", () => {
    let t = 1000;
    const f = new LinkFence(100, () => t);
    expect(f.inDoubt()).toBe(false);
    t = 1100;
    expect(f.inDoubt()).toBe(false);
    t = 1101;
    expect([f.inDoubt(), f.silentMs()]).toEqual([true, 101]);
    // A publish sent before the last proof and acknowledged after it proves nothing newer.
    f.saw(1050);
    expect(f.lastSeenMs).toBe(1050);
    f.saw(1020);
    expect(f.lastSeenMs).toBe(1050);
    expect(f.inDoubt()).toBe(false);
    t = 2000;
    f.saw();
    expect([f.inDoubt(), f.lastSeenMs]).toEqual([false, 2000]);
  });

  it("remembers, for each watch, the longest silence that ended since it began or was reset: a pause that ended during a step", () => {
    let t = 1000;
    const f = new LinkFence(100, () => t);
    const w = f.watch();
    t = 1050;
    f.saw();
    expect(f.longestSilenceMs(w)).toBe(50);
    // Paused for 5 s; the first proof after it ends the silence, which the fence alone no longer shows.
    t = 6050;
    f.saw();
    expect([f.inDoubt(), f.silentMs()]).toEqual([false, 0]);
    expect(f.longestSilenceMs(w)).toBe(5000);
    // A watch begun after the silence knows nothing of it; a silence going on counts as it grows.
    const later = f.watch();
    t = 6080;
    expect(f.longestSilenceMs(later)).toBe(30);
    // Confirmed: set back; closed: no longer followed.
    w.longestEndedMs = 0;
    later.close();
    t = 9000;
    f.saw();
    expect([f.longestSilenceMs(w), later.longestEndedMs]).toEqual([2950, 0]);
  });
});

describe("leaseSilenceHolds", () => {
  it("holds once the attempt's own renewals went unacknowledged for 5/6 of the lease, however fresh the link's last proof", () => {
    let t = 1000;
    const f = new LinkFence(10_000, () => t);
    const w = f.watch();
    expect(w.renewedMs).toBe(1000);
    // A heartbeat acknowledged 4 s later: the link is fresh, the attempt's lease is not.
    t = 5000;
    f.saw();
    t = 11_000;
    expect([f.inDoubt(), leaseSilenceHolds(t, w, 12_000)]).toEqual([false, false]);
    t = 11_001;
    expect([f.inDoubt(), leaseSilenceHolds(t, w, 12_000)]).toEqual([false, true]);
    w.renewedMs = 10_000;
    expect(leaseSilenceHolds(t, w, 12_000)).toBe(false);
  });
});
