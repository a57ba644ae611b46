import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { command, fakeWorker, masterIn, readLog, submit, jobIdOf } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
const workers: FakeWorker[] = [];
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await masterIn(nats, "m-retry", { backoffMs: 150, leaseMs: 600 });
  ui = await nats.connect("ui");
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop({ deregister: true });
});
afterAll(async () => {
  await master?.stop();
  await nats?.stop();
});

const job = (id: string) => lookupJob(master.master.state, id);
const eventsOf = async (id: string) => (await readLog(ui)).filter((l) => "jobId" in l.event.data && l.event.data.jobId === id).map((l) => l.event);

describe("retries", () => {
  it("requeues a retryable failure with exponential backoff and marks it dead after maxAttempts", async () => {
    workers.push(await fakeWorker(nats, { id: "w-flaky", slots: 1, behaviour: () => ({ kind: "fail", retryable: true }) }));
    const id = jobIdOf(await submit(ui, { url: "https://example.com/flaky", maxAttempts: 3 }));
    await waitFor("dead", () => job(id)?.status === "dead", 15_000);
    const evs = await eventsOf(id);
    const requeued = evs.filter((e) => e.type === "job.requeued");
    expect(requeued.map((e) => [e.data.attempt, e.data.reason])).toEqual([[2, "failed-retryable"], [3, "failed-retryable"]]);
    // Backoff doubles: 150 ms, then 300 ms, counted from the failure's stamp or the master's decision if later,
    // which lies before the requeue was stamped (bounds, not a tolerance: a loaded machine took 15 ms to append one;
    // the master's clock estimate lagged the failure's stamp by 2 ms, and its retry came that much early).
    for (const [i, backoff] of [[0, 150], [1, 300]] as const) {
      const r = requeued[i];
      if (r?.type !== "job.requeued") throw new Error(`no requeue ${i + 1}`);
      const failedAt = evs.find((e) => e.type === "job.failed" && e.data.attempt === r.data.previousAttempt);
      const notBefore = Date.parse(r.data.notBefore);
      expect(notBefore - Date.parse(failedAt!.time)).toBeGreaterThanOrEqual(backoff);
      expect(notBefore - Date.parse(r.time)).toBeLessThanOrEqual(backoff);
    }
    // Each new attempt is assigned no earlier than its notBefore.
    for (const r of requeued) {
      if (r.type !== "job.requeued") continue;
      const a = evs.find((e) => e.type === "job.assigned" && e.data.attempt === r.data.attempt);
      expect(Date.parse(a!.time)).toBeGreaterThanOrEqual(Date.parse(r.data.notBefore));
    }
    expect(evs.filter((e) => e.type === "job.assigned")).toHaveLength(3);
    expect(evs.at(-1)).toMatchObject({ type: "job.dead", data: { attempts: 3, lastError: { retryable: true } } });
  });

  it("keeps a non-retryable failure final", async () => {
    workers.push(await fakeWorker(nats, { id: "w-broken", slots: 1, behaviour: () => ({ kind: "fail", retryable: false }) }));
    const id = jobIdOf(await submit(ui, { url: "https://example.com/broken" }));
    await waitFor("failed", () => job(id)?.status === "failed");
    // The next tick must not requeue it: a later job completes while this one stays failed.
    await workers.pop()!.stop({ deregister: true });
    workers.push(await fakeWorker(nats, { id: "w-ok", slots: 1 }));
    const other = jobIdOf(await submit(ui, { url: "https://example.com/after" }));
    await waitFor("other completed", () => job(other)?.status === "completed");
    expect(job(id)?.status).toBe("failed");
    expect((await eventsOf(id)).some((e) => e.type === "job.requeued")).toBe(false);
  });

  it("redrives a dead job with a fresh budget, and refuses to redrive a queued one", async () => {
    const w = await fakeWorker(nats, { id: "w-redrive", slots: 1, behaviour: () => ({ kind: "fail", retryable: true }) });
    workers.push(w);
    const id = jobIdOf(await submit(ui, { url: "https://example.com/redrive", maxAttempts: 1 }));
    await waitFor("dead", () => job(id)?.status === "dead");
    await w.stop({ deregister: true });
    workers.pop();
    workers.push(await fakeWorker(nats, { id: "w-redrive-ok", slots: 1 }));
    expect(await command(ui, "jobs.retry", { jobId: id })).toEqual({ ok: true });
    await waitFor("completed after redrive", () => job(id)?.status === "completed");
    expect(job(id)).toMatchObject({ attempt: 2, workerId: "w-redrive-ok" });
    expect(await command(ui, "jobs.retry", { jobId: id })).toMatchObject({ ok: false, error: { code: "conflict", field: "jobId" } });
    expect(await command(ui, "jobs.retry", { jobId: "nope" })).toMatchObject({ ok: false, error: { code: "not-found" } });
    expect(await command(ui, "jobs.retry", { jobId: "bad id!" })).toMatchObject({ ok: false, error: { code: "invalid", field: "jobId" } });
  });

  it("keeps a dead job compact; its retry reads the spec back from the log, and a master rebuilt from the log ends in the same compact state", async () => {
    const w = await fakeWorker(nats, { id: "w-compact", slots: 1, behaviour: () => ({ kind: "fail", retryable: true }) });
    workers.push(w);
    const spec = { url: "https://example.com/compact-redrive", maxAttempts: 1, priority: 8, tags: ["compact"], timeoutMs: 4321 };
    const id = jobIdOf(await submit(ui, spec));
    await waitFor("dead", () => job(id)?.status === "dead");
    const s = master.master.state;
    // Nothing but the compact entry is left of it: no spec, result or history, no per-job maps or subject keys.
    expect(s.jobs.has(id)).toBe(false);
    expect(Object.keys(s.finished.get(id)!).sort()).toEqual(["assigned", "attempt", "cancelled", "dead", "epoch", "id", "order", "requeued", "status", "workerId"]);
    expect([...s.subjectSeq.keys()].filter((k) => k.includes(id))).toEqual([]);
    for (const m of [s.activityMs, s.attemptBase, s.refusedAttempts, s.assignedInstance, s.submitSeq]) expect(m.has(id)).toBe(false);
    await w.stop({ deregister: true });
    workers.pop();
    const ok = await fakeWorker(nats, { id: "w-compact-ok", slots: 1 });
    workers.push(ok);
    expect(await command(ui, "jobs.retry", { jobId: id })).toEqual({ ok: true });
    await waitFor("completed after redrive", () => job(id)?.status === "completed");
    // The worker got the job's original spec, read back from job.submitted.
    expect(ok.requests.find((r) => r.jobId === id)?.spec).toMatchObject(spec);
    expect(s.finished.get(id)).toMatchObject({ status: "completed", attempt: 2, workerId: "w-compact-ok" });
    expect(s.needSpec.size).toBe(0);
    // A second redrive is a conflict (completed), cancel too; the guard sequences moved with the job.
    expect(await command(ui, "jobs.retry", { jobId: id })).toMatchObject({ ok: false, error: { code: "conflict" } });
    expect(await command(ui, "jobs.cancel", { jobId: id })).toMatchObject({ ok: false, error: { code: "conflict" } });
    const rebuilt = await masterIn(nats, "m-rebuilt");
    try {
      expect(rebuilt.master.state.appliedSeq).toBeGreaterThanOrEqual(s.appliedSeq);
      expect(rebuilt.master.state.finished.get(id)).toEqual(s.finished.get(id));
      expect(rebuilt.master.state.jobs.has(id)).toBe(false);
    } finally {
      await rebuilt.stop();
    }
  });

  it("requeues a running job whose lease lapses (no progress)", async () => {
    const silent = await fakeWorker(nats, { id: "w-silent", slots: 1, behaviour: () => ({ kind: "hang" }) });
    workers.push(silent);
    const id = jobIdOf(await submit(ui, { url: "https://example.com/silent", maxAttempts: 2 }));
    await waitFor("requeued after the lease", () => (job(id)?.attempt ?? 0) >= 2, 10_000);
    const r = (await eventsOf(id)).find((e) => e.type === "job.requeued");
    expect(r?.data).toMatchObject({ reason: "lease-expired", attempt: 2, previousWorkerId: "w-silent" });
    // Its attempt 2 waits for a worker: the next test's worker could take it first and hang on it (a CI run).
    expect(await command(ui, "jobs.cancel", { jobId: id })).toEqual({ ok: true });
  });
});

describe("cancel and drain", () => {
  it("cancels a queued job and a running one (on its worker too)", async () => {
    const queued = jobIdOf(await submit(ui, { url: "https://example.com/cq", browser: "nothing-runs-this" }));
    await waitFor("queued", () => job(queued)?.status === "queued");
    expect(await command(ui, "jobs.cancel", { jobId: queued, reason: "changed my mind" })).toEqual({ ok: true });
    await waitFor("cancelled", () => job(queued)?.status === "cancelled");

    // Jobs left by earlier tests complete; this one runs until cancelled.
    const w = await fakeWorker(nats, { id: "w-cancel", slots: 1, behaviour: (j) => (j.spec.url?.endsWith("/cr") ? { kind: "hang" } : { kind: "complete" }), progressEveryMs: 100 });
    workers.push(w);
    const running = jobIdOf(await submit(ui, { url: "https://example.com/cr", priority: 10 }));
    await waitFor("running", () => job(running)?.status === "running");
    expect(await command(ui, "jobs.cancel", { jobId: running })).toEqual({ ok: true });
    await waitFor("cancelled", () => job(running)?.status === "cancelled");
    expect(w.cancels.map((c) => c.jobId)).toEqual([running]);
    expect(await command(ui, "jobs.cancel", { jobId: running })).toMatchObject({ ok: false, error: { code: "conflict" } });
  });

  it("tells a worker to stop an attempt the log took from it while its heartbeats still list it (a worker paused past its lease ran it on beside the new one)", async () => {
    // A job an earlier test left waiting may come here first (a CI run saw one hang here and take the only slot): it completes.
    const w = await fakeWorker(nats, { id: "w-stale", slots: 1, labels: ["stale-test"], behaviour: (j) => (j.spec.url?.endsWith("/stale-attempt") ? { kind: "hang" } : { kind: "complete" }), progressEveryMs: 100 });
    workers.push(w);
    const id = jobIdOf(await submit(ui, { url: "https://example.com/stale-attempt", workerLabels: ["stale-test"] }));
    await waitFor("running", () => job(id)?.status === "running", 30_000);
    // What the master appends when the lease lapses; the worker did not hear of it and goes on.
    await master.master.append("job.requeued", { jobId: id, attempt: 2, previousAttempt: 1, previousWorkerId: "w-stale", reason: "lease-expired", notBefore: new Date(Date.now() + 60_000).toISOString(), epoch: master.master.epoch }, master.master.subjects.job(id, "requeued"));
    await waitFor("the worker told to stop attempt 1", () => w.cancels.some((c) => c.jobId === id && c.attempt === 1), 30_000);
    expect(w.cancels.find((c) => c.jobId === id)?.reason).toMatch(/attempt 1 is no longer this worker.s: the log gave the job attempt 2/);
    expect(await command(ui, "jobs.cancel", { jobId: id })).toEqual({ ok: true });
  });

  it("tells the worker of a cancel recorded without it (the canceller saw the job queued while its assignment was on its way)", async () => {
    // A job an earlier test left waiting (on a loaded machine) may come here first: it completes and takes no slot for long.
    const w = await fakeWorker(nats, { id: "w-cancel-race", slots: 2, behaviour: (j) => (j.spec.url?.endsWith("/cancel-race") ? { kind: "hang" } : { kind: "complete" }), progressEveryMs: 100 });
    workers.push(w);
    const id = jobIdOf(await submit(ui, { url: "https://example.com/cancel-race", priority: 10 }));
    // Generous waits: on a loaded machine (a full run beside a CPU hog) getting it running took over 10 s once.
    await waitFor("running", () => job(id)?.status === "running", 30_000);
    // What handleCancel appends for a job it believes queued: no attempt, no worker, and no request to a worker.
    await master.master.append("job.cancelled", { jobId: id, reason: "raced", epoch: master.master.epoch }, master.master.subjects.job(id, "cancelled"));
    await waitFor("the worker told to stop", () => w.cancels.some((c) => c.jobId === id), 30_000);
    // The attempt that was running (on a loaded machine the 600 ms lease can lapse once first: attempt 2 then).
    expect(w.cancels.find((c) => c.jobId === id)).toMatchObject({ attempt: job(id)?.attempt, reason: "raced" });
    expect(job(id)?.status).toBe("cancelled");
  }, 90_000);

  it("drains a worker: it takes no new jobs", async () => {
    const w = await fakeWorker(nats, { id: "w-drain", slots: 2 });
    workers.push(w);
    expect(await command(ui, "workers.drain", { workerId: "w-drain" })).toEqual({ ok: true });
    await waitFor("draining", () => master.master.state.workers.get("w-drain")?.lifecycle === "draining");
    const id = jobIdOf(await submit(ui, { url: "https://example.com/drained" }));
    await waitFor("queued", () => job(id)?.status === "queued");
    expect(w.requests.some((r) => r.jobId === id)).toBe(false);
    expect(await command(ui, "workers.drain", { workerId: "ghost" })).toMatchObject({ ok: false, error: { code: "not-found" } });
    expect(await command(ui, "jobs.cancel", { jobId: id })).toEqual({ ok: true });
  });

  it("resumes a drained worker: its registration puts it back in the pool and it gets the waiting job", async () => {
    const w = await fakeWorker(nats, { id: "w-resume", slots: 1, labels: ["resume-test"] });
    workers.push(w);
    expect(await command(ui, "workers.drain", { workerId: "w-resume" })).toEqual({ ok: true });
    await waitFor("draining", () => master.master.state.workers.get("w-resume")?.lifecycle === "draining");
    const id = jobIdOf(await submit(ui, { url: "https://example.com/resumed", workerLabels: ["resume-test"] }));
    await waitFor("queued", () => job(id)?.status === "queued");
    expect(await command(ui, "workers.resume", { workerId: "w-resume" })).toEqual({ ok: true });
    await waitFor("the job assigned to the resumed worker", () => w.requests.some((r) => r.jobId === id), 30_000);
    expect(master.master.state.workers.get("w-resume")?.lifecycle).toBe("online");
    expect(await command(ui, "workers.resume", { workerId: "ghost" })).toMatchObject({ ok: false, error: { code: "not-found", field: "workerId" } });
    expect(await command(ui, "workers.resume", { workerId: "w-resume", extra: 1 })).toMatchObject({ ok: false, error: { code: "invalid" } });
    // A worker that deregistered has no process to ask: a conflict (lasting), not unavailable (to retry).
    await w.stop({ deregister: true });
    await waitFor("offline", () => master.master.state.workers.get("w-resume")?.lifecycle === "offline");
    for (const rpc of ["workers.drain", "workers.resume"] as const) {
      expect(await command(ui, rpc, { workerId: "w-resume" })).toMatchObject({ ok: false, error: { code: "conflict", message: expect.stringMatching(/is offline \(it deregistered\)/) } });
    }
  });
});
