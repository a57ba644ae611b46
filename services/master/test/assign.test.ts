import type { NatsConnection } from "@nats-io/nats-core";
import { createEvent, type TroupeEvent } from "@troupe/events";
import { publishEvent } from "@troupe/events/node";
import { waitFor, startTestNats, type TestNats } from "@troupe/tests/harness";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import type { FakeWorker } from "./fake-worker.ts";
import { command, fakeWorker, foldJobs, masterIn, readLog, submit, jobIdOf } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
const workers: FakeWorker[] = [];
// One server and master for the file; each test deregisters its workers so the next starts with an empty pool.
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await masterIn(nats, "m-assign");
  ui = await nats.connect("ui");
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop({ deregister: true });
});
afterAll(async () => {
  await master?.stop();
  await nats?.stop();
});

const status = (id: string) => lookupJob(master.master.state, id)?.status;

describe("assignment", () => {
  it("offers jobs by priority, then in submission order", async () => {
    const specs = [
      { url: "https://example.com/5a", priority: 5 }, { url: "https://example.com/9a", priority: 9 },
      { url: "https://example.com/5b", priority: 5 }, { url: "https://example.com/1a", priority: 1 },
      { url: "https://example.com/9b", priority: 9 },
    ];
    const ids: string[] = [];
    for (const s of specs) ids.push(jobIdOf(await submit(ui, s)));
    await waitFor("all queued", () => ids.every((id) => status(id) === "queued"));
    const w = await fakeWorker(nats, { id: "w-order", slots: 1, behaviour: () => ({ kind: "complete", afterMs: 5 }) });
    workers.push(w);
    await waitFor("all completed", () => ids.every((id) => status(id) === "completed"));
    expect(w.accepted.map((a) => a.spec.url)).toEqual(["9a", "9b", "5a", "5b", "1a"].map((s) => `https://example.com/${s}`));
    // Each request names the process it is for (another with the same worker id ignores it).
    expect(new Set(w.instanceHeaders)).toEqual(new Set([w.instanceId]));
    // And how long before the question the log stored the assignment: the attempt's lease runs from there.
    expect(w.assignedAges).toHaveLength(5);
    for (const age of w.assignedAges) expect(/^\d+$/.test(age) && Number(age) < 5000, age).toBe(true);
  });

  it("holds a delayed job until runAt", async () => {
    workers.push(await fakeWorker(nats, { id: "w-delay", slots: 2 }));
    const runAt = new Date(Date.now() + 800).toISOString();
    const id = jobIdOf(await submit(ui, { url: "https://example.com/later", runAt }));
    const now = jobIdOf(await submit(ui, { url: "https://example.com/now" }));
    await waitFor("the delayed job completed", () => status(id) === "completed", 10_000);
    const log = await readLog(ui);
    const assigned = log.find((l) => l.event.type === "job.assigned" && l.event.data.jobId === id);
    expect(Date.parse(assigned!.event.time)).toBeGreaterThanOrEqual(Date.parse(runAt));
    expect(status(now)).toBe("completed");
  });

  it("waits for a runAt weeks ahead without a timer Node cannot hold (it once re-armed every millisecond)", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      workers.push(await fakeWorker(nats, { id: "w-far", slots: 1 }));
      const far = jobIdOf(await submit(ui, { url: "https://example.com/next-month", runAt: new Date(Date.now() + 30 * 24 * 3600_000).toISOString() }));
      await waitFor("the far job queued", () => status(far) === "queued");
      // A dispatch round after it (which arms the delay timer again) runs a job submitted now.
      const now = jobIdOf(await submit(ui, { url: "https://example.com/meanwhile" }));
      await waitFor("the job of now completed", () => status(now) === "completed");
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      expect(warnings.filter((w) => /TimeoutOverflow/.test(w))).toEqual([]);
      expect(status(far)).toBe("queued");
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("forgets a delayed job once it is cancelled (it used to stay in the delay queue until its runAt)", async () => {
    const delayed = () => Number(/^troupe_master_delayed_jobs (\d+)$/m.exec(master.master.metricsText())?.[1]);
    const before = delayed();
    const far = jobIdOf(await submit(ui, { url: "https://example.com/next-year", runAt: new Date(Date.now() + 365 * 24 * 3600_000).toISOString() }));
    await waitFor("the far job queued", () => status(far) === "queued");
    expect(delayed()).toBe(before + 1);
    expect(await command(ui, "jobs.cancel", { jobId: far })).toMatchObject({ ok: true });
    await waitFor("the far job cancelled", () => status(far) === "cancelled");
    expect(delayed()).toBe(before);
  });

  it("gives up on a job that expires before any worker takes it", async () => {
    const id = jobIdOf(await submit(ui, { url: "https://example.com/expiring", expiresAt: new Date(Date.now() + 300).toISOString() }));
    await waitFor("the job is dead", () => status(id) === "dead");
    const log = await readLog(ui);
    const dead = log.find((l) => l.event.type === "job.dead" && l.event.data.jobId === id);
    expect(dead?.event.data).toMatchObject({ reason: expect.stringContaining("expired") });
    expect(log.some((l) => l.event.type === "job.assigned" && l.event.data.jobId === id)).toBe(false);
  });

  it("never puts more jobs on a worker than its slots, and spreads by free slots", async () => {
    const a = await fakeWorker(nats, { id: "w-cap-a", slots: 2, behaviour: () => ({ kind: "complete", afterMs: 60 }) });
    const b = await fakeWorker(nats, { id: "w-cap-b", slots: 3, behaviour: () => ({ kind: "complete", afterMs: 60 }) });
    workers.push(a, b);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(jobIdOf(await submit(ui, { url: `https://example.com/cap/${i}` })));
    await waitFor("all completed", () => ids.every((id) => status(id) === "completed"), 20_000);
    expect(a.maxConcurrent).toBeLessThanOrEqual(2);
    expect(b.maxConcurrent).toBeLessThanOrEqual(3);
    // From the log itself: held attempts per worker never exceed its slots.
    const log = await readLog(ui);
    const held = new Map<string, Set<string>>();
    let peak = { "w-cap-a": 0, "w-cap-b": 0 } as Record<string, number>;
    for (const { event: e } of log) {
      if (e.type === "job.assigned") held.set(e.data.workerId, (held.get(e.data.workerId) ?? new Set()).add(e.data.jobId));
      if (e.type === "job.completed") held.get(e.data.workerId)?.delete(e.data.jobId);
      for (const [w, s] of held) peak = { ...peak, [w]: Math.max(peak[w] ?? 0, s.size) };
    }
    expect(peak["w-cap-a"]).toBeLessThanOrEqual(2);
    expect(peak["w-cap-b"]).toBeLessThanOrEqual(3);
    expect(a.accepted.length).toBeGreaterThan(0);
    expect(b.accepted.length).toBeGreaterThan(0);
  });

  it("sends a job only to a worker that supports its browser, and waits when none does", async () => {
    const chrome = await fakeWorker(nats, { id: "w-chromium", slots: 4, browsers: ["chromium"] });
    const fox = await fakeWorker(nats, { id: "w-firefox", slots: 4, browsers: ["firefox"] });
    workers.push(chrome, fox);
    const f = jobIdOf(await submit(ui, { url: "https://example.com/f", browser: "firefox" }));
    const c = jobIdOf(await submit(ui, { url: "https://example.com/c", browser: "chromium" }));
    const webkit = jobIdOf(await submit(ui, { url: "https://example.com/w", browser: "webkit" }));
    await waitFor("both completed", () => status(f) === "completed" && status(c) === "completed");
    expect(fox.accepted.map((a) => a.jobId)).toEqual([f]);
    expect(chrome.accepted.map((a) => a.jobId)).toEqual([c]);
    expect(status(webkit)).toBe("queued");
    expect([...chrome.requests, ...fox.requests].some((r) => r.jobId === webkit)).toBe(false);
  });

  it("sends a job that wants labels only to a worker that has them all, and keeps it waiting (without holding up others) until one registers", async () => {
    const eu = await fakeWorker(nats, { id: "w-eu", slots: 4, labels: ["region=eu"] });
    const plain = await fakeWorker(nats, { id: "w-plain", slots: 4 });
    workers.push(eu, plain);
    const euJob = jobIdOf(await submit(ui, { url: "https://example.com/eu", workerLabels: ["region=eu"], priority: 9 }));
    const both = jobIdOf(await submit(ui, { url: "https://example.com/eu-res", workerLabels: ["region=eu", "residential"], priority: 10 }));
    const any = jobIdOf(await submit(ui, { url: "https://example.com/any", priority: 1 }));
    await waitFor("the eu job and the unlabelled job completed", () => status(euJob) === "completed" && status(any) === "completed");
    expect(eu.accepted.map((a) => a.jobId)).toContain(euJob);
    expect(plain.accepted.map((a) => a.jobId)).not.toContain(euJob);
    expect(status(both)).toBe("queued");
    expect([...eu.requests, ...plain.requests].some((r) => r.jobId === both)).toBe(false);
    const euRes = await fakeWorker(nats, { id: "w-eu-res", slots: 1, labels: ["residential", "region=eu", "gpu"] });
    workers.push(euRes);
    await waitFor("the job wanting both labels completed on the worker that has them", () => status(both) === "completed");
    expect(euRes.accepted.map((a) => a.jobId)).toEqual([both]);
  });

  it("offers a job with a page-JavaScript step to no worker without scriptSteps (no attempt spent): it waits, without holding up others, until one registers", async () => {
    const plain = await fakeWorker(nats, { id: "w-no-script", slots: 4 });
    workers.push(plain);
    const steps = [{ type: "navigate", url: "https://example.com/js" }, { type: "waitForExpression", expression: "window.ready === true" }];
    // The highest priority: each dispatch round looks at it first.
    const js = jobIdOf(await submit(ui, { scenario: { steps }, priority: 10 }));
    const after = jobIdOf(await submit(ui, { url: "https://example.com/after-js", priority: 1 }));
    // The ordinary job submitted after it is assigned and completed: the master has dispatched since the script job was queued.
    await waitFor("the ordinary job completed", () => status(after) === "completed");
    expect(plain.requests.map((r) => r.jobId)).toEqual([after]);
    expect(status(js)).toBe("queued");
    const before = (await readLog(ui)).map((l) => l.event).filter((e) => "jobId" in e.data && e.data.jobId === js);
    // Submitted, and nothing else: no job.assigned, no requeue (no attempt number burnt).
    expect(before.map((e) => e.type)).toEqual(["job.submitted"]);
    const scripted = await fakeWorker(nats, { id: "w-script", slots: 1, scriptSteps: true });
    workers.push(scripted);
    await waitFor("the script job completed on the worker that runs page JavaScript", () => status(js) === "completed");
    expect(scripted.accepted.map((a) => [a.jobId, a.attempt])).toEqual([[js, 1]]);
    const assigned = (await readLog(ui)).map((l) => l.event).filter((e): e is Extract<TroupeEvent, { type: "job.assigned" }> => e.type === "job.assigned" && e.data.jobId === js);
    expect(assigned.map((e) => [e.data.workerId, e.data.attempt])).toEqual([["w-script", 1]]);
    expect(plain.requests.map((r) => r.jobId)).not.toContain(js);
  });

  it("offers no job to ids that only send heartbeats (never registered): a job goes to a real worker at its first attempt", async () => {
    const { js } = await nats.js("worker");
    const phantoms = Array.from({ length: 50 }, (_, i) => `phantom-${i}`);
    await Promise.all(phantoms.map((id) => publishEvent(js, createEvent("worker.heartbeat", {
      workerId: id, instanceId: `i-${id}`, status: "online", currentJobs: 0, maxConcurrentJobs: 10, jobIds: [],
      metrics: { memoryUsage: 1, cpuUsage: 0, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 100, averageJobDuration: 0 },
    }, id) as TroupeEvent)));
    // Waits a loaded machine cannot outlast (10 s timed out at load 10 on 2 cores); what is asserted is the attempt.
    await waitFor("the phantoms' heartbeats folded", () => phantoms.every((id) => master.master.state.workers.has(id)), 30_000);
    const real = await fakeWorker(nats, { id: "w-real", slots: 1 });
    workers.push(real);
    const id = jobIdOf(await submit(ui, { url: "https://example.com/not-for-phantoms" }));
    await waitFor("completed", () => status(id) === "completed", 30_000);
    expect(lookupJob(master.master.state, id)).toMatchObject({ attempt: 1 });
    expect(real.accepted.map((a) => a.jobId)).toEqual([id]);
  }, 90_000);

  it("does not let many jobs nobody can run hold up the others", async () => {
    // 1,200 high-priority jobs for a browser no worker has, appended straight to the log.
    const { js } = await nats.js("master");
    const acks = [];
    for (let i = 0; i < 1200; i++) {
      acks.push(publishEvent(js, createEvent("job.submitted", { jobId: `opera-${i}`, spec: { url: "https://example.com/o", priority: 10, maxAttempts: 3, timeoutMs: 60_000, browser: "opera" } }, "test") as TroupeEvent));
    }
    await Promise.all(acks);
    await waitFor("folded", () => (lookupJob(master.master.state, "opera-1199") !== undefined));
    workers.push(await fakeWorker(nats, { id: "w-starve", slots: 1, browsers: ["chromium"] }));
    const low = jobIdOf(await submit(ui, { url: "https://example.com/low", priority: 1 }));
    await waitFor("the runnable job completed", () => status(low) === "completed", 20_000);
    expect(status("opera-0")).toBe("queued");
  });

  it("offers a refused job to another worker and keeps it queued meanwhile", async () => {
    const grumpy = await fakeWorker(nats, { id: "w-grumpy", slots: 5, behaviour: () => ({ kind: "refuse", reason: "cpu" }) });
    workers.push(grumpy);
    const id = jobIdOf(await submit(ui, { url: "https://example.com/refused" }));
    await waitFor("refused twice", () => grumpy.requests.length >= 2);
    // Still waiting: each refusal put it back in the queue, and refusals spend no attempt (maxAttempts is 3).
    expect(["queued", "requeued", "assigned"]).toContain(status(id));
    const good = await fakeWorker(nats, { id: "w-good", slots: 1 });
    workers.push(good);
    await waitFor("completed elsewhere", () => status(id) === "completed", 15_000);
    expect(lookupJob(master.master.state, id)?.workerId).toBe("w-good");
    const log = await readLog(ui);
    const { jobs, rejected } = foldJobs(log);
    const history = jobs.get(id)!.history;
    expect(history.at(-1)).toMatchObject({ workerId: "w-good", outcome: "completed" });
    expect(history.slice(0, -1).every((h) => h.workerId === "w-grumpy" && h.outcome === "requeued" && h.requeueReason === "worker-refused")).toBe(true);
    expect(history.length).toBeGreaterThanOrEqual(3);
    expect(rejected).toEqual([]);
  });
});
