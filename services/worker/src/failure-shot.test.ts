import { describe, expect, it } from "vitest";
import { failureShotName, failureWaitMs } from "./failure-shot.ts";

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

describe("failureWaitMs", () => {
  it("gives the page and the store 3 s each under the default 30 s lease, a sixth of a shorter lease (no progress goes out meanwhile), never under 100 ms", () => {
    expect(failureWaitMs(30_000)).toBe(3000);
    expect(failureWaitMs(3000)).toBe(500);
    expect(failureWaitMs(100)).toBe(100);
  });
});
