import { describe, expect, it } from "vitest";
import { validateCommand } from "@troupe/events";
import { buildSubmit } from "./submit.ts";

const form = { url: "", priority: "", tags: "", maxAttempts: "", timeoutMs: "", scenario: "" };

describe("buildSubmit", () => {
  it("turns the form into a jobs.submit body the contract accepts", () => {
    const r = buildSubmit({ ...form, url: " https://example.com ", priority: "7", tags: "a, b,,", maxAttempts: "2" });
    expect(r).toEqual({ ok: true, body: { url: "https://example.com", priority: 7, tags: ["a", "b"], maxAttempts: 2 } });
    if (r.ok) expect(validateCommand("jobs.submit", r.body).ok).toBe(true);
  });

  it("sends worker labels as a list the contract checks, naming a bad one by its index", () => {
    const r = buildSubmit({ ...form, url: "https://example.com", workerLabels: " region=eu, residential ," });
    expect(r).toEqual({ ok: true, body: { url: "https://example.com", workerLabels: ["region=eu", "residential"] } });
    if (r.ok) expect(validateCommand("jobs.submit", r.body).ok).toBe(true);
    const bad = buildSubmit({ ...form, url: "https://example.com", workerLabels: "eu, not ok" });
    if (!bad.ok) throw new Error("built");
    const v = validateCommand("jobs.submit", bad.body);
    expect(v.ok ? null : v.error.path).toBe("workerLabels[1]");
  });

  it("takes the numbers the page's number inputs bind (a number, or null when cleared), as it takes text", () => {
    const r = buildSubmit({ ...form, url: "https://example.com", priority: 8, maxAttempts: null, timeoutMs: 60_000 });
    expect(r).toEqual({ ok: true, body: { url: "https://example.com", priority: 8, timeoutMs: 60_000 } });
    expect(buildSubmit({ ...form, url: "https://example.com", priority: undefined, maxAttempts: Number.NaN })).toEqual({ ok: true, body: { url: "https://example.com" } });
    expect(buildSubmit({ ...form, priority: 2.5 })).toEqual({ ok: false, error: { field: "priority", message: "expected a whole number, got \"2.5\"" } });
  });

  it("parses a pasted Recorder export", () => {
    const scenario = { title: "rec", steps: [{ type: "setViewport", width: 800, height: 600, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false }, { type: "navigate", url: "https://example.com/" }] };
    const r = buildSubmit({ ...form, scenario: JSON.stringify(scenario) });
    expect(r.ok && r.body.scenario).toEqual(scenario);
  });

  it("names the field for text that is not a number or not JSON", () => {
    expect(buildSubmit({ ...form, priority: "high" })).toEqual({ ok: false, error: { field: "priority", message: 'expected a whole number, got "high"' } });
    const r = buildSubmit({ ...form, scenario: "{ steps: " });
    expect(!r.ok && r.error.field).toBe("scenario");
  });

  it("refuses a pasted scenario that gives a key twice, naming it (parsed and sent again, the first was lost before the server could see it)", () => {
    const r = buildSubmit({ ...form, scenario: '{"steps":[{"type":"navigate","url":"https://example.com"},{"type":"wait","ms":1,"ms":5000}]}' });
    expect(r).toEqual({ ok: false, error: { field: "scenario", message: "steps[1].ms: this key appears twice in one object (JSON keeps only the last); give it once" } });
  });

  it("leaves semantic checks to the contract (same as the master)", () => {
    const r = buildSubmit({ ...form, url: "ftp://example.com" });
    expect(r.ok).toBe(true);
    const v = r.ok ? validateCommand("jobs.submit", r.body) : null;
    expect(v?.ok === false && v.error.path).toBe("url");
  });
});
