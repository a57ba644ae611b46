import type { LogEntry } from "@troupe/events";
import { describe, expect, it } from "vitest";
import { jobSteps, limitLogs } from "./job.ts";

const entry = (i: number, len = 100): LogEntry => ({ time: "2026-01-01T00:00:00.000Z", level: "info", message: `${i}`.padEnd(len, "x"), source: "console" });

describe("limitLogs", () => {
  it("keeps logs that fit", () => {
    const logs = [entry(1), entry(2)];
    expect(limitLogs(logs)).toEqual(logs);
  });
  it("keeps the first entries within the budget and says how many were dropped", () => {
    const out = limitLogs(Array.from({ length: 100 }, (_, i) => entry(i, 1000)), 10_000);
    expect(out).toHaveLength(10);
    expect(out.at(-1)).toMatchObject({ level: "warn", source: "worker", message: "91 more log entries dropped (event size limit)" });
  });
});

describe("jobSteps", () => {
  it("opens the job's url before its scenario", () => {
    expect(jobSteps({ url: "https://a.example/", scenario: { steps: [{ type: "wait", ms: 1 }] }, priority: 5, maxAttempts: 1, timeoutMs: 1000 }))
      .toEqual([{ type: "navigate", url: "https://a.example/" }, { type: "wait", ms: 1 }]);
  });
});
