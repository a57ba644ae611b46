import { describe, expect, it } from "vitest";
import { eventTimeMs, OffsetCeiling, ServerClock, stampTime } from "./server-clock.ts";

describe("ServerClock", () => {
  it("is the local clock until a message is seen, then the local clock plus the tightest recent offset", () => {
    let local = 1_000_000;
    const c = new ServerClock(30_000, () => local);
    expect(c.now()).toBe(local);
    // The server runs 20 s behind this process; deliveries take 5, 1 and 50 ms.
    for (const latency of [5, 1, 50]) c.observe(local - 20_000 - latency);
    expect(c.offset()).toBe(-20_001);
    local += 10_000;
    expect(c.now()).toBe(local - 20_001);
    expect(c.toServer(local - 500)).toBe(local - 500 - 20_001);
  });

  it("follows a server clock set back within two windows, and keeps the last value when nothing arrives", () => {
    let local = 0;
    const c = new ServerClock(30_000, () => local);
    c.observe(local + 60_000); // server 60 s ahead
    expect(c.offset()).toBe(60_000);
    local += 31_000;
    c.observe(local + 2_000); // its clock was corrected
    expect(c.offset()).toBe(60_000); // the previous window still holds the old value
    local += 30_000;
    expect(c.offset()).toBe(2_000);
    local += 300_000; // silence: the last estimate stays
    expect(c.offset()).toBe(2_000);
  });
});

describe("stampTime", () => {
  it("keeps the wall clock within the tolerance, else takes the server's estimate", () => {
    expect(stampTime(10_000, 10_900)).toBe(10_000);
    expect(stampTime(10_000, 9_000)).toBe(10_000);
    expect(stampTime(10_000, 190_000)).toBe(190_000);
    expect(stampTime(190_000, 10_000.4)).toBe(10_000);
  });
});

describe("ServerClock held value", () => {
  it("keeps its one observation past two windows even when offset() was not asked in between (a master's lease stamp)", () => {
    let now = 1_000_000;
    const c = new ServerClock(30_000, () => now);
    c.observe(now + 20_000);
    now += 65_000;
    expect(c.offset()).toBe(20_000);
    expect(c.now()).toBe(now + 20_000);
  });
});

describe("eventTimeMs", () => {
  const mono = 1_800_000_000_000;
  it("is the wall clock with no sample yet", () => {
    expect(eventTimeMs(mono - 180_000, mono, undefined)).toBe(mono - 180_000);
  });

  it("keeps a healthy wall clock behind a slow link: the server's time is only known within the round trip (it was dated 1.2 s in the past)", () => {
    // Sent at mono − 1200, stored, acknowledged at mono: the offset lies within [−1200, 0] (plus the store's own delay).
    expect(eventTimeMs(mono, mono, { lo: -1200, hi: 0 })).toBe(mono);
    expect(eventTimeMs(mono + 900, mono, { lo: -1200, hi: 0 })).toBe(mono + 900);
  });

  it("takes the middle of the bounds when the wall clock lies beyond them by more than the tolerance", () => {
    expect(eventTimeMs(mono - 180_000, mono, { lo: -4, hi: 2 })).toBe(mono - 1);
    expect(eventTimeMs(mono + 1_500, mono, { lo: -400, hi: 0 })).toBe(mono - 200);
  });
});

describe("OffsetCeiling", () => {
  it("keeps the smallest stamp − send time of the last windows, and holds it when nothing comes", () => {
    let now = 1_000_000;
    const c = new OffsetCeiling(30_000, () => now);
    expect(c.offset()).toBeUndefined();
    c.observe(now + 1400, now - 20); // sent 20 ms ago, stored 1.4 s "later" on the server's clock
    c.observe(now + 30, now);
    expect(c.offset()).toBe(30);
    now += 65_000;
    expect(c.offset()).toBe(30);
  });
});
