import { describe, expect, it } from "vitest";
import { classify } from "./scenario-run.ts";
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
