import { describe, expect, it } from "vitest";
import { CONSUMER_CREATE_MAX_TIMEOUT_MS, CONSUMER_CREATE_TIMEOUT_MS, ConsumerCreateTimeout } from "./streams.ts";

describe("ConsumerCreateTimeout", () => {
  it("doubles after each create that timed out, up to the cap, and starts over after one that was answered", () => {
    const t = new ConsumerCreateTimeout();
    expect(t.ms).toBe(CONSUMER_CREATE_TIMEOUT_MS);
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      t.observe(new Error("timeout"));
      seen.push(t.ms);
    }
    expect(seen).toEqual([3000, 6000, CONSUMER_CREATE_MAX_TIMEOUT_MS, CONSUMER_CREATE_MAX_TIMEOUT_MS, CONSUMER_CREATE_MAX_TIMEOUT_MS, CONSUMER_CREATE_MAX_TIMEOUT_MS]);
    t.observe();
    expect(t.ms).toBe(CONSUMER_CREATE_TIMEOUT_MS);
  });

  it("leaves the timeout as it is after a refusal (the server answered in time)", () => {
    const t = new ConsumerCreateTimeout();
    t.observe(new Error("timeout"));
    t.observe(new Error("consumer name already in use"));
    expect(t.ms).toBe(3000);
  });
});
