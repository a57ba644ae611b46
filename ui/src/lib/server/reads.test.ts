import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bucketOf, createEvent, encodeEvent, minuteOf, subjectOf, subjects, type EventData, type EventType, type TroupeEvent } from "@troupe/events";
import { newGenerationPath, swapIn } from "../../../../services/projector/src/db-file.ts";
import { openWriterDb, ReadModelWriter, type RawMessage } from "../../../../services/projector/src/writer.ts";
import { chartPoints } from "../chart-range.ts";
import { openReads, type Reads } from "./reads.ts";

/**
 * The charts' reads against a real read-model file, written as the projector writes it (ReadModelWriter, the
 * projector's own fold), without NATS: a range picks the window and the bucket size, buckets sum counts, merge the
 * percentiles' histograms and average the heartbeats.
 */

const M = 60_000;
const H = 60 * M;
// "Now" for the reads: 7 minutes into a 15-minute bucket, a little in the past (events are never after their publish time).
const NOW = bucketOf(Date.now(), 15 * M) - 15 * M + 7 * M;
// A 15-minute bucket three hours back (so also the start of a 5-minute one).
const X = bucketOf(NOW - 3 * H, 15 * M);
const OLD = NOW - 20 * H;

let reads: Reads;

beforeAll(() => {
  const path = join(mkdtempSync(join(tmpdir(), "troupe-ui-reads-")), "readmodels.sqlite");
  const gen = newGenerationPath(path);
  const w = new ReadModelWriter(openWriterDb(gen, "live"), { subjects, seriesRetentionMs: 24 * H + 30 * M, clockMs: () => NOW });
  const seq: Record<string, number> = { TROUPE_EVENTS: 0, TROUPE_HEARTBEATS: 0 };
  const put = <T extends EventType>(type: T, data: EventData<T>, at: number) => {
    const e = createEvent(type, data, type === "worker.heartbeat" ? "w1" : "t", new Date(at)) as TroupeEvent;
    const stream = type === "worker.heartbeat" ? "TROUPE_HEARTBEATS" : "TROUPE_EVENTS";
    const m: RawMessage = { seq: ++seq[stream]!, subject: subjectOf(e), data: encodeEvent(e), publishedMs: at };
    w.applyBatch(stream, [m]);
  };
  const beat = (cpu: number, at: number) => put("worker.heartbeat", {
    workerId: "w1", instanceId: "i1", status: "online", currentJobs: 0, maxConcurrentJobs: 2, jobIds: [], heartbeatMs: 10_000,
    metrics: { memoryUsage: cpu * 10, memoryTotal: 4096, cpuUsage: cpu, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
    performance: { successRate: 0, averageJobDuration: 0 },
  }, at);
  const spec = { url: "https://example.com/a", priority: 5, maxAttempts: 1, timeoutMs: 60_000 };
  const ran = (jobId: string, at: number, outcome: "completed" | "failed", totalDuration: number) => {
    put("job.submitted", { jobId, spec }, at);
    put("job.assigned", { jobId, workerId: "w1", attempt: 1, epoch: 1 }, at + 1000);
    put("job.started", { jobId, workerId: "w1", attempt: 1 }, at + 2000);
    if (outcome === "completed") put("job.completed", { jobId, workerId: "w1", attempt: 1, result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] }, metrics: { totalDuration, responseTime: 10, memoryUsed: 1 } }, at + 3000);
    else put("job.failed", { jobId, workerId: "w1", attempt: 1, error: { message: "no", code: "step-failed", retryable: false }, metrics: { totalDuration } }, at + 3000);
  };

  put("worker.registered", { workerId: "w1", instanceId: "i1", name: "w1", type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "1", capabilities: { maxConcurrentJobs: 2, memory: 4096, cpu: 2, supportedBrowsers: [] } }, OLD);
  beat(10, OLD + 10_000);
  // Then offline until X: no heartbeats, no rows.
  beat(20, X + M + 5000);
  for (const s of [5, 15, 25]) beat(80, X + 4 * M + s * 1000);
  ran("j1", X + 2 * M, "completed", 1000);
  ran("j2", X + 3 * M, "failed", 60_000);
  put("job.submitted", { jobId: "j3", spec }, NOW - 2 * M);
  w.close();
  swapIn(path, gen);
  reads = openReads(path, 0);
});

afterAll(() => reads?.close());

describe("the charts' reads by range (real SQLite)", () => {
  it("1h: per minute, the last 60 minutes up to the one in progress; what is older is not read", () => {
    const c = reads.fleetChart("1h", NOW);
    expect(c).toMatchObject({ range: "1h", bucketMs: M, from: minuteOf(NOW) - 59 * M, to: minuteOf(NOW), heldFrom: X + 2 * M });
    expect(c.points.map((p) => [p.minute, p.submitted])).toEqual([[NOW - 2 * M, 1]]);
    expect(reads.workerChart("w1", "1h", NOW).points).toEqual([]);
  });

  it("6h: 5-minute buckets; counts summed, run-time percentiles over every attempt of the bucket, CPU the mean of its heartbeats", () => {
    const f = reads.fleetChart("6h", NOW);
    expect(f).toMatchObject({ bucketMs: 5 * M, to: bucketOf(NOW, 5 * M), from: bucketOf(NOW, 5 * M) - 71 * 5 * M });
    expect(f.points.map((p) => [p.minute, p.submitted, p.completed, p.failed])).toEqual([[X, 2, 1, 1], [bucketOf(NOW - 2 * M, 5 * M), 1, 0, 0]]);
    const x = f.points[0]!;
    expect(x.runTime.p50).toBeGreaterThanOrEqual(1000);
    expect(x.runTime.p50).toBeLessThan(1090);
    expect(x.runTime.p95).toBeGreaterThanOrEqual(60_000);
    const w = reads.workerChart("w1", "6h", NOW);
    expect(w.heldFrom).toBe(minuteOf(OLD + 10_000));
    // One heartbeat at 20 % and three at 80 %: 65 %, not the minutes' (20 + 80) / 2.
    expect(w.points).toEqual([{ minute: X, cpu: 65, memory: 650, completed: 1, failed: 1, jobs: 2 }]);
  });

  it("24h: 15-minute buckets back to the first heartbeat; an offline stretch is a CPU gap and zero jobs on the chart", () => {
    const w = reads.workerChart("w1", "24h", NOW);
    expect(w).toMatchObject({ bucketMs: 15 * M, to: bucketOf(NOW, 15 * M) });
    expect(w.points.map((p) => [p.minute, p.cpu, p.jobs])).toEqual([[bucketOf(OLD + 10_000, 15 * M), 10, 0], [X, 65, 2]]);
    const win = { range: "24h" as const, bucketMs: w.bucketMs, from: w.from, to: w.to };
    const cpu = chartPoints(w.points.map((p) => [p.minute, p.cpu]), win, { fill: "gap" });
    const jobs = chartPoints(w.points.map((p) => [p.minute, p.jobs]), win, { fill: "zero", heldFrom: w.heldFrom });
    expect(cpu).toHaveLength(96);
    const old = cpu.findIndex(([t]) => t === bucketOf(OLD + 10_000, 15 * M));
    const x = cpu.findIndex(([t]) => t === X);
    expect(cpu[old]![1]).toBe(10);
    expect(cpu.slice(old + 1, x).every(([, v]) => v === null)).toBe(true);
    expect(jobs.slice(0, old).every(([, v]) => v === null)).toBe(true); // before anything was held: unknown
    expect(jobs.slice(old, x).every(([, v]) => v === 0)).toBe(true);
    expect(jobs[x]![1]).toBe(2);
    // The fleet's 15-minute bucket holds both attempts and j3's submission is in the bucket in progress.
    expect(reads.fleetChart("24h", NOW).points.map((p) => [p.minute, p.submitted, p.throughput])).toEqual([[X, 2, 2], [bucketOf(NOW, 15 * M), 1, 0]]);
  });

  it("a worker without series: nothing held, nothing read", () => {
    expect(reads.workerChart("nobody", "24h", NOW)).toMatchObject({ heldFrom: null, points: [] });
  });
});
