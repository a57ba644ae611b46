import { describe, expect, it } from "vitest";
import { emptyWorker, type FleetSeriesPoint, type WorkerView } from "@troupe/events";
import { fleetWarnings } from "./warnings.ts";

const now = Date.parse("2026-01-15T10:00:00.000Z");
const worker = (over: Partial<WorkerView>): WorkerView => ({ ...emptyWorker(over.id ?? "wn-a"), name: over.id ?? "wn-a", status: "online", maxJobs: 2, lastSeen: new Date(now - 1000).toISOString(), ...over });
const minute = (i: number, submitted: number, throughput: number): FleetSeriesPoint => ({
  minute: now - (5 - i) * 60_000, submitted, completed: throughput, failed: 0, throughput,
  queueWait: { p50: null, p95: null, p99: null }, runTime: { p50: null, p95: null, p99: null },
});

describe("fleetWarnings", () => {
  it("says no worker can take queued jobs when every worker is full, draining or silent", () => {
    const ws = [worker({ id: "full", currentJobs: 2 }), worker({ id: "drain", status: "draining" }), worker({ id: "quiet", lastSeen: new Date(now - 200_000).toISOString() })];
    expect(fleetWarnings(ws, 3, [], now, 90_000)).toEqual(["No worker can take queued jobs: 3 waiting, no online worker has a free slot."]);
    expect(fleetWarnings([...ws, worker({ id: "free" })], 3, [], now, 90_000)).toEqual([]);
    expect(fleetWarnings(ws, 0, [], now, 90_000)).toEqual([]);
  });

  it("says the queue grows faster than it drains over the last minutes", () => {
    const series = [0, 1, 2, 3, 4].map((i) => minute(i, 20, 5));
    const w = fleetWarnings([worker({})], 40, series, now, 90_000);
    expect(w).toEqual(["Queue growing faster than it drains: 100 submitted vs 25 finished in the last 5 min."]);
    expect(fleetWarnings([worker({})], 40, [0, 1, 2, 3, 4].map((i) => minute(i, 5, 5)), now, 90_000)).toEqual([]);
  });

  it("names a worker failing more than 20 % of at least 5 jobs", () => {
    expect(fleetWarnings([worker({ name: "Flaky", jobsCompleted: 6, jobsFailed: 4 })], 0, [], now, 90_000)).toEqual(["Worker Flaky failing 40 % of its jobs (4 of 10)."]);
    expect(fleetWarnings([worker({ name: "Worker Node Local 01", jobsCompleted: 6, jobsFailed: 4 })], 0, [], now, 90_000)).toEqual(["Worker Node Local 01 failing 40 % of its jobs (4 of 10)."]);
    expect(fleetWarnings([worker({ jobsCompleted: 2, jobsFailed: 2 })], 0, [], now, 90_000)).toEqual([]);
    // A failing worker gone for longer than the retire window (a machine replaced long ago) is no longer named.
    const gone = worker({ name: "Gone", status: "lost", jobsCompleted: 1, jobsFailed: 9, lastSeen: new Date(now - 25 * 3600_000).toISOString() });
    expect(fleetWarnings([gone], 0, [], now, 90_000, 24 * 3600_000)).toEqual([]);
    expect(fleetWarnings([gone], 0, [], now, 90_000, 26 * 3600_000)).toEqual(["Worker Gone failing 90 % of its jobs (9 of 10)."]);
    expect(fleetWarnings([gone], 0, [], now, 90_000)).toEqual(["Worker Gone failing 90 % of its jobs (9 of 10)."]);
    expect(fleetWarnings([worker({ jobsCompleted: 9, jobsFailed: 1 })], 0, [], now, 90_000)).toEqual([]);
  });
});
