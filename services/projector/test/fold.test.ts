import { createEvent, encodeEvent, minuteOf } from "@troupe/events";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dumpTables, hb, openReadModels, rebuildInto, registration, result, Script, spec, startLive, tempDbPath, waitCaughtUp } from "./helpers.ts";

/**
 * A scripted run through real NATS into a real SQLite file: registration,
 * heartbeats, completions, a failure, a lost worker with a requeue, a stale
 * completion, and malformed messages. The rows must be exactly what the events say.
 */

let nats: TestNats;
let path: string;
let stopLive: () => Promise<void>;
let metricsText: () => string;
let tEnd = 0;
const t0 = Math.floor((Date.now() - 30 * 60_000) / 60_000) * 60_000; // a whole minute, inside the series window

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  const master = await nats.js("master");
  const worker = await nats.js("worker");
  const s = new Script({ master: master.js, worker: worker.js }, t0);

  await s.emit("worker.registered", registration("w1"), 0);
  await s.emit("worker.registered", registration("w2"));
  await s.emit("worker.heartbeat", hb("w1", 20, 1000));
  await s.emit("worker.heartbeat", hb("w1", 40, 1200));
  await s.emit("worker.heartbeat", hb("w2", 10, 500));

  // j1: w1 completes in 1000 ms; queued 2 s before assignment.
  await s.emit("job.submitted", { jobId: "j1", spec });
  await s.emit("job.assigned", { jobId: "j1", workerId: "w1", attempt: 1, epoch: 1 }, 2000);
  await s.emit("job.started", { jobId: "j1", workerId: "w1", attempt: 1 });
  await s.emit("job.progress", { jobId: "j1", workerId: "w1", attempt: 1, progress: 50, currentStep: { index: 0, type: "navigate" } });
  await s.emit("job.completed", { jobId: "j1", workerId: "w1", attempt: 1, result, metrics: { totalDuration: 1000, responseTime: 200, memoryUsed: 50 } });
  // j2: w1 fails after 500 ms.
  await s.emit("job.submitted", { jobId: "j2", spec: { ...spec, url: "https://example.org/fail" } });
  await s.emit("job.assigned", { jobId: "j2", workerId: "w1", attempt: 1, epoch: 1 });
  await s.emit("job.started", { jobId: "j2", workerId: "w1", attempt: 1 });
  await s.emit("job.failed", { jobId: "j2", workerId: "w1", attempt: 1, error: { message: "selector not found", code: "step-failed", retryable: false }, metrics: { totalDuration: 500 } });
  // j3: w2 is lost mid-run; the job is requeued and w1 completes attempt 2; w2's late completion is stale.
  await s.emit("job.submitted", { jobId: "j3", spec });
  await s.emit("job.assigned", { jobId: "j3", workerId: "w2", attempt: 1, epoch: 1 });
  await s.emit("job.started", { jobId: "j3", workerId: "w2", attempt: 1 });
  await s.emit("worker.lost", { workerId: "w2", lastSeen: new Date(t0).toISOString(), epoch: 1, jobIds: ["j3"] }, 60_000);
  await s.emit("job.requeued", { jobId: "j3", attempt: 2, previousAttempt: 1, previousWorkerId: "w2", reason: "worker-lost", notBefore: s.tick(0), epoch: 1 });
  await s.emit("job.assigned", { jobId: "j3", workerId: "w1", attempt: 2, epoch: 1 }, 3000);
  await s.emit("job.started", { jobId: "j3", workerId: "w1", attempt: 2 });
  await s.emit("job.completed", { jobId: "j3", workerId: "w1", attempt: 2, result, metrics: { totalDuration: 2000, responseTime: 300, memoryUsed: 70 } });
  await s.emit("job.completed", { jobId: "j3", workerId: "w2", attempt: 1, result, metrics: { totalDuration: 9000, responseTime: 900, memoryUsed: 70 } });

  // Malformed and unknown messages, published raw (a buggy or hostile producer).
  await master.js.publish("troupe.evt.job.jx.submitted", new TextEncoder().encode("{not json"));
  const unknown = { ...createEvent("job.submitted", { jobId: "jx", spec }, "m"), type: "job.exploded" };
  await master.js.publish("troupe.evt.job.jx.submitted", new TextEncoder().encode(JSON.stringify(unknown)));
  await master.js.publish("troupe.evt.job.jy.submitted", encodeEvent(createEvent("job.submitted", { jobId: "jz", spec }, "m")));
  await worker.js.publish("troupe.hb.w1", new TextEncoder().encode(JSON.stringify({ hello: "world" })));
  // The fold goes on after them: one more job.
  await s.emit("job.submitted", { jobId: "j4", spec: { ...spec, priority: 9, tags: ["nightly", "shop:de"], browser: "Chromium", workerLabels: ["region=eu", "gpu"] } });
  tEnd = s.now;

  path = tempDbPath();
  const nc = await nats.connect("projector");
  const { live, metrics } = await startLive(nc, path, { batchMax: 7 });
  stopLive = () => live.stop();
  metricsText = () => metrics.render();
});

afterAll(async () => {
  await stopLive?.();
  await nats?.stop();
});

describe("projector fold (real NATS, real SQLite)", () => {
  it("computes worker rows from the job events they produced", async () => {
    const rm = openReadModels(path, { now: () => tEnd });
    await waitCaughtUp(nats, rm);
    const w1 = rm.getWorker("w1");
    expect(w1).toMatchObject({
      id: "w1", name: "Worker w1", type: "puppeteer", ip: "10.0.0.1", port: 3002, status: "online", maxJobs: 2,
      jobsCompleted: 2, jobsFailed: 1, cpu: 40, memory: 1200, disk: 40, network: 1.5, registeredAt: new Date(t0).toISOString(),
    });
    expect(w1!.successRate).toBeCloseTo((2 / 3) * 100, 10);
    expect(w1!.averageJobDuration).toBeCloseTo((1000 + 500 + 2000) / 3, 10);
    expect(w1!.averageResponseTime).toBe(250); // the failure reported no response time
    const w2 = rm.getWorker("w2");
    expect(w2).toMatchObject({ status: "lost", jobsCompleted: 0, jobsFailed: 0, successRate: 0, averageJobDuration: 0 });
    expect(rm.listWorkers({ status: "lost" }).map((w) => w.id)).toEqual(["w2"]);
    rm.close();
    // Half an hour later by the real clock, nothing heard from w1: it shows as suspect until the master declares it lost.
    const later = openReadModels(path);
    expect(later.getWorker("w1")!.status).toBe("suspect");
    later.close();
  });

  it("keeps each job with its attempt history; the stale completion changes nothing", () => {
    const rm = openReadModels(path);
    const j3 = rm.getJob("j3")!;
    expect(j3).toMatchObject({ status: "completed", workerId: "w1", attempt: 2, duration: 2000, progress: 100 });
    expect(j3.history.map((a) => [a.attempt, a.workerId, a.outcome, a.requeueReason])).toEqual([[1, "w2", "requeued", "worker-lost"], [2, "w1", "completed", undefined]]);
    expect(rm.getJob("j2")).toMatchObject({ status: "failed", error: { code: "step-failed" }, duration: 500 });
    expect(rm.getJob("j1")!.result).toEqual(result);
    const page = rm.listJobs({ limit: 2 });
    expect(page.jobs.map((j) => j.id)).toEqual(["j4", "j3"]);
    expect(rm.listJobs({ limit: 2, cursor: page.nextCursor! }).jobs.map((j) => j.id)).toEqual(["j2", "j1"]);
    expect(rm.listJobs({ status: ["failed", "queued"] }).jobs.map((j) => j.id)).toEqual(["j4", "j2"]);
    expect(rm.listJobs({ q: "example.org" }).jobs.map((j) => j.id)).toEqual(["j2"]);
    // search matches tags too (whole or part of a tag), not only id and url
    expect(rm.listJobs({ q: "nightly" }).jobs.map((j) => j.id)).toEqual(["j4"]);
    // j4 waits (queued, priority 9); everything else has been assigned or finished
    expect(rm.queueByPriority()).toEqual({ 9: 1 });
    // What the waiting jobs ask of a worker (the Overview names what no live worker has); labels sorted.
    expect(rm.queueNeeds()).toEqual([{ browser: "Chromium", labels: ["gpu", "region=eu"], count: 1 }]);
    expect(rm.listJobs({ q: "shop:" }).jobs.map((j) => j.id)).toEqual(["j4"]);
    expect(rm.getJob("jz")).toBeNull();
    rm.close();
  });

  it("counts and skips malformed, unknown and stale events, and the fold goes on", async () => {
    const db = (await import("better-sqlite3")).default(path, { readonly: true });
    const skips = db.prepare("select stream, reason, count from projection_skips order by stream, reason").all();
    db.close();
    expect(skips).toEqual([
      { stream: "TROUPE_EVENTS", reason: "not-json", count: 1 },
      { stream: "TROUPE_EVENTS", reason: "stale-attempt", count: 1 },
      { stream: "TROUPE_EVENTS", reason: "subject-mismatch", count: 1 },
      { stream: "TROUPE_EVENTS", reason: "unknown-type", count: 1 },
      { stream: "TROUPE_HEARTBEATS", reason: "invalid-envelope", count: 1 },
    ]);
    expect(metricsText()).toContain('troupe_projector_events_skipped_total{reason="stale-attempt"} 1');
    const rm = openReadModels(path);
    expect(rm.getJob("j4")).toMatchObject({ status: "queued", priority: 9 });
    expect(rm.projectorLag()).toMatchObject({ mode: "live", skipped: 5 });
    rm.close();
  });

  it("builds per-minute series for workers and the fleet, and fleet stats", () => {
    const rm = openReadModels(path, { now: () => tEnd });
    const w1 = rm.workerSeries("w1", t0);
    expect(w1[0]).toMatchObject({ minute: t0, cpu: 30, memory: 1100 });
    expect(w1.reduce((n, p) => n + p.completed, 0)).toBe(2);
    expect(w1.reduce((n, p) => n + p.failed, 0)).toBe(1);
    const fleet = rm.fleetSeries(t0);
    expect(fleet.reduce((n, p) => n + p.completed, 0)).toBe(2);
    expect(fleet.reduce((n, p) => n + p.failed, 0)).toBe(1);
    expect(fleet.reduce((n, p) => n + p.submitted, 0)).toBe(4);
    // In the first minute j1 waited 2 s, j2 and j3 1 s; a percentile is its bucket's upper bound (< 9 % above).
    const first = fleet.find((p) => p.minute === minuteOf(t0))!;
    expect(first.queueWait.p50).toBeGreaterThanOrEqual(1000);
    expect(first.queueWait.p50).toBeLessThan(1000 * 1.09);
    expect(first.queueWait.p99).toBeGreaterThanOrEqual(2000);
    expect(first.queueWait.p99).toBeLessThan(2000 * 1.09);
    const stats = rm.stats();
    expect(stats).toMatchObject({ jobsCompleted: 2, jobsFailed: 1, workers: { total: 2, byStatus: { online: 1, lost: 1 } }, jobs: { total: 4, byStatus: { completed: 2, failed: 1, queued: 1 } } });
    rm.close();
  });

  it("a rebuild from the log equals the live database row for row", async () => {
    const nc = await nats.connect("projector");
    const other = tempDbPath();
    const r = await rebuildInto(nc, other);
    expect(r.skipped).toBe(5);
    expect(dumpTables(other)).toEqual(dumpTables(path));
  });

  it("--until builds the state as of a past sequence", async () => {
    const nc = await nats.connect("projector");
    const other = tempDbPath();
    // Sequence 11 of TROUPE_EVENTS is j2's failure: j3 does not exist yet, w1 has 1 completed and 1 failed.
    await rebuildInto(nc, other, { until: { seq: 11 } });
    const rm = openReadModels(other);
    expect(rm.getJob("j3")).toBeNull();
    expect(rm.getJob("j2")).toMatchObject({ status: "failed" });
    expect(rm.getWorker("w1")).toMatchObject({ jobsCompleted: 1, jobsFailed: 1, successRate: 50 });
    expect(rm.projectorLag()!.checkpoints.TROUPE_EVENTS).toBe(11);
    rm.close();
  });
});

describe("projector NATS permissions (nats.conf)", () => {
  async function violation(subject: string): Promise<string> {
    const nc = await nats.connect("projector", "perm-projector");
    const err = (async () => {
      for await (const st of nc.status()) if (st.type === "error") return String((st as { error: unknown }).error);
      return "";
    })();
    nc.publish(subject, "{}");
    await nc.flush();
    return Promise.race([err, new Promise<string>((r) => setTimeout(() => r("no error within 2s"), 2000))]);
  }

  it("may not touch other streams' consumers, streams, or append events", async () => {
    expect(await violation("$JS.API.CONSUMER.DELETE.KV_troupe-master.x")).toMatch(/Permissions Violation for Publish/i);
    expect(await violation("$JS.API.CONSUMER.CREATE.OBJ_troupe-artifacts.x")).toMatch(/Permissions Violation for Publish/i);
    expect(await violation("$JS.API.STREAM.DELETE.TROUPE_EVENTS")).toMatch(/Permissions Violation for Publish/i);
    expect(await violation("troupe.evt.job.j.completed")).toMatch(/Permissions Violation for Publish/i);
  });
});
