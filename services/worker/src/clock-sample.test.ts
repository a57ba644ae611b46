import { describe, expect, it } from "vitest";
import { eventTimeMs } from "./clock-sample.ts";

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
