import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { lookupJob } from "../src/state.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { fakeWorker, masterIn, submit } from "./helpers.ts";

/**
 * While the log refuses the master's appends at once ("no responders": a cluster
 * electing the stream's leader; here the job subjects are taken out of the
 * stream), dispatch waits with a growing pause instead of retrying each job at
 * once: before, a cluster failover spun ~10,000 refused assignments a second.
 */

let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
let worker: FakeWorker | undefined;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await masterIn(nats, "m-log-down");
  ui = await nats.connect("ui");
});
afterAll(async () => {
  await worker?.stop({ deregister: true });
  await master?.stop();
  await nats?.stop();
});

const failures = () => Number(/^troupe_master_append_failures_total (\d+)$/m.exec(master.master.metricsText())?.[1]);

describe("an event log that refuses appends", () => {
  it("makes dispatch wait between rounds (100, 200, 400 ms … instead of at once), and the job is assigned once the log takes appends again", async () => {
    const jobs: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await submit(ui, { url: `https://example.com/waiting-${i}` });
      if (!r.ok) throw new Error(r.error.message);
      jobs.push(r.jobId);
    }
    // Job events have nowhere to go; worker events (registration) still do.
    const jsm = await jetstreamManager(await nats.connect("master", "test-admin"));
    const cfg = (await jsm.streams.info("TROUPE_EVENTS")).config;
    await jsm.streams.update("TROUPE_EVENTS", { ...cfg, subjects: ["troupe.evt.worker.>"] });
    worker = await fakeWorker(nats, { id: "w-after-outage", slots: 20 });
    await waitFor("the worker online", () => master.master.state.workers.get("w-after-outage")?.lifecycle === "online");
    // Each round tries the 20 jobs once; between rounds dispatch waits 100, 200, 400 ms.
    await waitFor("the first round refused", () => failures() >= 20, 10_000, 5);
    const t0 = Date.now();
    // The waits wholly after t0: those after the rounds not yet started then. A stall of this process between the first
    // round and this poll starts t0 late (a bound of 650 ms from it failed that way), so the count seen says which.
    const started = Math.ceil(failures() / 20);
    const waitsAhead = [200, 400].slice(Math.max(0, started - 1)).reduce((a, b) => a + b, 0);
    await waitFor("four rounds refused", () => failures() >= 80, 10_000, 5);
    expect(started, "the first rounds seen before the last wait").toBeLessThanOrEqual(3);
    expect(Date.now() - t0, `the waits after round ${started}`).toBeGreaterThanOrEqual(waitsAhead);
    expect(worker.requests).toEqual([]);
    await jsm.streams.update("TROUPE_EVENTS", cfg);
    await waitFor("every job completed", () => jobs.every((id) => lookupJob(master.master.state, id)?.status === "completed"), 20_000);
    expect(worker.requests.map((r) => r.jobId).sort()).toEqual([...jobs].sort());
  });
});
