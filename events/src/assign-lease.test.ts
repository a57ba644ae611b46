import { describe, expect, it } from "vitest";
import { ASSIGNED_AGE_HEADER, JOB_LEASE_HEADER, parseAssignedAgeHeader, parseJobLeaseHeader } from "./assign-lease.ts";

describe("parseJobLeaseHeader", () => {
  it("takes a whole number of milliseconds from the least lease up", () => {
    expect(parseJobLeaseHeader("100")).toEqual({ ok: true, ms: 100 });
    expect(parseJobLeaseHeader("30000")).toEqual({ ok: true, ms: 30_000 });
    expect(parseJobLeaseHeader("999999999999999")).toEqual({ ok: true, ms: 999_999_999_999_999 });
  });

  it("treats a missing header as none (a master that predates it)", () => {
    expect(parseJobLeaseHeader(undefined)).toEqual({ ok: true, ms: undefined });
    expect(parseJobLeaseHeader("")).toEqual({ ok: true, ms: undefined });
  });

  it("refuses anything else, naming the header", () => {
    for (const v of ["99", "0", "-5000", "5e3", "5000.5", " 5000", "5000 ", "0x1388", "abc", "1234567890123456"]) {
      const r = parseJobLeaseHeader(v);
      expect(r.ok, v).toBe(false);
      if (!r.ok) expect(r.message).toContain(JOB_LEASE_HEADER);
    }
  });
});

describe("parseAssignedAgeHeader", () => {
  it("takes a whole number of milliseconds, 0 included, and nothing else", () => {
    expect([undefined, "", "0", "2490"].map(parseAssignedAgeHeader)).toEqual([{ ok: true, ms: undefined }, { ok: true, ms: undefined }, { ok: true, ms: 0 }, { ok: true, ms: 2490 }]);
    for (const bad of ["-1", "1.5", "1e3", " 5", "abc", "1".repeat(16)]) {
      const r = parseAssignedAgeHeader(bad);
      expect(r.ok, bad).toBe(false);
      if (!r.ok) expect(r.message).toContain(ASSIGNED_AGE_HEADER);
    }
  });
});
