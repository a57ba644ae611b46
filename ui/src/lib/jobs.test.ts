import { describe, expect, it } from "vitest";
import { cancelQuestion, progressShown } from "./jobs.ts";

describe("job page helpers", () => {
  it("the Cancel question names the job, its status and a running job's progress", () => {
    expect(cancelQuestion({ id: "j1", status: "running", progress: 39.6 })).toBe("Cancel job j1 (running, 40 %)? A cancelled job cannot be retried.");
    expect(cancelQuestion({ id: "j2", status: "queued", progress: 0 })).toBe("Cancel job j2 (queued)? A cancelled job cannot be retried.");
  });

  it("a job that ended without completing shows the progress it reached as stopped; others as they are", () => {
    expect(progressShown({ status: "cancelled", progress: 40 })).toEqual({ value: 40, stopped: true, text: "stopped at 40 %" });
    expect(progressShown({ status: "failed", progress: 62.5 })).toEqual({ value: 62.5, stopped: true, text: "stopped at 63 %" });
    expect(progressShown({ status: "dead", progress: 0 })).toEqual({ value: 0, stopped: true, text: "stopped at 0 %" });
    expect(progressShown({ status: "running", progress: 40 })).toEqual({ value: 40, stopped: false, text: "40 %" });
    expect(progressShown({ status: "completed", progress: 100 })).toEqual({ value: 100, stopped: false, text: "100 %" });
    expect(progressShown({ status: "requeued", progress: 0 })).toEqual({ value: 0, stopped: false, text: "0 %" });
  });
});
