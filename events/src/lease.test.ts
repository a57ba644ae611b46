import { describe, expect, it } from "vitest";
import { LEASE_GRACE_MS, masterStatus, parseLease } from "./lease.ts";

describe("parseLease", () => {
  it("reads a lease and refuses what is not one", () => {
    expect(parseLease('{"holder":"m1","expiresAtMs":5,"token":"t"}')).toEqual({ holder: "m1", expiresAtMs: 5, token: "t" });
    expect(parseLease('{"holder":"m1"}')).toBeNull();
    expect(parseLease("not json")).toBeNull();
  });
});

describe("masterStatus", () => {
  const now = 1_000_000;
  it("says whether a master leads, never ran, stopped or let its lease run out", () => {
    expect(masterStatus(null, now)).toEqual({ state: "never" });
    expect(masterStatus({ holder: "m1", expiresAtMs: now + 5000 }, now)).toEqual({ state: "leading", holder: "m1" });
    // A renewal on its way: still leading for a moment past the expiry.
    expect(masterStatus({ holder: "m1", expiresAtMs: now - LEASE_GRACE_MS }, now)).toEqual({ state: "leading", holder: "m1" });
    expect(masterStatus({ holder: "m1", expiresAtMs: now - LEASE_GRACE_MS - 1 }, now)).toEqual({ state: "lapsed", holder: "m1", sinceMs: now - LEASE_GRACE_MS - 1 });
    expect(masterStatus({ holder: "m1", expiresAtMs: 0 }, now)).toEqual({ state: "stopped", holder: "m1" });
  });
});
