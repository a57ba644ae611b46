import { describe, expect, it } from "vitest";
import { progressEveryMs } from "./lease-cadence.ts";

describe("progressEveryMs", () => {
  it("is 5 s under the default 30 s lease, and a third of a lease shorter than 15 s", () => {
    expect(progressEveryMs(30_000)).toBe(5000);
    expect(progressEveryMs(15_000)).toBe(5000);
    expect(progressEveryMs(9000)).toBe(3000);
    expect(progressEveryMs(3000)).toBe(1000);
    // Not more often than every 100 ms, however short the lease: each event stays in the log.
    expect(progressEveryMs(300)).toBe(100);
    expect(progressEveryMs(100)).toBe(100);
  });
});
