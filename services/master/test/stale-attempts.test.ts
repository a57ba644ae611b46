import { waitFor } from "@troupe/tests/harness";
import { describe, expect, it } from "vitest";
import { command, fakeWorker, jobIdOf, masterSuite, submit } from "./helpers.ts";

// Heartbeats every second, the worker's too (it is never taken for lost here); offers again after 10–50 ms.
const s = masterSuite("m-stale", { heartbeatIntervalMs: 1000, backoffMs: 10, maxBackoffMs: 50 });

describe("an attempt a worker runs on after the log took it", () => {
  it("is the one it is told to stop, not the later ones it refused when offered the job again", async () => {
    // Attempt 1 hangs without progress (its lease lapses); later offers are refused, as the real worker answers
    // `duplicate` while attempt 1 still runs, and its heartbeats go on listing the job. The newest attempt in its
    // name was a refused one, and only that was named in the cancel: attempt 1 ran on (a review).
    const w = await fakeWorker(s.nats, { id: "w-stale", slots: 2, heartbeatMs: 1000, behaviour: (j) => (j.attempt === 1 ? { kind: "hang" } : { kind: "refuse", reason: "full" }) });
    s.workers.push(w);
    const id = jobIdOf(await submit(s.ui, { url: "https://example.com/stale", maxAttempts: 3 }));
    await waitFor("the worker told to stop attempt 1", () => w.cancels.some((c) => c.jobId === id && c.attempt === 1), 30_000);
    // Refused attempts are not named: the worker never ran them.
    const refusedNamed = w.cancels.filter((c) => c.jobId === id && c.attempt > 1);
    expect(refusedNamed).toEqual([]);
    expect(w.running.has(id)).toBe(false);
    await command(s.ui, "jobs.cancel", { jobId: id });
  }, 40_000);
});
