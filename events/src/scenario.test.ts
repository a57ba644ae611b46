import { describe, expect, it } from "vitest";
import { createEvent, decodeEvent, encodeEvent } from "./codec.ts";
import type { TroupeEvent } from "./events.ts";
import { decodeCommand } from "./command-codec.ts";
import { jobSteps, needsScriptSteps, scriptStepIndex, validateScenario } from "./scenario.ts";

describe("validateScenario with Recorder exports", () => {
  const recorded = {
    title: "Recording 1",
    selectorAttribute: "data-testid",
    timeout: 5000,
    steps: [
      { type: "setViewport", width: 1280, height: 720, deviceScaleFactor: 1, isMobile: false, hasTouch: false, isLandscape: false },
      { type: "navigate", url: "https://example.com/", assertedEvents: [{ type: "navigation", url: "https://example.com/", title: "Example" }] },
      { type: "click", target: "main", selectors: [["aria/Submit"], ["[data-testid='go']"], ['xpath///*[@id="submit"]'], ["pierce/#submit"], ["text/Submit"]], offsetX: 24.5, offsetY: 10 },
      { type: "keyDown", target: "main", key: "Enter" },
      { type: "keyUp", target: "main", key: "Enter" },
    ],
  };
  it("accepts the top-level fields Chrome writes, including selectorAttribute", () => {
    expect(validateScenario(recorded)).toBeNull();
  });
  it("still names the exact step and field of a bad one", () => {
    expect(validateScenario({ ...recorded, selectorAttribute: 5 })).toEqual({ path: "scenario.selectorAttribute", message: "expected a string of at most 200 characters" });
    const bad = structuredClone(recorded);
    (bad.steps[2] as { offsetX: unknown }).offsetX = "left";
    expect(validateScenario(bad)?.path).toBe("scenario.steps[2].offsetX");
  });
  it("bounds every number a step carries (a 1e308 offset or hold would otherwise reach Chromium)", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ type: "click", selectors: ["#a"], offsetX: 1e308 }, "offsetX"],
      [{ type: "click", selectors: ["#a"], offsetY: -2_000_000 }, "offsetY"],
      [{ type: "doubleClick", selectors: ["#a"], duration: 1e9 }, "duration"],
      [{ type: "scroll", x: 1e12 }, "x"],
      [{ type: "waitForElement", selectors: ["#a"], count: 1e15 }, "count"],
      [{ type: "hover", selectors: ["#a"], frame: [1e6] }, "frame[0]"],
    ];
    for (const [step, field] of cases) expect(validateScenario({ steps: [step] })?.path, field).toBe(`scenario.steps[0].${field}`);
    // Real values still pass.
    expect(validateScenario({ steps: [{ type: "click", selectors: ["#a"], offsetX: -12.5, offsetY: 900, duration: 250 }, { type: "scroll", y: 250_000 }, { type: "waitForElement", selectors: ["li"], count: 40 }] })).toBeNull();
  });
});

describe("validateScenario step types", () => {
  it("refuses names found on Object.prototype as unknown step types instead of throwing", () => {
    for (const type of ["toString", "constructor", "__proto__", "hasOwnProperty", "valueOf", "__defineGetter__"]) {
      const r = validateScenario({ steps: [{ type: "navigate", url: "https://example.com/" }, { type }] });
      expect(r).toMatchObject({ path: "scenario.steps[1].type" });
      expect(r?.message).toMatch(new RegExp(`^unknown step type "${type}"; expected one of setViewport, `));
    }
  });
  it("a job event with such a step is invalid data, not an exception", () => {
    const e = createEvent("job.submitted", { jobId: "job-9", spec: { priority: 5, maxAttempts: 3, timeoutMs: 10_000, scenario: { steps: [{ type: "constructor" } as never] } } }, "master-1");
    const r = decodeEvent("troupe.evt.job.job-9.submitted", encodeEvent(e as TroupeEvent));
    expect(r).toMatchObject({ ok: false, error: { code: "invalid-data", path: "data.spec.scenario.steps[0].type" } });
  });
});

describe("extract field names", () => {
  const submit = (name: string) => decodeCommand("jobs.submit", JSON.stringify({ url: "https://example.com/", scenario: { steps: [{ type: "navigate", url: "https://example.com/" }, { type: "extract", fields: { [name]: { selector: "h1" } } }] } }));
  it("are refused at submission unless they match the documented pattern, naming the step", () => {
    for (const name of ["title", "_x", "a.b-c_9", "x".repeat(64)]) expect([name, submit(name).ok]).toEqual([name, true]);
    for (const name of ["x".repeat(65), "9lives", "two words", "", "ünï"]) {
      const r = submit(name);
      expect([name, r.ok]).toEqual([name, false]);
      if (!r.ok) expect(r.error).toMatchObject({ path: "scenario.steps[1].fields", message: expect.stringMatching(/^extract step: field name .* must start with a letter/) });
    }
  });
  it("refuse __proto__, which as a key of result.data would set its prototype and lose the value", () => {
    // JSON.stringify of an object literal would drop it: the submitter's JSON text carries it as a key.
    const r = decodeCommand("jobs.submit", '{"url":"https://example.com/","scenario":{"steps":[{"type":"navigate","url":"https://example.com/"},{"type":"extract","fields":{"__proto__":{"selector":"h1"}}}]}}');
    // Refused as any __proto__ key of a command is, where it stands.
    expect(r.ok ? null : r.error).toMatchObject({ path: "scenario.steps[1].fields.__proto__", message: "a key named __proto__ is not allowed" });
    expect(submit("constructor").ok).toBe(true);
  });
  it("are not held to it in events already in the log, so an older log folds as it did", () => {
    const e = createEvent("job.submitted", { jobId: "job-old", spec: { priority: 5, maxAttempts: 3, timeoutMs: 10_000, scenario: { steps: [{ type: "extract", fields: { "Product Name": { selector: "h1" } } }] } } }, "master-1");
    expect(decodeEvent("troupe.evt.job.job-old.submitted", encodeEvent(e as TroupeEvent)).ok).toBe(true);
  });
});

describe("needsScriptSteps", () => {
  it("is true exactly when a step runs page JavaScript, and names the first such step", () => {
    const nav = { type: "navigate" as const, url: "https://example.com" };
    const js = { type: "waitForExpression" as const, expression: "window.ready" };
    expect(needsScriptSteps({})).toBe(false);
    const wait = { type: "waitForElement" as const, selectors: ["li"] };
    expect(needsScriptSteps({ scenario: { steps: [nav, wait] } })).toBe(false);
    expect(needsScriptSteps({ scenario: { steps: [nav, js] } })).toBe(true);
    expect(scriptStepIndex({ scenario: { steps: [nav, js, js] } })).toBe(1);
    expect(scriptStepIndex({ scenario: { steps: [nav] } })).toBe(-1);
  });
});
