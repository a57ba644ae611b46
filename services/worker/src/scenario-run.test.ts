import { describe, expect, it } from "vitest";
import { classify, stepTimeoutMs } from "./scenario-run.ts";
import { StepError } from "./steps.ts";

describe("classify", () => {
  it("keeps a StepError's own code and retryability", () => {
    expect(classify(new StepError("target refused", "ssrf", false))).toEqual({ code: "ssrf", retryable: false, message: "target refused" });
  });
  it("treats timeouts and network errors as retryable", () => {
    const t = new Error("Waiting for selector `#x` failed: 100ms exceeded");
    t.name = "TimeoutError";
    expect(classify(t)).toMatchObject({ code: "timeout", retryable: true });
    expect(classify(new Error("net::ERR_CONNECTION_REFUSED at http://x"))).toMatchObject({ code: "navigation", retryable: true });
  });
  it("treats anything else as a step failure that a retry will not fix", () => {
    expect(classify(new Error("Unknown key: \"Foo\""))).toMatchObject({ code: "step-failed", retryable: false });
  });
});

describe("a step's timeout", () => {
  it("is its own, else the worker's default; a wait without one gets at least its own length", () => {
    expect(stepTimeoutMs({ type: "click", selectors: [["#a"]], timeout: 500 } as never, 30_000)).toBe(500);
    expect(stepTimeoutMs({ type: "click", selectors: [["#a"]] } as never, 30_000)).toBe(30_000);
    expect(stepTimeoutMs({ type: "wait", ms: 60_000 } as never, 30_000)).toBe(60_000);
    expect(stepTimeoutMs({ type: "wait", ms: 1_000 } as never, 30_000)).toBe(30_000);
    expect(stepTimeoutMs({ type: "wait", ms: 60_000, timeout: 2_000 } as never, 30_000)).toBe(2_000);
  });
});
