import { describe, expect, it } from "vitest";
import { formatDuration, formatProgress, parseUntil } from "./progress.ts";

describe("rebuild progress line", () => {
  it("shows a bar, events/s and ETA", () => {
    expect(formatProgress({ done: 50_000, total: 200_000, elapsedMs: 1000 }, 8)).toBe("[##------]  25.0% 50,000/200,000 events  50,000 events/s  ETA 3s");
    expect(formatProgress({ done: 10, total: 10, elapsedMs: 0 }, 4)).toBe("[####] 100.0% 10/10 events  0 events/s  ETA 0s");
  });
  it("formats durations", () => {
    expect(formatDuration(59_400)).toBe("59s");
    expect(formatDuration(61_000)).toBe("1m01s");
    expect(formatDuration(3_660_000)).toBe("1h01m");
  });
});

describe("--until", () => {
  it("takes a sequence or an ISO time", () => {
    expect(parseUntil("42")).toEqual({ seq: 42 });
    expect(parseUntil("2026-01-15T10:30:00Z")).toEqual({ timeMs: Date.parse("2026-01-15T10:30:00Z") });
  });
  it("rejects anything else with the expected form", () => {
    expect(() => parseUntil("0")).toThrow(/starts at 1/);
    expect(() => parseUntil("yesterday")).toThrow(/sequence or an ISO time/);
    // V8 reads 2026-02-30 as 2 March; a sequence past 2^53 is not the one given.
    expect(() => parseUntil("2026-02-30T00:00:00Z")).toThrow(/2026-02-30 is not a day of the calendar/);
    expect(parseUntil("2028-02-29")).toEqual({ timeMs: Date.parse("2028-02-29") });
    expect(() => parseUntil("99999999999999999999")).toThrow(/beyond any stream's/);
    expect(() => parseUntil("2026-13-45T00:00:00Z")).toThrow(/ISO time/);
  });
});
