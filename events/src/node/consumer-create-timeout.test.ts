import { describe, expect, it } from "vitest";
import { CONSUMER_CREATE_MAX_TIMEOUT_MS, CONSUMER_CREATE_TIMEOUT_MS, ConsumerCreateTimeout } from "./streams.ts";

describe("ConsumerCreateTimeout", () => {
  it("gives a create three times JetStream's last answer, between 1.5 s and the cap", () => {
    const t = new ConsumerCreateTimeout();
    expect(t.ms).toBe(CONSUMER_CREATE_TIMEOUT_MS);
    t.answeredIn(1700); // a slow link
    expect(t.ms).toBe(5100);
    t.answeredIn(20); // a fast one: a lost create is tried again soon
    expect(t.ms).toBe(CONSUMER_CREATE_TIMEOUT_MS);
    t.answeredIn(60_000);
    expect(t.ms).toBe(CONSUMER_CREATE_MAX_TIMEOUT_MS);
  });

  it("without escalate, a create that timed out changes nothing (a reader with a time limit keeps its tries many)", () => {
    const t = new ConsumerCreateTimeout();
    for (let i = 0; i < 3; i++) t.failed(new Error("timeout"));
    expect(t.ms).toBe(CONSUMER_CREATE_TIMEOUT_MS);
  });

  it("with escalate, doubles after each create that timed out, up to the cap, and an answer sets it from the answer again", () => {
    const t = new ConsumerCreateTimeout({ escalate: true });
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      t.failed(new Error("timeout"));
      seen.push(t.ms);
    }
    expect(seen).toEqual([3000, 6000, CONSUMER_CREATE_MAX_TIMEOUT_MS, CONSUMER_CREATE_MAX_TIMEOUT_MS, CONSUMER_CREATE_MAX_TIMEOUT_MS]);
    t.failed(new Error("consumer name already in use")); // a refusal: the server answered in time
    expect(t.ms).toBe(CONSUMER_CREATE_MAX_TIMEOUT_MS);
    t.answeredIn(100);
    expect(t.ms).toBe(CONSUMER_CREATE_TIMEOUT_MS);
  });
});
