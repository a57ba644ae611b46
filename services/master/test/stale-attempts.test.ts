import { waitFor } from "@troupe/tests/harness";
import { describe, expect, it } from "vitest";
import { command, fakeWorker, jobIdOf, masterSuite, submit } from "./helpers.ts";

// Heartbeats every second, the worker's too (it is never taken for lost here); offers again after 10–50 ms.
// Answers to assignments may take 10 s: one test answers only after a cancel settled.
const s = masterSuite("m-stale", { heartbeatIntervalMs: 1000, backoffMs: 10, maxBackoffMs: 50, assignTimeoutMs: 10_000 });

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

  it("is not offered again to the worker still running an older attempt of it, and no reminder follows once the worker runs its current attempt", async () => {
    const w = await fakeWorker(s.nats, { id: "w-stale-2", slots: 2, heartbeatMs: 1000, labels: ["stale-2"], behaviour: () => ({ kind: "hang" }) });
    s.workers.push(w);
    const id = jobIdOf(await submit(s.ui, { url: "https://example.com/stale-2", maxAttempts: 3, workerLabels: ["stale-2"] }));
    // Attempt 1's lease lapses (no progress); the new attempt goes to this worker only once it stopped attempt 1
    // (its heartbeat no longer lists the job): offered before, it would refuse as `duplicate` (an attack run).
    const second = await waitFor("a later attempt offered to the worker", () => w.requests.find((r) => r.jobId === id && r.attempt > 1), 30_000);
    expect(w.cancels.some((c) => c.jobId === id && c.attempt === 1)).toBe(true);
    await waitFor("the later attempt running", () => w.running.get(id)?.attempt === second.attempt, 10_000);
    // Three more heartbeats folded while it runs its current attempt: no reminder about attempt 1.
    const told = w.cancels.length;
    const beats = s.master.master.heartbeatsProcessed;
    await waitFor("three heartbeats folded", () => s.master.master.heartbeatsProcessed >= beats + 3, 10_000);
    expect(w.cancels.length).toBe(told);
    await command(s.ui, "jobs.cancel", { jobId: id });
  }, 40_000);

  it("is told to stop after the job settled too (the master keeps the attempts it took from workers in the settled entry)", async () => {
    // Attempt 1 hangs and the worker does not act on the cancels while the job is open (a paused process);
    // the job is then cancelled (settled, compact). A worker back from its pause ran the old attempt to the end.
    let paused = true;
    const w = await fakeWorker(s.nats, { id: "w-stale-3", slots: 2, heartbeatMs: 1000, labels: ["stale-3"], behaviour: () => ({ kind: "hang" }), ignoreCancels: () => paused });
    s.workers.push(w);
    const id = jobIdOf(await submit(s.ui, { url: "https://example.com/stale-3", maxAttempts: 3, workerLabels: ["stale-3"] }));
    await waitFor("a cancel of attempt 1 the worker does not act on", () => w.cancels.some((c) => c.jobId === id && c.attempt === 1), 30_000);
    expect((await command(s.ui, "jobs.cancel", { jobId: id })).ok).toBe(true);
    await waitFor("the job settled in the master", () => s.master.master.state.finished.get(id)?.status === "cancelled", 10_000);
    expect(s.master.master.state.finished.get(id)?.strays).toEqual([{ workerId: "w-stale-3", attempt: 1 }]);
    expect(w.running.get(id)?.attempt).toBe(1);
    const before = w.cancels.length;
    paused = false;
    await waitFor("a cancel of attempt 1 after the job settled, which stops it", () => w.cancels.slice(before).some((c) => c.jobId === id && c.attempt === 1) && !w.running.has(id), 30_000);
    // Its end, fenced out, is read: the settled entry forgets the stray (back to its small size).
    await w.fail(id, { message: "cancelled", retryable: false }, 1);
    await waitFor("the stray forgotten", () => s.master.master.state.finished.get(id)?.strays === undefined, 10_000);
    expect(s.master.master.state.finished.get(id)?.status).toBe("cancelled");
  }, 60_000);

  it("is not kept in the settled entry when its end was read while the job was still open", async () => {
    // Later offers are refused: once attempt 1's end is read the worker no longer lists the job, and an attempt 2
    // it took (and, ignoring cancels, ran on) would be a true stray of the settled job (CI's flake).
    const w = await fakeWorker(s.nats, { id: "w-stale-4", slots: 2, heartbeatMs: 1000, labels: ["stale-4"], behaviour: (j) => (j.attempt === 1 ? { kind: "hang" } : { kind: "refuse", reason: "full" }), ignoreCancels: () => true });
    s.workers.push(w);
    const id = jobIdOf(await submit(s.ui, { url: "https://example.com/stale-4", maxAttempts: 3, workerLabels: ["stale-4"] }));
    await waitFor("a cancel of attempt 1", () => w.cancels.some((c) => c.jobId === id && c.attempt === 1), 30_000);
    // Its end, fenced out (the lease lapsed), comes while the job waits for another attempt; the cancel follows in the log.
    await w.fail(id, { message: "gave up", retryable: true }, 1);
    expect((await command(s.ui, "jobs.cancel", { jobId: id })).ok).toBe(true);
    await waitFor("the job settled in the master", () => s.master.master.state.finished.get(id)?.status === "cancelled", 10_000);
    // Attempt 1 ended in the log before the job settled: never a stray. A later offer the cancel overtook (the
    // master appends the assignment before asking; backoffs here are 10–50 ms) is one until its refusal is read,
    // as the next test shows: a check right at the settle saw `{ w-stale-4, attempt 2 }` (a fresh-clone run).
    expect(s.master.master.state.finished.get(id)?.strays?.filter((x) => x.attempt === 1) ?? []).toEqual([]);
    await waitFor("no stray once every offer was answered", () => s.master.master.state.finished.get(id)?.strays === undefined, 10_000);
  }, 60_000);

  it("is not an attempt its worker refused while the job was cancelled (the master appends the assignment before asking)", async () => {
    let jobId = "";
    const w = await fakeWorker(s.nats, {
      id: "w-stale-5", slots: 2, heartbeatMs: 1000, labels: ["stale-5"], behaviour: () => ({ kind: "refuse", reason: "full" }),
      // The first offer is answered only once the job is cancelled and settled in the master: it was assigned then.
      beforeAnswer: async (j) => {
        if (j?.attempt !== 1 || j.jobId !== jobId) return;
        expect((await command(s.ui, "jobs.cancel", { jobId })).ok).toBe(true);
        await waitFor("the job settled in the master", () => s.master.master.state.finished.get(jobId)?.status === "cancelled", 10_000);
        expect(s.master.master.state.finished.get(jobId)?.strays).toEqual([{ workerId: "w-stale-5", attempt: 1 }]);
      },
    });
    s.workers.push(w);
    const refusals = s.master.master.counters.refusals;
    jobId = jobIdOf(await submit(s.ui, { url: "https://example.com/stale-5", maxAttempts: 3, workerLabels: ["stale-5"] }));
    await waitFor("the refusal read", () => s.master.master.counters.refusals > refusals, 20_000);
    // Refused, it runs nowhere: no stray kept, and no reminder for it would follow.
    expect(s.master.master.state.finished.get(jobId)?.strays).toBeUndefined();
    expect(w.errors).toEqual([]);
  }, 40_000);
});
