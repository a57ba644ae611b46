import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { lookupJob } from "../src/state.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { fakeWorker, masterIn, readLog, submit } from "./helpers.ts";

/**
 * The master's process pauses (long GC, CPU starvation, a suspended VM) for longer than a lease and a
 * liveness window. When it runs again Node fires the due tick before it reads the socket, where the
 * heartbeats and progress of the pause wait: that silence is the master's own, not the worker's.
 */

const LEASE_MS = 1500;
let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
let worker: FakeWorker;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  // A leader lease longer than the pause: this is about liveness and leases, not a takeover.
  master = await masterIn(nats, "m-stall", { leaseMs: LEASE_MS, leaderLeaseMs: 10_000 });
  ui = await nats.connect("ui");
  worker = await fakeWorker(nats, { id: "w-paused-with-master", slots: 1, behaviour: () => ({ kind: "hang" }), progressEveryMs: 100 });
});
afterAll(async () => {
  await worker?.stop({ deregister: true });
  await master?.stop();
  await nats?.stop();
});

describe("a master whose process did not run for a while", () => {
  it("declares no worker lost and requeues no attempt for its own pause, and counts it", async () => {
    const r = await submit(ui, { url: "https://example.com/paused" });
    if (!r.ok) throw new Error(r.error.message);
    const job = () => lookupJob(master.master.state, r.jobId);
    await waitFor("running", () => job()?.status === "running");
    // The pause under test: this process (master and worker) does not run for longer than
    // the lease and than three heartbeat intervals (the liveness window).
    const pauseEnd = Date.now() + LEASE_MS + 1000;
    while (Date.now() < pauseEnd) { /* paused */ }
    // Progress written a full lease after the pause: any lapse judged at or after it would show.
    await waitFor("progress a lease after the pause", async () => {
      const last = (await readLog(ui)).filter((l) => l.event.type === "job.progress" && l.event.data.jobId === r.jobId).at(-1);
      return last !== undefined && Date.parse(last.event.time) > pauseEnd + LEASE_MS;
    }, 20_000, 100);
    const log = await readLog(ui);
    const story = JSON.stringify(log.slice(-40).map((l) => `${l.seq} ${l.event.time} ${l.event.type}`), null, 1);
    expect(log.filter((l) => l.event.type === "worker.lost" || l.event.type === "job.requeued"), story).toEqual([]);
    expect(job()).toMatchObject({ status: "running", attempt: 1, workerId: "w-paused-with-master" });
    expect(master.master.metricsText()).toMatch(/^troupe_master_stalls_total [1-9]/m);
  });
});
