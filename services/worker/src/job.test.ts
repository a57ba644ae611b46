import { describe, expect, it } from "vitest";
import { jobSteps } from "./job.ts";

describe("jobSteps", () => {
  it("opens the job's url before its scenario", () => {
    expect(jobSteps({ url: "https://a.example/", scenario: { steps: [{ type: "wait", ms: 1 }] }, priority: 5, maxAttempts: 1, timeoutMs: 1000 }))
      .toEqual([{ type: "navigate", url: "https://a.example/" }, { type: "wait", ms: 1 }]);
  });
});
