import { describe, expect, it } from "vitest";
import { emptyWorker, minuteOf, type FleetSeriesPoint, type JobView, type WorkerView } from "@troupe/events";
import { liveOffers, waitingFor } from "@troupe/events";
import { failingPercent, fleetWarnings, fleetWideFailure } from "./warnings.ts";

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

  it("names a worker failing more than 20 % of at least 5 attempts in the last 60 min", () => {
    // [minute, completed, failed] of the recent window, by worker id.
    const recent = (b: Record<string, [number, number, number][]>) => (id: string) => b[id];
    const m = (ago: number) => minuteOf(now) - ago * 60_000;
    const flaky = worker({ id: "flaky", name: "Flaky", jobsCompleted: 6, jobsFailed: 4 });
    expect(fleetWarnings([flaky], 0, [], now, 90_000, 0, [], recent({ flaky: [[m(30), 2, 1], [m(0), 4, 3]] }))).toEqual(["Worker Flaky failing 40 % of its attempts in the last 60 min (4 of 10)."]);
    const node = worker({ id: "n1", name: "Worker Node Local 01" });
    expect(fleetWarnings([node], 0, [], now, 90_000, 0, [], recent({ n1: [[m(1), 6, 4]] }))).toEqual(["Worker Node Local 01 failing 40 % of its attempts in the last 60 min (4 of 10)."]);
    // Fewer than 5 attempts in the window is too few to judge: 1 failure of 1, 2 of 4.
    expect(fleetWarnings([node], 0, [], now, 90_000, 0, [], recent({ n1: [[m(0), 0, 1]] }))).toEqual([]);
    expect(fleetWarnings([node], 0, [], now, 90_000, 0, [], recent({ n1: [[m(2), 2, 2]] }))).toEqual([]);
    expect(fleetWarnings([node], 0, [], now, 90_000, 0, [], recent({ n1: [[m(2), 9, 1]] }))).toEqual([]);
  });

  it("judges the recent window, not every attempt since registration: an old burst warns no more, a worker failing now after 10,000 good attempts does", () => {
    const m = (ago: number) => minuteOf(now) - ago * 60_000;
    // All time 50 % failed, but the failures were 61+ minutes ago; the last hour was clean.
    const healed = worker({ id: "healed", jobsCompleted: 100, jobsFailed: 100 });
    expect(fleetWarnings([healed], 0, [], now, 90_000, 0, [], (id) => (id === "healed" ? [[m(61), 0, 100], [m(10), 20, 0]] : undefined))).toEqual([]);
    // Without the window's minutes (none in the last hour) it is not judged at all.
    expect(fleetWarnings([healed], 0, [], now, 90_000)).toEqual([]);
    // 10,000 good attempts, then 6 failures of 8 in the last minutes: warned.
    const turned = worker({ id: "turned", name: "Turned", jobsCompleted: 10_002, jobsFailed: 6 });
    expect(fleetWarnings([turned], 0, [], now, 90_000, 0, [], () => [[m(3), 2, 6]])).toEqual(["Worker Turned failing 75 % of its attempts in the last 60 min (6 of 8)."]);
    // The minute that leaves the window as the clock moves leaves the judgement with it: 59 minutes ago is in, 60 out.
    expect(fleetWarnings([turned], 0, [], m(-59) + 30_000, 90_000, 0, [], () => [[m(0), 2, 6]])).toHaveLength(1);
    expect(fleetWarnings([turned], 0, [], m(-60), 90_000, 0, [], () => [[m(0), 2, 6]])).toEqual([]);
  });

  it("names no failing worker retired long ago (a machine replaced)", () => {
    // A failing worker gone for longer than the retire window (a machine replaced long ago) is no longer named.
    const gone = worker({ name: "Gone", status: "lost", jobsCompleted: 1, jobsFailed: 9, lastSeen: new Date(now - 25 * 3600_000).toISOString() });
    const window = () => [[minuteOf(now), 1, 9] as const];
    expect(fleetWarnings([gone], 0, [], now, 90_000, 24 * 3600_000, [], window)).toEqual([]);
    expect(fleetWarnings([gone], 0, [], now, 90_000, 26 * 3600_000, [], window)).toEqual(["Worker Gone failing 90 % of its attempts in the last 60 min (9 of 10)."]);
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

describe("jobs failing on every worker, or one worker failing", () => {
  const m = (ago: number) => minuteOf(now) - ago * 60_000;
  /** Workers by id with [completed, failed] in the window. */
  const fleet = (rates: Record<string, [number, number]>) => ({
    workers: Object.keys(rates).map((id) => worker({ id, name: id })),
    recent: (id: string) => (rates[id] ? [[m(5), ...rates[id]] as const] : undefined),
  });
  const top = { code: "timeout", message: "waitForElement step did not finish within <n> ms", count: 42 };

  it("says once that the jobs fail, not the workers, when every worker fails alike, naming the top error", () => {
    const f = fleet({ "wn-a": [6, 4], "wn-b": [7, 3], "wn-c": [5, 5] });
    expect(fleetWarnings(f.workers, 0, [], now, 90_000, 0, [], f.recent, top)).toEqual([
      "Jobs are failing on every worker (all 3 fail 30–50 % of their attempts in the last 60 min): most likely the jobs or their targets, not the workers — top error: timeout: “waitForElement step did not finish within <n> ms” (42 attempts).",
    ]);
    // Without the errors' read (an old file, no failures grouped yet) it says the rest.
    const two = fleet({ "wn-a": [6, 4], "wn-b": [6, 4] });
    expect(fleetWarnings(two.workers, 0, [], now, 90_000, 0, [], two.recent)).toEqual([
      "Jobs are failing on every worker (both fail 40 % of their attempts in the last 60 min): most likely the jobs or their targets, not the workers.",
    ]);
  });

  it("names each failing worker when one does clearly better (the failing machines are the thing to look at)", () => {
    const f = fleet({ "wn-a": [6, 4], "wn-b": [6, 4], "wn-ok": [18, 2] });
    expect(fleetWarnings(f.workers, 0, [], now, 90_000, 0, [], f.recent, top)).toEqual([
      "Worker wn-a failing 40 % of its attempts in the last 60 min (4 of 10).",
      "Worker wn-b failing 40 % of its attempts in the last 60 min (4 of 10).",
    ]);
    // One failing worker alone is that worker, whatever the others.
    const one = fleet({ "wn-a": [6, 4], "wn-b": [10, 1] });
    expect(fleetWarnings(one.workers, 0, [], now, 90_000, 0, [], one.recent, top)).toEqual(["Worker wn-a failing 40 % of its attempts in the last 60 min (4 of 10)."]);
  });

  it("counts a worker below the threshold but close to the others as failing alike", () => {
    // Pooled 8 of 30 (27 %); 18 % is not below half of it.
    const f = fleet({ "wn-a": [6, 4], "wn-b": [6, 4], "wn-c": [9, 2] });
    expect(fleetWarnings(f.workers, 0, [], now, 90_000, 0, [], f.recent)).toEqual([
      "Jobs are failing on the workers alike (2 of 3 fail more than 20 % of their attempts in the last 60 min, the others close: 18–40 %, none clearly better): most likely the jobs or their targets, not the workers.",
    ]);
  });

  it("fleetWideFailure: judges only workers with enough attempts, needs two failing, none clearly better", () => {
    expect(fleetWideFailure([])).toBeNull();
    expect(fleetWideFailure([{ completed: 0, failed: 10 }])).toBeNull();
    // A worker with 4 attempts, all fine, tells nothing: left out.
    expect(fleetWideFailure([{ completed: 0, failed: 10 }, { completed: 5, failed: 5 }, { completed: 4, failed: 0 }])).toEqual({ judged: 2, failing: 2, minPercent: 50, maxPercent: 100 });
    // With 5 clean attempts it is judged, and does clearly better.
    expect(fleetWideFailure([{ completed: 0, failed: 10 }, { completed: 5, failed: 5 }, { completed: 5, failed: 0 }])).toBeNull();
    // Near half the pooled rate is not below it: the judged pool 18 of 76 (23.7 %, half 11.8 %), 12.5 % (the 4-attempt one left out).
    expect(fleetWideFailure([{ completed: 22, failed: 8 }, { completed: 22, failed: 8 }, { completed: 14, failed: 2 }, { completed: 2, failed: 2 }])).toEqual({ judged: 3, failing: 2, minPercent: 13, maxPercent: 27 });
  });

  it("leaves retired workers out of the judgement, as out of the warnings", () => {
    const f = fleet({ "wn-a": [6, 4], "wn-b": [6, 4], "wn-ok": [20, 0] });
    const ok = f.workers.find((w) => w.id === "wn-ok")!;
    ok.status = "lost";
    ok.lastSeen = new Date(now - 25 * 3600_000).toISOString();
    expect(fleetWarnings(f.workers, 0, [], now, 90_000, 24 * 3600_000, [], f.recent)[0]).toMatch(/^Jobs are failing on every worker \(both fail 40 %/);
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
  it("marks a worker's window by the Overview's rule: enough finished attempts, more than the threshold failed", () => {
    expect(failingPercent({ completed: 3, failed: 1 })).toBeNull(); // too few to judge
    expect(failingPercent({ completed: 0, failed: 1 })).toBeNull(); // 1 failure of 1 neither
    expect(failingPercent({ completed: 80, failed: 20 })).toBeNull(); // 20 %: not more than it
    expect(failingPercent({ completed: 127, failed: 33 })).toBeCloseTo(20.625);
    expect(failingPercent({ completed: 0, failed: 5 })).toBe(100);
  });
});
