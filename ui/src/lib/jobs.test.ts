import { describe, expect, it } from "vitest";
import { cancelQuestion } from "./jobs.ts";

describe("job page helpers", () => {
  it("the Cancel question names the job, its status and a running job's progress", () => {
    expect(cancelQuestion({ id: "j1", status: "running", progress: 39.6 })).toBe("Cancel job j1 (running, 40 %)? A cancelled job cannot be retried.");
    expect(cancelQuestion({ id: "j2", status: "queued", progress: 0 })).toBe("Cancel job j2 (queued)? A cancelled job cannot be retried.");
  });
});
