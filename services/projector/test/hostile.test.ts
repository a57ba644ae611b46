import { createEvent, encodeEvent } from "@troupe/events";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dumpTables, openReadModels, rebuildInto, registration, result, Script, spec, startLive, tempDbPath, waitCaughtUp } from "./helpers.ts";

/**
 * Events that pass every field's schema but are hostile in shape: the live
 * projector and a rebuild skip them alike and go on.
 */

let nats: TestNats;
let path: string;
let stopLive: (() => Promise<void>) | undefined;
let publishedBy = 0;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  const master = await nats.js("master");
  const worker = await nats.js("worker");
  const s = new Script({ master: master.js, worker: worker.js }, Date.now() - 60_000);
  await s.emit("worker.registered", registration("w1"));
  await s.emit("job.submitted", { jobId: "j1", spec });
  await s.emit("job.assigned", { jobId: "j1", workerId: "w1", attempt: 1, epoch: 1 });
  await s.emit("job.started", { jobId: "j1", workerId: "w1", attempt: 1 });
  // The completion of the running job, by its worker, valid in every field, but its extracted data nested
  // 5,000 deep: it once stopped the projector on every start (JSON.stringify's stack) and any rebuild.
  const deep = JSON.stringify(createEvent("job.completed", { jobId: "j1", workerId: "w1", attempt: 1, result: { ...result, data: { deep: "MARK" } }, metrics: { totalDuration: 1, responseTime: 1, memoryUsed: 1 } }, "w1"));
  await worker.js.publish("troupe.evt.job.j1.completed", new TextEncoder().encode(deep.replace('"MARK"', `${'{"a":'.repeat(5000)}1${"}".repeat(5000)}`)));
  // The fold goes on: the job's real completion.
  await s.emit("job.completed", { jobId: "j1", workerId: "w1", attempt: 1, result, metrics: { totalDuration: 1000, responseTime: 200, memoryUsed: 50 } });
  // A worker whose clock runs ahead (or lies): a heartbeat dated an hour from now, a completion dated 9999.
  await worker.js.publish("troupe.hb.w1", encodeEvent(createEvent("worker.heartbeat", {
    workerId: "w1", instanceId: "w1-i1", status: "online", currentJobs: 0, maxConcurrentJobs: 2, jobIds: [],
    metrics: { memoryUsage: 100, cpuUsage: 5, diskUsage: 1, networkUsage: 0, jobsCompleted: 1, jobsFailed: 0, averageResponseTime: 1 },
    performance: { successRate: 100, averageJobDuration: 1 },
  }, "w1", new Date(Date.now() + 3600_000))));
  await s.emit("job.submitted", { jobId: "j2", spec });
  await s.emit("job.assigned", { jobId: "j2", workerId: "w1", attempt: 1, epoch: 1 });
  await s.emit("job.started", { jobId: "j2", workerId: "w1", attempt: 1 });
  await worker.js.publish("troupe.evt.job.j2.completed", encodeEvent(createEvent("job.completed", { jobId: "j2", workerId: "w1", attempt: 1, result, metrics: { totalDuration: 10, responseTime: 1, memoryUsed: 1 } }, "w1", new Date("9999-12-31T00:00:00.000Z"))));
  publishedBy = Date.now();
  path = tempDbPath();
  const { live } = await startLive(await nats.connect("projector"), path);
  stopLive = () => live.stop();
});

afterAll(async () => {
  await stopLive?.();
  await nats?.stop();
});

describe("hostile but schema-valid events", () => {
  it("a completion nested 5,000 deep is skipped as too-deep, live and in a rebuild, and the next completion is folded", async () => {
    const rm = openReadModels(path);
    try {
      await waitCaughtUp(nats, rm);
      expect(rm.getJob("j1")).toMatchObject({ status: "completed", result: { data: { title: "Example" } } });
      expect(rm.projectorLag()).toMatchObject({ mode: "live", skipped: 1 });
    } finally {
      rm.close();
    }
    const rebuilt = tempDbPath();
    const r = await rebuildInto(await nats.connect("projector"), rebuilt);
    expect(r.skipped).toBe(1);
    const [a, b] = [dumpTables(path), dumpTables(rebuilt)];
    expect(a.projection_skips).toEqual([{ stream: "TROUPE_EVENTS", reason: "too-deep", count: 1 }]);
    expect(b.jobs).toEqual(a.jobs);
  });

  it("times from a clock running ahead are folded as the stream's publish time: no last sign of life or chart minute in the future, live or rebuilt", async () => {
    const rm = openReadModels(path);
    try {
      await waitCaughtUp(nats, rm);
      expect(Date.parse(rm.getWorker("w1")!.lastSeen!)).toBeLessThanOrEqual(publishedBy);
      expect(Date.parse(rm.getJob("j2")!.finishedAt!)).toBeLessThanOrEqual(publishedBy);
    } finally {
      rm.close();
    }
    const live = dumpTables(path);
    const minutes = [...live.fleet_series!, ...live.worker_series!].map((r) => (r as { minute: number }).minute);
    expect(minutes.length).toBeGreaterThan(0);
    expect(Math.max(...minutes)).toBeLessThanOrEqual(publishedBy);
    const rebuilt = tempDbPath();
    await rebuildInto(await nats.connect("projector"), rebuilt);
    expect(dumpTables(rebuilt)).toEqual(live);
  });
});
