import { describe, expect, it } from "vitest";
import { validateScenario } from "./scenario.ts";

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
});
