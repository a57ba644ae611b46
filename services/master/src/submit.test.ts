import { UsageError } from "@troupe/events/node";
import { describe, expect, it } from "vitest";
import { buildSubmitBody } from "./submit.ts";

const none = { url: undefined, priority: undefined, browser: undefined, idempotencyKey: undefined };

describe("buildSubmitBody", () => {
  it("says once that a job file is not JSON, with the parser's reason (it read 'is not JSON: payload is not JSON: …')", () => {
    let e: unknown;
    try {
      buildSubmitBody(none, "job.json", () => '{"url": "https://example.com",}');
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toMatch(/^job\.json is not JSON: (?!payload is not JSON)\S/);
  });
});
