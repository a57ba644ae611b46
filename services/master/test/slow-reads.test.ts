import type { NatsConnection } from "@nats-io/nats-core";
import { connectAs, createLogger } from "@troupe/events/node";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type RunningMaster } from "../src/main.ts";
import { lookupJob } from "../src/state.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { FAST, fakeWorker, readLog, submit } from "./helpers.ts";

/**
 * The master reads the log later than it is written, by more than a lease: what NATS sends it is held back (a
 * slow link; a loaded machine did the same to a test's master). Silences must be judged as of what it has read,
 * not of its clock: before, it requeued running jobs whose progress (or completion) was stored but not yet read.
 */

let nats: TestNats;
let link: LatencyProxy;
let master: RunningMaster;
let ui: NatsConnection;
let worker: FakeWorker;
const LEASE_MS = 1500;
const LAG_MS = 2 * LEASE_MS;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  link = await startLatencyProxy(nats.url);
  const nc = await connectAs({ url: link.url, role: "master", dataDir: nats.dataDir, name: "m-slow-reads", env: {} });
  // Appends, requests and the leader lease wait longer than the lag: this is about reading late, not about timeouts.
  master = await startMaster(nc, { ...FAST, id: "m-slow-reads", leaseMs: LEASE_MS, heartbeatIntervalMs: 500, leaderLeaseMs: 30_000, appendTimeoutMs: 10_000, assignTimeoutMs: 10_000 },
    createLogger("master", process.env.TROUPE_LOG_LEVEL ?? "silent"));
  ui = await nats.connect("ui");
  worker = await fakeWorker(nats, { id: "w-slow-reads", slots: 1, behaviour: () => ({ kind: "hang" }), progressEveryMs: 100, heartbeatMs: 200 });
});

afterAll(async () => {
  await worker?.stop({ deregister: true });
  await master?.stop();
  await link?.close();
  await nats?.stop();
});

describe("a master that reads the log late", () => {
  it("takes neither a running job's lease for lapsed nor its worker for lost when its reads lag by two leases", async () => {
    const r = await submit(ui, { url: "https://example.com/read-late" });
    if (!r.ok) throw new Error(r.error.message);
    const job = () => lookupJob(master.master.state, r.jobId);
    await waitFor("running", () => job()?.status === "running", 20_000);
    link.delayMs = LAG_MS;
    const lagFrom = Date.now();
    // Progress stored (read directly from NATS) for three leases past the lag: long enough for any lapse to be decided.
    await waitFor("progress stored well past the lag", async () => {
      const last = (await readLog(ui)).filter((l) => l.event.type === "job.progress" && l.event.data.jobId === r.jobId).at(-1);
      return last !== undefined && Date.parse(last.event.time) - lagFrom > LAG_MS + 3 * LEASE_MS;
    }, 30_000, 200);
    link.delayMs = 0;
    await worker.complete(r.jobId);
    await waitFor("completed", () => job()?.status === "completed", 20_000);
    const log = await readLog(ui);
    const story = JSON.stringify(log.filter((l) => l.event.type !== "job.progress").map((l) => `${l.seq} ${l.event.time} ${l.event.type}`));
    expect(log.filter((l) => l.event.type === "job.requeued" || l.event.type === "worker.lost"), story).toEqual([]);
  }, 60_000);
});
