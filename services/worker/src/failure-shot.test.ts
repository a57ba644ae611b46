import { describe, expect, it } from "vitest";
import { failureShotName } from "./failure-shot.ts";

describe("failureShotName", () => {
  it("numbers the failed step from 1, as errors do, and 000 outside any step", () => {
    expect(failureShotName("j", 2, { index: 2, type: "click" })).toBe("j/2/003-failed.png");
    expect(failureShotName("j", 1, undefined)).toBe("j/1/000-failed.png");
  });
  it("does not take the name of the step's own screenshot labelled `failed` (a second object of a name replaces the first)", () => {
    expect(failureShotName("j", 1, { index: 1, type: "screenshot" }, ["j/1/002-failed.png"])).toBe("j/1/002-failed-2.png");
    expect(failureShotName("j", 1, { index: 2, type: "click" }, ["j/1/002-failed.png"])).toBe("j/1/003-failed.png");
  });
});
