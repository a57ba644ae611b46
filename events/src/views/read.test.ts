import { describe, expect, it } from "vitest";
import { jobSummary, scenarioLabel } from "./read.ts";
import { evolveJob } from "./job.ts";
import { createEvent } from "../codec.ts";

describe("a scenario job's label in its summary", () => {
  it("names a scenario job by its title and the URL its first navigate step opens (lists showed only '(scenario)')", () => {
    expect(scenarioLabel({ scenario: { title: "checkout", steps: [{ type: "click" }, { type: "navigate", url: "https://shop.example/cart" }, { type: "navigate", url: "https://x.example" }] } }))
      .toEqual({ title: "checkout", url: "https://shop.example/cart" });
    expect(scenarioLabel({ scenario: { steps: [{ type: "extract" }] } })).toBeUndefined();
    expect(scenarioLabel({})).toBeUndefined();
    const submitted = createEvent("job.submitted", { jobId: "j1", spec: { priority: 5, maxAttempts: 1, timeoutMs: 60_000, scenario: { title: "login", steps: [{ type: "navigate", url: "https://a.example/login" }] } } }, "m");
    const r = evolveJob(undefined, submitted);
    if (!r.ok) throw new Error(r.detail);
    expect(jobSummary(r.job).scenario).toEqual({ title: "login", url: "https://a.example/login" });
    // A URL job has none.
    const plain = evolveJob(undefined, createEvent("job.submitted", { jobId: "j2", spec: { priority: 5, maxAttempts: 1, timeoutMs: 60_000, url: "https://b.example" } }, "m"));
    if (!plain.ok) throw new Error(plain.detail);
    expect(jobSummary(plain.job)).not.toHaveProperty("scenario");
  });
});
