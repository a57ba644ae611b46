import { describe, expect, it } from "vitest";
import { emptyWorker, type FleetSeriesPoint, type JobView, type WorkerView } from "@troupe/events";
import { failingPercent, fleetWarnings, liveOffers, waitingFor } from "./warnings.ts";

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
    expect(fleetWarnings([worker({ name: "Flaky", jobsCompleted: 6, jobsFailed: 4 })], 0, [], now, 90_000)).toEqual(["Worker Flaky failing 40 % of its attempts (4 of 10)."]);
    expect(fleetWarnings([worker({ name: "Worker Node Local 01", jobsCompleted: 6, jobsFailed: 4 })], 0, [], now, 90_000)).toEqual(["Worker Node Local 01 failing 40 % of its attempts (4 of 10)."]);
    expect(fleetWarnings([worker({ jobsCompleted: 2, jobsFailed: 2 })], 0, [], now, 90_000)).toEqual([]);
    // A failing worker gone for longer than the retire window (a machine replaced long ago) is no longer named.
    const gone = worker({ name: "Gone", status: "lost", jobsCompleted: 1, jobsFailed: 9, lastSeen: new Date(now - 25 * 3600_000).toISOString() });
    expect(fleetWarnings([gone], 0, [], now, 90_000, 24 * 3600_000)).toEqual([]);
    expect(fleetWarnings([gone], 0, [], now, 90_000, 26 * 3600_000)).toEqual(["Worker Gone failing 90 % of its attempts (9 of 10)."]);
    expect(fleetWarnings([gone], 0, [], now, 90_000)).toEqual(["Worker Gone failing 90 % of its attempts (9 of 10)."]);
    expect(fleetWarnings([worker({ jobsCompleted: 9, jobsFailed: 1 })], 0, [], now, 90_000)).toEqual([]);
  });

  it("names queued jobs that ask for a browser or labels no live worker has (a draining or lost one does not count)", () => {
    const caps = (labels: string[]) => ({ maxConcurrentJobs: 2, memory: 1, cpu: 1, supportedBrowsers: [{ name: "chromium", version: "1" }], labels });
    const eu = worker({ id: "eu", capabilities: caps(["region=eu"]) });
    const gpu = worker({ id: "gpu", status: "draining", capabilities: caps(["gpu"]) });
    const lost = worker({ id: "lost", status: "lost", capabilities: caps(["gpu"]) });
    const needs = [{ labels: ["region=eu"], count: 4 }, { labels: ["gpu"], count: 1 }, { browser: "firefox", labels: [], count: 2 }];
    expect(fleetWarnings([eu, gpu, lost], 7, [], now, 90_000, 0, needs)).toEqual([
      '2 queued jobs ask for browser "firefox", which no live worker has: they wait until such a worker joins.',
      "1 queued job asks for label gpu, which no live worker has: it waits until such a worker joins.",
    ]);
    // With no live worker at all, the warning above says it for every job.
    expect(fleetWarnings([gpu], 7, [], now, 90_000, 0, needs)).toEqual(["No worker can take queued jobs: 7 waiting, no online worker has a free slot."]);
  });
});

describe("waitingFor", () => {
  const caps = { maxConcurrentJobs: 2, memory: 1, cpu: 1, supportedBrowsers: [{ name: "chromium", version: "1" }], labels: ["region=eu"] };
  const offers = liveOffers([worker({ id: "eu", capabilities: caps })], now, 90_000);
  const job = (status: JobView["status"], spec: Partial<JobView["spec"]>) => ({ status, spec: { url: "https://example.com", ...spec } }) as JobView;

  it("says what a waiting job asks for that no live worker has, and nothing for a job one can take or one not waiting", () => {
    expect(waitingFor(job("queued", { workerLabels: ["region=eu", "gpu"] }), offers)).toBe("label gpu");
    expect(waitingFor(job("requeued", { browser: "firefox" }), offers)).toBe('browser "firefox"');
    expect(waitingFor(job("queued", { browser: "CHROMIUM", workerLabels: ["region=eu"] }), offers)).toBeNull();
    expect(waitingFor(job("running", { workerLabels: ["gpu"] }), offers)).toBeNull();
    // No live worker at all: the Overview's "no worker can take queued jobs" covers it; the job's page says so too.
    expect(waitingFor(job("queued", {}), [])).toBe("a live worker");
  });

  it("says a waiting job with a page-JavaScript step asks for them when no live worker runs them, and nothing once one does", () => {
    const js = job("queued", { scenario: { steps: [{ type: "navigate", url: "https://example.com" }, { type: "waitForExpression", expression: "window.ready" }] } });
    expect(waitingFor(js, offers)).toBe("page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)");
    const scripted = liveOffers([worker({ id: "eu", capabilities: caps }), worker({ id: "js", capabilities: { ...caps, labels: [], scriptSteps: true } })], now, 90_000);
    expect(scripted[1]).toMatchObject({ scriptSteps: true });
    expect(scripted[0]).not.toHaveProperty("scriptSteps");
    expect(waitingFor(js, scripted)).toBeNull();
    // A draining worker that runs them does not count.
    expect(waitingFor(js, liveOffers([worker({ id: "eu", capabilities: caps }), worker({ id: "js", status: "draining", capabilities: { ...caps, scriptSteps: true } })], now, 90_000)))
      .toBe("page-JavaScript steps (TROUPE_ALLOW_SCRIPT_STEPS)");
    expect(waitingFor(job("queued", { scenario: { steps: [{ type: "navigate", url: "https://example.com" }] } }), offers)).toBeNull();
  });
});

describe("failingPercent", () => {
  it("marks a worker by the Overview's rule: enough finished attempts, more than the threshold failed", () => {
    expect(failingPercent({ jobsCompleted: 3, jobsFailed: 1 })).toBeNull(); // too few to judge
    expect(failingPercent({ jobsCompleted: 80, jobsFailed: 20 })).toBeNull(); // 20 %: not more than it
    expect(failingPercent({ jobsCompleted: 127, jobsFailed: 33 })).toBeCloseTo(20.625);
    expect(failingPercent({ jobsCompleted: 0, jobsFailed: 5 })).toBe(100);
  });
});
