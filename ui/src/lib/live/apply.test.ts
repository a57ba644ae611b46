import { describe, expect, it } from "vitest";
import { createEvent, evolveJob, jobSummary, sha256Hex, type JobView, type TroupeEvent } from "@troupe/events";
import { viewFromSummary } from "../jobs.ts";
import { recentRate } from "../recent.ts";
import { failingPercent } from "../warnings.ts";
import { applyEvent, clockOffset, seedModels, type LiveModels } from "./apply.ts";

const T0 = Date.parse("2026-01-15T10:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000);
const models = (o: Partial<LiveModels> = {}): LiveModels => ({ workers: new Map(), recent: new Map(), jobs: new Map(), trackNewJobs: true, trackNewWorkers: true, ...o });

const reg = createEvent("worker.registered", {
  workerId: "wn-a", instanceId: "i-a", name: "A", type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "1",
  capabilities: { maxConcurrentJobs: 2, memory: 1024, cpu: 2, supportedBrowsers: [{ name: "chromium", version: "120" }] },
}, "wn-a", at(0)) as TroupeEvent;
const submitted = createEvent("job.submitted", { jobId: "j1", spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 } }, "master", at(1)) as TroupeEvent;
const assigned = (attempt: number) => createEvent("job.assigned", { jobId: "j1", workerId: "wn-a", attempt, epoch: 1 }, "master", at(2)) as TroupeEvent;
const progress = (attempt: number, p: number) => createEvent("job.progress", { jobId: "j1", workerId: "wn-a", attempt, progress: p }, "wn-a", at(3)) as TroupeEvent;
const completed = (attempt: number) => createEvent("job.completed", {
  jobId: "j1", workerId: "wn-a", attempt,
  result: { success: true, data: { title: "x" }, dataExtracted: 1, screenshots: [], logs: [] },
  metrics: { totalDuration: 1500, responseTime: 200, memoryUsed: 50 },
}, "wn-a", at(4)) as TroupeEvent;

describe("applyEvent", () => {
  it("folds a job's life with the shared reducer and counts the outcome on its worker", () => {
    const m = models();
    for (const e of [reg, submitted, assigned(1), progress(1, 40)]) applyEvent(m, e);
    expect(m.jobs.get("j1")).toMatchObject({ status: "running", progress: 40, workerId: "wn-a" });
    expect(applyEvent(m, completed(1))).toEqual({ job: "j1", worker: "wn-a" });
    expect(m.jobs.get("j1")).toMatchObject({ status: "completed", progress: 100 });
    expect(m.workers.get("wn-a")).toMatchObject({ jobsCompleted: 1, successRate: 100, averageJobDuration: 1500 });
  });

  it("a list page's models keep what a row shows, not a finished job's result, logs, steps, metrics or scenario (a list tab held 2,000 results)", () => {
    const m = models({ summariesOnly: true });
    const withScenario = createEvent("job.submitted", { jobId: "j1", spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000, scenario: { steps: [{ type: "navigate", url: "https://example.com" }] } } }, "master", at(1)) as TroupeEvent;
    for (const e of [reg, withScenario, assigned(1), completed(1)]) applyEvent(m, e);
    const j = m.jobs.get("j1")!;
    expect(j).toMatchObject({ status: "completed", workerId: "wn-a", duration: expect.any(Number) });
    for (const k of ["result", "logs", "steps", "metrics"] as const) expect(j[k], k).toBeUndefined();
    // Of the scenario, only what names the job in its row.
    expect(j.spec.scenario).toEqual({ steps: [{ type: "navigate", url: "https://example.com" }] });
    // A page of one job keeps it all; a row and the worker's counts are the same either way.
    const full = models();
    for (const e of [reg, withScenario, assigned(1), completed(1)]) applyEvent(full, e);
    expect(full.jobs.get("j1")?.result?.data).toEqual({ title: "x" });
    expect(jobSummary(j)).toEqual(jobSummary(full.jobs.get("j1")!));
    expect(m.workers.get("wn-a")).toEqual(full.workers.get("wn-a"));
  });

  it("rejects a stale attempt and does not count it on the worker", () => {
    const m = models();
    for (const e of [reg, submitted, assigned(1)]) applyEvent(m, e);
    expect(applyEvent(m, completed(2))).toEqual({ rejected: "stale-attempt" });
    expect(m.workers.get("wn-a")?.jobsCompleted).toBe(0);
  });

  it("ignores jobs and workers the page does not follow", () => {
    const m = models({ trackNewJobs: false, trackNewWorkers: false });
    expect(applyEvent(m, submitted)).toEqual({});
    expect(applyEvent(m, reg)).toEqual({});
    expect(m.jobs.size + m.workers.size).toBe(0);
  });

  it("folds live events onto list rows (summaries) the server rendered", () => {
    const view = (evolveJob(undefined, submitted as never) as { ok: true; job: JobView }).job;
    const assignedView = (evolveJob(view, assigned(1) as never) as { ok: true; job: JobView }).job;
    const m = models({ jobs: new Map([["j1", viewFromSummary(jobSummary(assignedView))]]) });
    applyEvent(m, progress(1, 70));
    expect(jobSummary(m.jobs.get("j1") as JobView)).toMatchObject({ status: "running", progress: 70 });
  });

  it("a list row of a tokened attempt refuses a worker event without its token, as the master does (a forged completion once showed as completed until reload)", () => {
    const token = "tok_abcdefghijklmnopqrstu";
    const view = (evolveJob(undefined, submitted as never) as { ok: true; job: JobView }).job;
    const tokened = createEvent("job.assigned", { jobId: "j1", workerId: "wn-a", attempt: 1, epoch: 1, tokenHash: sha256Hex(token) }, "master", at(2)) as TroupeEvent;
    const assignedView = (evolveJob(view, tokened as never) as { ok: true; job: JobView }).job;
    const m = models({ jobs: new Map([["j1", viewFromSummary(jobSummary(assignedView))]]) });
    applyEvent(m, completed(1));
    expect(m.jobs.get("j1")).toMatchObject({ status: "assigned" });
    const real = createEvent("job.completed", { jobId: "j1", workerId: "wn-a", attempt: 1, token, result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] }, metrics: { totalDuration: 10, responseTime: 1, memoryUsed: 1 } }, "wn-a", at(5)) as TroupeEvent;
    applyEvent(m, real);
    expect(m.jobs.get("j1")).toMatchObject({ status: "completed" });
  });
});

describe("outcomes of jobs the page does not hold", () => {
  it("are counted on a worker that echoes tokens only with a token (forged completions of jobs that never existed raised its success rate until a reload)", () => {
    const tokenedReg = createEvent("worker.registered", { ...(reg.data as Extract<TroupeEvent, { type: "worker.registered" }>["data"]), capabilities: { maxConcurrentJobs: 2, memory: 1024, cpu: 2, supportedBrowsers: [], attemptTokens: true } }, "wn-a", at(0)) as TroupeEvent;
    const m = models({ trackNewJobs: false });
    applyEvent(m, tokenedReg);
    expect(applyEvent(m, completed(1))).toEqual({});
    expect(m.workers.get("wn-a")?.jobsCompleted).toBe(0);
    const withToken = createEvent("job.completed", { ...(completed(1).data as Extract<TroupeEvent, { type: "job.completed" }>["data"]), token: "tok_abcdefghijklmnopqrstu" }, "wn-a", at(5)) as TroupeEvent;
    expect(applyEvent(m, withToken)).toEqual({ worker: "wn-a" });
    expect(m.workers.get("wn-a")?.jobsCompleted).toBe(1);
    // A worker older than tokens: its outcomes are counted as before (the projector's fencing is trusted).
    const old = models({ trackNewJobs: false });
    applyEvent(old, reg);
    applyEvent(old, completed(1));
    expect(old.workers.get("wn-a")?.jobsCompleted).toBe(1);
  });
});

describe("a worker's cancelled failure of a job the page does not hold", () => {
  it("is not counted: the master cancels only attempts the log took, so the projector refuses it (cancelling a running job added a failure on the workers page)", () => {
    const m = models({ trackNewJobs: false });
    applyEvent(m, reg);
    const failed = (code: string) => createEvent("job.failed", { jobId: "j1", workerId: "wn-a", attempt: 1, error: { message: code, code, retryable: false } }, "wn-a", at(5)) as TroupeEvent;
    expect(applyEvent(m, failed("cancelled"))).toEqual({});
    expect(m.workers.get("wn-a")?.jobsFailed).toBe(0);
    // Any other failure is counted as before.
    expect(applyEvent(m, failed("timeout"))).toEqual({ worker: "wn-a" });
    expect(m.workers.get("wn-a")?.jobsFailed).toBe(1);
  });
});

describe("seedModels", () => {
  const life = (events: TroupeEvent[]) => {
    const m = models();
    for (const e of events) applyEvent(m, e);
    return m;
  };

  it("a catch-up with older rows keeps what the page folded: a completed job stays completed, the worker's counts stay (a projector behind)", () => {
    const older = life([reg, submitted, assigned(1), progress(1, 40)]);
    const page = life([reg, submitted, assigned(1), progress(1, 40), completed(1)]);
    seedModels(page, [...older.workers.values()], [...older.jobs.values()], true);
    expect(page.jobs.get("j1")).toMatchObject({ status: "completed", progress: 100 });
    expect(page.workers.get("wn-a")).toMatchObject({ jobsCompleted: 1, successRate: 100, averageJobDuration: 1500 });
  });

  it("a catch-up with newer rows takes them; a new page (merge off) replaces whatever was held", () => {
    const newer = life([reg, submitted, assigned(1), progress(1, 40), completed(1)]);
    const page = life([reg, submitted, assigned(1)]);
    seedModels(page, [...newer.workers.values()], [...newer.jobs.values()], true);
    expect(page.jobs.get("j1")).toMatchObject({ status: "completed" });
    expect(page.workers.get("wn-a")?.jobsCompleted).toBe(1);
    const fresh = life([reg, submitted]);
    seedModels(fresh, [], [], false);
    expect(fresh.jobs.size + fresh.workers.size).toBe(0);
  });

  it("keeps, on a catch-up, held jobs the rows lack (submitted after the rows were read), in submission order", () => {
    const page = life([submitted]);
    const other = createEvent("job.submitted", { jobId: "j0", spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 } }, "master", at(0)) as TroupeEvent;
    const rows = life([other]);
    seedModels(page, undefined, [...rows.jobs.values()], true);
    expect([...page.jobs.keys()]).toEqual(["j0", "j1"]);
  });

  it("a job's rows are ordered by how far it came, not by its events' times: a worker whose clock is behind the master's", () => {
    const page = life([reg, submitted, assigned(1)]);
    // The row: started and completed, dated by a worker 10 s behind (before the assignment's time).
    const early = (e: TroupeEvent) => ({ ...e, time: at(-8).toISOString() }) as TroupeEvent;
    const rows = life([reg, submitted, assigned(1), early(createEvent("job.started", { jobId: "j1", workerId: "wn-a", attempt: 1 }, "wn-a", at(0)) as TroupeEvent), early(completed(1))]);
    seedModels(page, undefined, [...rows.jobs.values()], true);
    expect(page.jobs.get("j1")?.status).toBe("completed");
  });

  it("a catch-up whose worker row has seen the page's latest event of that worker takes the row's counts (a completion the projector refused is no longer counted)", () => {
    const page = models({ trackNewJobs: false });
    applyEvent(page, reg);
    applyEvent(page, completed(1)); // a job the page does not hold: trusted, counted
    const rows = life([reg, submitted, assigned(2), completed(2)]); // the log: attempt 1's completion was stale
    const row = rows.workers.get("wn-a")!;
    seedModels(page, [{ ...row, jobsCompleted: 0, jobsFailed: 0, lastEventAt: page.workers.get("wn-a")!.lastEventAt }], undefined, true);
    expect(page.workers.get("wn-a")?.jobsCompleted).toBe(0);
  });

  it("a catch-up whose worker row has not seen the page's latest event of it keeps the page's worker whole (a drain the page saw stays)", () => {
    const page = life([reg, submitted, assigned(1), completed(1)]);
    applyEvent(page, createEvent("worker.draining", { workerId: "wn-a", instanceId: "i-a", reason: "drain requested" }, "wn-a", at(6)) as TroupeEvent);
    const rows = life([reg]); // the projector is behind
    seedModels(page, [...rows.workers.values()], undefined, true);
    expect(page.workers.get("wn-a")).toMatchObject({ status: "draining", jobsCompleted: 1 });
  });

  it("a catch-up after a hidden tab's queue was folded counts each outcome once (the rows hold them too)", () => {
    const page = life([reg, submitted, assigned(1)]);
    page.jobs.clear(); // a workers page holds no jobs
    applyEvent(page, completed(1));
    const rows = life([reg, submitted, assigned(1), completed(1)]);
    seedModels(page, [...rows.workers.values()], undefined, true);
    expect(page.workers.get("wn-a")?.jobsCompleted).toBe(1);
  });
});

describe("applyEvent bounds", () => {
  it("keeps at most MAX_TRACKED_JOBS jobs, dropping the oldest", async () => {
    const { MAX_TRACKED_JOBS } = await import("./apply.ts");
    const m = models();
    for (let i = 0; i <= MAX_TRACKED_JOBS; i++) {
      applyEvent(m, createEvent("job.submitted", { jobId: `j${i}`, spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 } }, "master", at(i)) as TroupeEvent);
    }
    expect(m.jobs.size).toBe(MAX_TRACKED_JOBS);
    expect(m.jobs.has("j0")).toBe(false);
    expect(m.jobs.has(`j${MAX_TRACKED_JOBS}`)).toBe(true);
  });

  const job = (id: string, status: JobView["status"], s: number) => ({ ...(evolveJob(undefined, submitted as never) as { ok: true; job: JobView }).job, id, status, submittedAt: at(s).toISOString() }) as JobView;
  const submit = (id: string, s: number) => createEvent("job.submitted", { jobId: id, spec: { url: "https://example.com", priority: 5, maxAttempts: 3, timeoutMs: 60_000 } }, "master", at(s)) as TroupeEvent;

  it("past MAX_TRACKED_JOBS keeps the rows on screen (a dead-jobs list emptied by 2,000 new submissions)", async () => {
    const { MAX_TRACKED_JOBS } = await import("./apply.ts");
    // Seeded newest first, as a list page renders.
    const m = models();
    seedModels(m, undefined, [job("d2", "dead", -1), job("d1", "dead", -10)], false);
    m.onScreen = new Set(["d1", "d2"]);
    for (let i = 0; i < MAX_TRACKED_JOBS + 5; i++) applyEvent(m, submit(`n${i}`, 100 + i));
    expect(m.jobs.size).toBe(MAX_TRACKED_JOBS);
    expect(m.jobs.has("d1") && m.jobs.has("d2")).toBe(true);
    expect(m.jobs.has("n0")).toBe(false);
  });

  it("past MAX_TRACKED_JOBS drops settled jobs off screen before jobs under way (a completed list waits for those)", async () => {
    const { MAX_TRACKED_JOBS } = await import("./apply.ts");
    const m = models();
    const rows = Array.from({ length: MAX_TRACKED_JOBS - 20 }, (_, i) => job(`c${i}`, "completed", i));
    const running = Array.from({ length: 20 }, (_, i) => job(`r${i}`, "running", -100 + i));
    seedModels(m, undefined, [...rows, ...running], false);
    m.onScreen = new Set(rows.slice(-200).map((j) => j.id));
    for (let i = 0; i < 50; i++) applyEvent(m, submit(`n${i}`, 10_000 + i));
    expect(m.jobs.size).toBe(MAX_TRACKED_JOBS);
    // The oldest completed ones off screen went; every running one and every new one stayed.
    expect(running.every((j) => m.jobs.has(j.id))).toBe(true);
    expect(m.jobs.has("n49") && !m.jobs.has("c0") && m.jobs.has(`c${MAX_TRACKED_JOBS - 21}`)).toBe(true);
  });

  it("a catch-up merge keeps the bound too", async () => {
    const { MAX_TRACKED_JOBS } = await import("./apply.ts");
    const m = models();
    seedModels(m, undefined, Array.from({ length: MAX_TRACKED_JOBS }, (_, i) => job(`a${i}`, "completed", i)), false);
    seedModels(m, undefined, Array.from({ length: 50 }, (_, i) => job(`b${i}`, "completed", 5000 + i)), true);
    expect(m.jobs.size).toBe(MAX_TRACKED_JOBS);
    expect(m.jobs.has("b49") && !m.jobs.has("a0")).toBe(true);
  });
});

describe("times on the page", () => {
  const heartbeat = (time: Date) => createEvent("worker.heartbeat", {
    workerId: "wn-a", instanceId: "i-a", status: "online", currentJobs: 0, maxConcurrentJobs: 2, jobIds: [],
    metrics: { memoryUsage: 100, cpuUsage: 5, diskUsage: 1, networkUsage: 2, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
    performance: { successRate: 100, averageJobDuration: 0 },
  }, "wn-a", time) as TroupeEvent;

  it("an event dated after it was received is folded at the time it was received (a worker's clock running an hour ahead)", () => {
    const m = models();
    applyEvent(m, reg, T0 + 5000);
    applyEvent(m, heartbeat(at(3600)), T0 + 10_000);
    expect(m.workers.get("wn-a")?.lastSeen).toBe(at(10).toISOString());
    // An honest time is kept as it is.
    applyEvent(m, heartbeat(at(11)), T0 + 11_500);
    expect(m.workers.get("wn-a")?.lastSeen).toBe(at(11).toISOString());
  });

  it("the server's clock is trusted over the browser's beyond the slack a page load explains", () => {
    expect(clockOffset(T0 + 1500, T0, 2000)).toBe(0);
    expect(clockOffset(T0 - 1500, T0, 2000)).toBe(0);
    expect(clockOffset(T0 + 600_000, T0, 2000)).toBe(600_000);
    expect(clockOffset(T0 - 90_000, T0, 2000)).toBe(-90_000);
  });
});

describe("a worker's recent window, live", () => {
  const failedAt = (jobId: string, s: number, code = "timeout") =>
    createEvent("job.failed", { jobId, workerId: "wn-a", attempt: 1, error: { message: code, code, retryable: false } }, "wn-a", at(s)) as TroupeEvent;
  const completedAt = (jobId: string, s: number) => createEvent("job.completed", {
    jobId, workerId: "wn-a", attempt: 1, result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] },
    metrics: { totalDuration: 10, responseTime: 1, memoryUsed: 1 },
  }, "wn-a", at(s)) as TroupeEvent;

  it("counts each outcome the all-time counts take in its minute, and none they refuse", () => {
    const m = models({ trackNewJobs: false });
    applyEvent(m, reg);
    applyEvent(m, completedAt("j1", 5), T0 + 5000);
    applyEvent(m, failedAt("j2", 65), T0 + 65_000);
    applyEvent(m, failedAt("j3", 70), T0 + 70_000);
    // A worker's cancelled failure of a job the page does not hold: refused for both.
    applyEvent(m, failedAt("j4", 71, "cancelled"), T0 + 71_000);
    expect(m.recent.get("wn-a")).toEqual([[T0, 1, 0], [T0 + 60_000, 0, 2]]);
    expect(m.workers.get("wn-a")).toMatchObject({ jobsCompleted: 1, jobsFailed: 2 });
    expect(recentRate(m.recent.get("wn-a"), T0 + 71_000)).toMatchObject({ completed: 1, failed: 2 });
    // A stale attempt the job reducer refuses counts in neither.
    const held = models();
    for (const e of [reg, submitted, assigned(1)]) applyEvent(held, e);
    applyEvent(held, completed(2));
    expect(held.recent.get("wn-a")).toBeUndefined();
  });

  it("files an outcome dated ahead of its arrival under the minute it arrived in, as the projector caps it", () => {
    const m = models({ trackNewJobs: false });
    applyEvent(m, reg);
    applyEvent(m, failedAt("j1", 3600), T0 + 10_000);
    expect(m.recent.get("wn-a")).toEqual([[T0, 0, 1]]);
  });

  it("a page open for hours holds only the window: old minutes leave as outcomes come, and the figure rolls off with the clock", () => {
    const m = models({ trackNewJobs: false });
    applyEvent(m, reg);
    for (let i = 0; i < 10; i++) applyEvent(m, failedAt(`f${i}`, i), T0 + i * 1000);
    expect(failingPercent(recentRate(m.recent.get("wn-a"), T0 + 10_000))).toBe(100);
    // An hour later, with no event: the burst has left the window; the all-time counts keep it.
    expect(recentRate(m.recent.get("wn-a"), T0 + 3600_000)).toMatchObject({ completed: 0, failed: 0, successRate: null });
    expect(m.workers.get("wn-a")?.jobsFailed).toBe(10);
    // Three hours of one outcome a minute: the page holds 60 minutes, not 180.
    for (let i = 0; i < 180; i++) applyEvent(m, completedAt(`c${i}`, 3600 + i * 60), T0 + (3600 + i * 60) * 1000);
    expect(m.recent.get("wn-a")).toHaveLength(60);
    expect(recentRate(m.recent.get("wn-a"), T0 + (3600 + 179 * 60) * 1000)).toMatchObject({ completed: 60, failed: 0, successRate: 100 });
  });

  it("a catch-up reload agrees with the live figure: rows that saw everything are taken; rows behind merge minute by minute", () => {
    const registered = () => {
      const m = models();
      applyEvent(m, reg);
      return m.workers.get("wn-a")!;
    };
    const page = models({ trackNewJobs: false });
    seedModels(page, [registered()], undefined, false, new Map([["wn-a", [[T0 - 120_000, 5, 0]] as const]]));
    expect(page.recent.get("wn-a")).toEqual([[T0 - 120_000, 5, 0]]);
    applyEvent(page, failedAt("j1", 5), T0 + 5000);
    const pageWorker = page.workers.get("wn-a")!;
    // Rows read before that failure (the projector behind): the page's failure stays, and the rows' minute it missed too.
    const behind = new Map([["wn-a", [[T0 - 180_000, 0, 2], [T0 - 120_000, 5, 0]] as const]]);
    seedModels(page, [registered()], undefined, true, behind);
    expect(page.recent.get("wn-a")).toEqual([[T0 - 180_000, 0, 2], [T0 - 120_000, 5, 0], [T0, 0, 1]]);
    // Rows that have seen the page's latest event of the worker: taken as they are (they hold the failure).
    const caughtUp = new Map([["wn-a", [[T0 - 180_000, 0, 2], [T0 - 120_000, 5, 0], [T0, 0, 1]] as const]]);
    seedModels(page, [pageWorker], undefined, true, caughtUp);
    expect(page.recent.get("wn-a")).toBe(caughtUp.get("wn-a"));
    // A new page (merge off) without rows for the worker's window: nothing held over.
    seedModels(page, [pageWorker], undefined, false, new Map());
    expect(page.recent.get("wn-a")).toBeUndefined();
  });
});
