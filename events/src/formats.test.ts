import { FormatRegistry } from "@sinclair/typebox";
import { describe, expect, it } from "vitest";
import { isCanonicalUtcDateTime, isDateTime, isDateTimeSlow } from "./formats.ts";

const two = (n: number) => String(n).padStart(2, "0");

describe("date-time format", () => {
  it("is the registered check", () => {
    expect(FormatRegistry.Get("date-time")).toBe(isDateTime);
  });

  it("gives the full check's verdict on hand-picked cases", () => {
    const cases = [
      "2026-01-15T10:30:00.000Z", "2026-01-15T10:30:00Z", "2026-01-15T10:30:00.5Z", "2026-01-15T10:30:00.123456789Z",
      "2026-01-15T10:30:00+02:00", "2026-01-15T10:30:00.000+00:00", "2026-01-15T10:30:00-23:59",
      // V8's Date.parse only bounds the day by 31; these days do not exist and are refused.
      "2026-02-30T00:00:00Z", "2026-02-31T00:00:00.000Z", "2026-04-31T00:00:00Z", "2025-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
      "2024-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "2026-02-28T00:00:00+01:00", "2026-06-30T00:00:00Z",
      "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z",
      "2026-01-01T24:00:00Z", "2026-01-01T24:00:00.000Z", "2026-01-01T24:00:01Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z",
      "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+23:60", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z",
      "2026-01-01 00:00:00Z", "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.0000000000Z",
      "2026-01-01T00:00:00z", "2026-1-01T00:00:00Z", "+02026-01-01T00:00:00Z", "yesterday", "", "2026-01-01T00:00:00.000ZZ",
      "2026-01-01T00:00:00.00aZ", "2026-01-01T0a:00:00Z", "202a-01-01T00:00:00Z", "2026-01-01T00:00:00.000Z\n", "\u0660026-01-01T00:00:00Z",
    ];
    for (const s of cases) expect([s, isDateTime(s)]).toEqual([s, isDateTimeSlow(s)]);
    for (const bad of ["2026-02-30T00:00:00Z", "2025-02-29T00:00:00.000Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-31T10:00:00+02:00"]) expect([bad, isDateTime(bad)]).toEqual([bad, false]);
    for (const good of ["2024-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z", "2026-12-31T23:59:59Z", "2026-06-30T00:00:00-05:00"]) expect([good, isDateTime(good)]).toEqual([good, true]);
    expect(isDateTime("2026-13-01T00:00:00Z")).toBe(false);
  });

  it("accepts on the fast path only what the full check accepts: every month and day, both shapes", () => {
    for (const year of ["0000", "1900", "1970", "2000", "2024", "2026", "9999"]) {
      for (let m = 0; m < 100; m++) {
        for (let day = 0; day < 100; day++) {
          for (const tail of ["T12:34:56Z", "T12:34:56.789Z"]) {
            const s = `${year}-${two(m)}-${two(day)}${tail}`;
            if (isCanonicalUtcDateTime(s)) expect(isDateTimeSlow(s), s).toBe(true);
            expect(isDateTime(s) === isDateTimeSlow(s), s).toBe(true);
          }
        }
      }
    }
  });

  it("accepts on the fast path only what the full check accepts: every hour, minute and second", () => {
    let fast = 0;
    for (let h = 0; h < 100; h++) {
      for (let mi = 0; mi < 100; mi++) {
        for (let s = 0; s < 100; s++) {
          const v = `2026-03-31T${two(h)}:${two(mi)}:${two(s)}${s % 2 ? ".000Z" : "Z"}`;
          const slow = isDateTimeSlow(v);
          if (isCanonicalUtcDateTime(v)) {
            fast++;
            if (!slow) expect.fail(`fast path accepts ${v}, Date.parse does not`);
          }
          if (isDateTime(v) !== slow) expect.fail(`verdicts differ on ${v}`);
        }
      }
    }
    expect(fast).toBe(24 * 60 * 60);
  });

  it("gives the full check's verdict on single-character changes of valid times", () => {
    const alphabet = "0123456789-:.TZ+ zt9";
    for (const base of ["2026-01-15T10:30:00.000Z", "2026-12-31T23:59:59Z", "2024-02-29T00:00:00.000Z"]) {
      for (let i = 0; i <= base.length; i++) {
        for (const c of alphabet) {
          for (const v of [base.slice(0, i) + c + base.slice(i + 1), base.slice(0, i) + c + base.slice(i), base.slice(0, i) + base.slice(i + 1)]) {
            if (isDateTime(v) !== isDateTimeSlow(v)) expect.fail(`verdicts differ on ${JSON.stringify(v)}`);
          }
        }
      }
    }
  });
});
