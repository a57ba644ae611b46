import { describe, expect, it } from "vitest";
import { streamHead } from "./stream-head.ts";

describe("streamHead", () => {
  it("is the stream's last sequence while it holds messages, and 0 once it holds none (aged out: nothing left to fold)", () => {
    expect(streamHead({ messages: 3, last_seq: 900 })).toBe(900);
    expect(streamHead({ messages: 0, last_seq: 900 })).toBe(0);
  });
});
