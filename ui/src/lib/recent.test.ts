import { describe, expect, it } from "vitest";
import { addRecent, mergeRecent, RECENT_MINUTES, recentByWorker, recentFrom, recentRate, type RecentBuckets } from "./recent.ts";

const M = 60_000;
const T0 = Date.parse("2026-01-15T10:00:00.000Z");
/** The start of the minute `i` minutes after T0. */
const min = (i: number) => T0 + i * M;

describe("recent window", () => {
  it("is the minute in progress and the 59 before it", () => {
    expect(RECENT_MINUTES).toBe(60);
    expect(recentFrom(min(0) + 42_000)).toBe(min(-59));
    expect(recentFrom(min(0))).toBe(min(-59));
  });

  it("sums the window's minutes and leaves out older ones; '–' (null) without attempts", () => {
    const b: RecentBuckets = [[min(-70), 0, 50], [min(-59), 3, 1], [min(-1), 10, 0], [min(0), 1, 1]];
    expect(recentRate(b, min(0) + 10_000)).toEqual({ fromMs: min(-59), completed: 14, failed: 2, successRate: 87.5 });
    expect(recentRate([], min(0)).successRate).toBeNull();
    expect(recentRate(undefined, min(0))).toEqual({ fromMs: min(-59), completed: 0, failed: 0, successRate: null });
    // A minute dated a little ahead of the clock counts.
    expect(recentRate([[min(1), 1, 0]], min(0)).completed).toBe(1);
  });

  it("rolls off with the clock alone: a page left open needs no event for an old burst to go", () => {
    const b: RecentBuckets = [[min(0), 0, 9], [min(30), 5, 0]];
    expect(recentRate(b, min(30)).failed).toBe(9);
    expect(recentRate(b, min(59) + 59_999)).toMatchObject({ completed: 5, failed: 9 });
    // The clock passes into minute 60: minute 0 leaves the window.
    expect(recentRate(b, min(60))).toMatchObject({ completed: 5, failed: 0, successRate: 100 });
    // Hours later nothing is left: "–".
    expect(recentRate(b, min(180)).successRate).toBeNull();
  });

  it("adds an outcome to its minute, in order, as a new value, and drops the minutes that left the window", () => {
    const a = addRecent(undefined, min(5), "completed", min(5));
    expect(a).toEqual([[min(5), 1, 0]]);
    const b = addRecent(a, min(5), "failed", min(5));
    expect(b).toEqual([[min(5), 1, 1]]);
    expect(a).toEqual([[min(5), 1, 0]]); // not mutated
    // An outcome of an earlier minute (events of two workers' clocks) lands in its place.
    expect(addRecent(b, min(3), "failed", min(6))).toEqual([[min(3), 0, 1], [min(5), 1, 1]]);
    expect(addRecent(b, min(7), "completed", min(7))).toEqual([[min(5), 1, 1], [min(7), 1, 0]]);
    // Hours later: the old minutes go as the next outcome comes, so a tab open for a day holds at most 60 minutes.
    let c: RecentBuckets = [];
    for (let i = 0; i < 24 * 60; i += 1) c = addRecent(c, min(i), "completed", min(i) + 30_000);
    expect(c).toHaveLength(RECENT_MINUTES);
    expect(c[0]![0]).toBe(min(24 * 60 - 60));
    // An outcome dated before the window counts for nothing (the server's read leaves it out too).
    expect(addRecent([[min(100), 1, 0]], min(30), "failed", min(100))).toEqual([[min(100), 1, 0]]);
  });

  it("merges two copies minute by minute with the larger counts (a catch-up reload of rows older than the page)", () => {
    const page: RecentBuckets = [[min(1), 4, 1], [min(3), 2, 0]];
    const rows: RecentBuckets = [[min(1), 3, 2], [min(2), 5, 0]];
    expect(mergeRecent(page, rows)).toEqual([[min(1), 4, 2], [min(2), 5, 0], [min(3), 2, 0]]);
    expect(mergeRecent(undefined, rows)).toEqual(rows);
    expect(mergeRecent(page, undefined)).toEqual(page);
  });

  it("groups the read models' rows by worker, oldest minute first, without empty minutes; a worker id __proto__ is a key like any", () => {
    const by = recentByWorker([
      { workerId: "w-b", minute: min(2), completed: 1, failed: 0 },
      { workerId: "w-a", minute: min(1), completed: 0, failed: 0 },
      { workerId: "__proto__", minute: min(1), completed: 0, failed: 1 },
      { workerId: "w-b", minute: min(1), completed: 0, failed: 3 },
    ]);
    expect([...by.keys()].sort()).toEqual(["__proto__", "w-b"]);
    expect(by.get("w-b")).toEqual([[min(1), 0, 3], [min(2), 1, 0]]);
    expect(by.get("__proto__")).toEqual([[min(1), 0, 1]]);
  });
});
