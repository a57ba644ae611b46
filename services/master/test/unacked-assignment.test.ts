import type { NatsConnection } from "@nats-io/nats-core";
import { connectAs } from "@troupe/events/node";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type RunningMaster } from "../src/main.ts";
import { lookupJob } from "../src/state.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { FAST, fakeWorker, readLog, submit } from "./helpers.ts";
import { createLogger } from "@troupe/events/node";

/**
 * The master's link to NATS holds back what the server sends for longer than
 * the master waits for an append's ack: every job.assigned is stored, but the
 * master never hears so. It reads each one back and asks the worker then;
 * before, it gave up, and the job sat "assigned" to a worker that was never
 * asked until its lease lapsed (the cluster failover case).
 */

let nats: TestNats;
let link: LatencyProxy;
let master: RunningMaster;
let ui: NatsConnection;
let worker: FakeWorker | undefined;
const LEASE_MS = 60_000;
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  link = await startLatencyProxy(nats.url);
  const nc = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-slow-link", env: {} });
  master = await startMaster(nc, { ...FAST, id: "m-slow-link", leaseMs: LEASE_MS, heartbeatIntervalMs: 2000, assignTimeoutMs: 3000, leaderLeaseMs: 10_000, appendTimeoutMs: 150 }, createLogger("master", process.env.TROUPE_LOG_LEVEL ?? "silent"));
  ui = await nats.connect("ui");
});
afterAll(async () => {
  await worker?.stop({ deregister: true });
  await master?.stop();
  await link?.close();
  await nats?.stop();
});

const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(master.master.metricsText())?.[1]);

describe("an assignment whose ack never reaches the master", () => {
  it("is read back from the log and its worker asked at once: every job runs once, none waits for its lease", async () => {
    const jobs: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await submit(ui, { url: `https://example.com/slow-link-${i}` });
      if (!r.ok) throw new Error(r.error.message);
      jobs.push(r.jobId);
    }
    await waitFor("the jobs queued at the master", () => jobs.every((id) => lookupJob(master.master.state, id)?.status === "queued"));
    // From now on every ack arrives 400 ms late, after the master's 150 ms append timeout.
    link.delayMs = 400;
    worker = await fakeWorker(nats, { id: "w-slow-link", slots: 4, behaviour: () => ({ kind: "complete", afterMs: 20 }) });
    await waitFor("every job completed", () => jobs.every((id) => lookupJob(master.master.state, id)?.status === "completed"), 20_000, 50);
    expect(counter("troupe_master_late_assignments_total")).toBeGreaterThanOrEqual(1);
    const log = await readLog(ui);
    expect(log.filter((l) => l.event.type === "job.requeued")).toEqual([]);
    for (const id of jobs) {
      expect(log.filter((l) => l.event.type === "job.assigned" && l.event.data.jobId === id), id).toHaveLength(1);
      expect(worker.accepted.filter((a) => a.jobId === id), id).toHaveLength(1);
    }
  });
});
