import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { fakeWorker, masterIn, readLog, submit } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
let worker: FakeWorker;
const LEASE_MS = 1500;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  // A leader lease longer than the pause below: that test is about liveness and leases, not a takeover.
  master = await masterIn(nats, "m-lease", { leaseMs: LEASE_MS, leaderLeaseMs: 10_000 });
  ui = await nats.connect("ui");
  worker = await fakeWorker(nats, { id: "w-progress", slots: 1, behaviour: () => ({ kind: "hang" }), progressEveryMs: 100 });
});
afterAll(async () => {
  await worker?.stop({ deregister: true });
  await master?.stop();
  await nats?.stop();
});

describe("job lease", () => {
  it("is renewed by progress: a job running for two leases keeps its first attempt", async () => {
    const r = await submit(ui, { url: "https://example.com/long" });
    if (!r.ok) throw new Error(r.error.message);
    const job = () => lookupJob(master.master.state, r.jobId);
    await waitFor("running", () => job()?.status === "running");
    const startedAt = Date.parse(master.master.state.jobs.get(r.jobId)!.startedAt!);
    // Wait by the log, not the clock: progress events spanning two leases (3 s).
    await waitFor("progress spanning two leases", async () => {
      const last = (await readLog(ui)).filter((l) => l.event.type === "job.progress" && l.event.data.jobId === r.jobId).at(-1);
      return last && Date.parse(last.event.time) - startedAt > 3000;
    }, 20_000, 100);
    expect(job()).toMatchObject({ status: "running", attempt: 1, workerId: "w-progress" });
    await worker.complete(r.jobId);
    await waitFor("completed", () => job()?.status === "completed");
    const log = (await readLog(ui)).filter((l) => "jobId" in l.event.data && l.event.data.jobId === r.jobId);
    // On failure: when each event of the job was written, and what the worker could not publish.
    const story = () => JSON.stringify({ events: log.map((l) => `${l.seq} ${l.event.time} ${l.event.type}`), workerErrors: worker.errors.map((e) => e.message) }, null, 1);
    expect(log.some((l) => l.event.type === "job.requeued"), story()).toBe(false);
  });
  /**
   * The master's process pauses (long GC, CPU starvation, a suspended VM) for longer than a lease and a
   * liveness window. When it runs again Node fires the due tick before it reads the socket, where the
   * heartbeats and progress of the pause wait: that silence is the master's own, not the worker's.
   */
  it("is not taken for lapsed when the master's own process did not run for longer than a lease; no worker is declared lost, and the pause is counted", async () => {
    const r = await submit(ui, { url: "https://example.com/paused" });
    if (!r.ok) throw new Error(r.error.message);
    const job = () => lookupJob(master.master.state, r.jobId);
    await waitFor("running", () => job()?.status === "running");
    // The pause under test: this process (master and worker) does not run for longer than
    // the lease and than three heartbeat intervals (the liveness window).
    const pauseEnd = Date.now() + LEASE_MS + 1000;
    while (Date.now() < pauseEnd) { /* paused */ }
    // A scrape served right after the pause, before the socket is read (the overdue tick runs first, then this timer):
    // the worker is busy, as the master judges it, not lost (it was, judged at the raw clock).
    await new Promise((r) => setTimeout(r, 0));
    expect(master.master.metricsText()).toMatch(/^troupe_master_workers\{status="busy"\} 1$/m);
    // Progress written a full lease after the pause: any lapse judged at or after it would show.
    await waitFor("progress a lease after the pause", async () => {
      const last = (await readLog(ui)).filter((l) => l.event.type === "job.progress" && l.event.data.jobId === r.jobId).at(-1);
      return last !== undefined && Date.parse(last.event.time) > pauseEnd + LEASE_MS;
    }, 20_000, 100);
    const log = await readLog(ui);
    const story = JSON.stringify(log.slice(-40).map((l) => `${l.seq} ${l.event.time} ${l.event.type}`), null, 1);
    expect(log.filter((l) => l.event.type === "worker.lost" || (l.event.type === "job.requeued" && l.event.data.jobId === r.jobId)), story).toEqual([]);
    expect(job()).toMatchObject({ status: "running", attempt: 1, workerId: "w-progress" });
    expect(master.master.metricsText()).toMatch(/^troupe_master_stalls_total [1-9]/m);
  });
});
