import type { Scenario, StepTiming } from "@troupe/events";
import { describe, expect, it } from "vitest";
import { stepRows, stepSummary } from "./steps.ts";

describe("stepSummary", () => {
  it("names each step's main argument, in one line", () => {
    expect(stepSummary({ type: "navigate", url: "https://example.com/login" })).toBe("https://example.com/login");
    expect(stepSummary({ type: "click", selectors: [["aria/Log in"], "#login"] })).toBe("aria/Log in");
    expect(stepSummary({ type: "click", selectors: [["#host", "#inner button"]] })).toBe("#host › #inner button");
    expect(stepSummary({ type: "select", selector: "#size", values: ["m", "l"] })).toBe("#size = m, l");
    expect(stepSummary({ type: "press", key: "Enter", selector: "#q" })).toBe("Enter on #q");
    expect(stepSummary({ type: "extract", fields: { title: { selector: "h1" }, price: { selector: ".p" } } })).toBe("title, price");
    expect(stepSummary({ type: "screenshot", label: "done", fullPage: true })).toBe("done · full page");
    expect(stepSummary({ type: "wait", ms: 1500 })).toBe("1500 ms");
    expect(stepSummary({ type: "assert", selector: "h1", text: "Welcome" })).toBe("h1 · text “Welcome”");
    expect(stepSummary({ type: "scroll", x: 0, y: 800 })).toBe("to 0, 800");
    expect(stepSummary({ type: "close" })).toBe("");
  });

  it("shows only the length of typed text (it may be a password)", () => {
    expect(stepSummary({ type: "type", selector: "#password", text: "hunter22" })).toBe("into #password (8 characters)");
    expect(stepSummary({ type: "change", selectors: ["#pin"], value: "1" })).toBe("#pin (1 character)");
  });

  it("cuts long arguments", () => {
    const s = stepSummary({ type: "waitForExpression", expression: `window.ready === true && ${"x".repeat(200)}` });
    expect(s).toHaveLength(80);
    expect(s.endsWith("…")).toBe(true);
  });
});

describe("stepRows", () => {
  const scenario: Scenario = { steps: [{ type: "navigate", url: "https://example.com/" }, { type: "click", selectors: ["#go"], name: "go" }, { type: "extract", fields: { t: { selector: "h1" } } }] };
  const timings: StepTiming[] = [
    { index: 0, type: "navigate", status: "ok", durationMs: 300 },
    { index: 1, type: "click", name: "go", status: "failed", durationMs: 5000, error: "no element matches #go" },
  ];

  it("gives each reported step what it does, then the steps not reached: pending while it runs, not run once ended", () => {
    const rows = stepRows(timings, { scenario }, true);
    expect(rows.map((r) => [r.index, r.label, r.summary, r.status])).toEqual([
      [0, "navigate", "https://example.com/", "ok"], [1, "go", "#go", "failed"], [2, "extract", "t", "not run"],
    ]);
    expect(rows[1]).toMatchObject({ error: "no element matches #go", durationMs: 5000 });
    expect(rows[2]?.durationMs).toBeUndefined();
    expect(stepRows(timings.slice(0, 1), { scenario }, false).map((r) => r.status)).toEqual(["ok", "pending", "pending"]);
  });

  it("keeps every timing as reported (a forged or repeated index is shown, not merged) and works without a scenario", () => {
    expect(stepRows([timings[0]!, timings[0]!], {}, true)).toHaveLength(2);
    expect(stepRows([timings[0]!, timings[0]!], { scenario }, true).map((r) => r.status)).toEqual(["ok", "ok", "not run", "not run"]);
  });

  it("counts the job's url as step 1 before its scenario, as the worker does (the rows were one off: a review)", () => {
    const both = { url: "https://example.com/start", scenario: { steps: [{ type: "click" as const, selectors: ["#login"] }, { type: "type" as const, selector: "#user", text: "bob" }] } };
    const reported: StepTiming[] = [{ index: 0, type: "navigate", status: "ok", durationMs: 200 }, { index: 1, type: "click", status: "failed", durationMs: 3000, error: "no #login" }];
    expect(stepRows(reported, both, true).map((r) => [r.index, r.label, r.summary, r.status])).toEqual([
      [0, "navigate", "https://example.com/start", "ok"], [1, "click", "#login", "failed"], [2, "type", "into #user (3 characters)", "not run"],
    ]);
    expect(stepRows([], { url: "https://example.com/only" }, false).map((r) => [r.summary, r.status])).toEqual([["https://example.com/only", "pending"]]);
  });
});
