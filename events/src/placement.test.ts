import { describe, expect, it } from "vitest";
import { canTake, SCRIPT_STEPS_NEED, unmetNeeds } from "./placement.ts";

const chromeEu = { browsers: ["chromium"], labels: ["region=eu", "residential"] };
const chromeUs = { browsers: ["Chromium"], labels: ["region=us"] };

describe("placement", () => {
  it("takes a job whose browser (any case) and every label a worker has", () => {
    expect(canTake(chromeEu, { labels: [] })).toBe(true);
    expect(canTake(chromeEu, { browser: "CHROMIUM", labels: ["region=eu"] })).toBe(true);
    expect(canTake(chromeEu, { browser: "firefox", labels: [] })).toBe(false);
    expect(canTake(chromeEu, { labels: ["region=eu", "gpu"] })).toBe(false);
  });

  it("names what no live worker has, most jobs first, and leaves out what some worker can take", () => {
    const needs = [
      { labels: ["region=eu"], count: 40 },
      { browser: "firefox", labels: [], count: 3 },
      { labels: ["gpu", "region=us"], count: 7 },
      { labels: ["region=eu", "region=us"], count: 2 },
      { browser: "webkit", labels: ["gpu"], count: 1 },
    ];
    expect(unmetNeeds(needs, [chromeEu, chromeUs])).toEqual([
      { labels: ["gpu", "region=us"], count: 7, reason: "label gpu" },
      { browser: "firefox", labels: [], count: 3, reason: 'browser "firefox"' },
      { labels: ["region=eu", "region=us"], count: 2, reason: "labels region=eu, region=us together" },
      { browser: "webkit", labels: ["gpu"], count: 1, reason: 'browser "webkit"' },
    ]);
  });

  it("takes a job with a page-JavaScript step only on a worker that runs them, and names that need", () => {
    const script = { ...chromeEu, scriptSteps: true };
    expect(canTake(chromeEu, { labels: [], scriptSteps: true })).toBe(false);
    expect(canTake(script, { labels: [], scriptSteps: true })).toBe(true);
    expect(canTake(script, { labels: [] })).toBe(true);
    expect(SCRIPT_STEPS_NEED).toBe("page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)");
    const needs = [
      { labels: [], scriptSteps: true, count: 3 },
      { labels: [], count: 9 },
      { browser: "firefox", labels: ["gpu"], scriptSteps: true, count: 2 },
    ];
    expect(unmetNeeds(needs, [chromeEu, chromeUs])).toEqual([
      { labels: [], scriptSteps: true, count: 3, reason: "page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)" },
      { browser: "firefox", labels: ["gpu"], scriptSteps: true, count: 2, reason: 'browser "firefox" and page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)' },
    ]);
    // Some live worker runs them: only what it lacks is named.
    const scriptUs = { ...chromeUs, scriptSteps: true };
    expect(unmetNeeds(needs, [chromeEu, scriptUs])).toEqual([{ browser: "firefox", labels: ["gpu"], scriptSteps: true, count: 2, reason: 'browser "firefox"' }]);
    expect(unmetNeeds([{ labels: ["gpu"], scriptSteps: true, count: 1 }], [chromeEu, scriptUs])).toEqual([{ labels: ["gpu"], scriptSteps: true, count: 1, reason: "label gpu" }]);
    // The label on one worker, the steps on another.
    expect(unmetNeeds([{ labels: ["region=eu"], scriptSteps: true, count: 1 }], [chromeEu, scriptUs])[0]?.reason)
      .toBe("label region=eu together with page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)");
    expect(unmetNeeds([{ browser: "firefox", labels: [], scriptSteps: true, count: 1 }], [{ browsers: ["firefox"], labels: [] }, scriptUs])[0]?.reason)
      .toBe('browser "firefox" together with page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)');
    expect(unmetNeeds([{ browser: "firefox", labels: ["gpu"], scriptSteps: true, count: 1 }], [{ browsers: ["firefox"], labels: ["gpu"] }, scriptUs])[0]?.reason)
      .toBe('label gpu together with browser "firefox" and page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)');
  });

  it("with no live worker at all, every need is unmet", () => {
    expect(unmetNeeds([{ labels: [], count: 5 }], [])).toEqual([{ labels: [], count: 5, reason: "a live worker" }]);
  });
});
