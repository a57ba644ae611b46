import { jetstreamManager } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { JOB_LEASE_HEADER, type AssignReply, type Command, type LogEntry } from "@troupe/events";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Worker } from "../src/worker.ts";
import { EventLog, jobId, startPages, startTestWorker, type TestPages } from "./helpers.ts";

/**
 * The page at a failure: a screenshot of it in the object store, listed in job.failed, and its URL and title in the
 * logs (services/worker/src/failure-shot.ts). Real nats-server, Chromium and object store.
 */

let nats: TestNats;
let events: EventLog;
/** Shots of healthy pages: 20 s for the page and the store, which no load reaches (the budget is tested with `real`). */
let on: Worker;
let off: Worker;
/** The budget as shipped (FAILURE_PAGE_MS, a sixth of a short lease) and the default progress cadence. */
let real: Worker;
let pages: TestPages;
/** One connection for the test's assignments and reads of the store (docs/development.md: connect once). */
let master: NatsConnection;
let store: ObjectStore;

beforeAll(async () => {
  [nats, pages] = await Promise.all([startTestNats({ init: true }), startPages()]);
  events = await EventLog.start(nats);
  master = await nats.connect("master", "test-failure-shots");
  store = await new Objm(master).open("troupe-artifacts");
  on = await startTestWorker(nats, { TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_NAME: "Worker Node Shots On" }, [], { failureWaitMs: 20_000 });
  off = await startTestWorker(nats, { TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_NAME: "Worker Node Shots Off", TROUPE_FAILURE_SCREENSHOTS: "off" });
  real = await startTestWorker(nats, { TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_NAME: "Worker Node Shots Budget" }, [], { progressEveryMs: 5000 });
}, 60_000);
afterAll(async () => {
  await Promise.all([on?.stop("test over"), off?.stop("test over"), real?.stop("test over")]);
  await Promise.all([nats?.stop(), pages?.close()]);
});

type Spec = Partial<Command<"worker.assign">["spec"]>;
/** Assigns a job and waits for its job.failed; `leaseMs`: the master's job lease, named as a master names it. */
async function failed(w: Worker, spec: Spec, tag: string, leaseMs?: number) {
  const id = jobId(tag);
  const body: Command<"worker.assign"> = { jobId: id, attempt: 1, epoch: 1, spec: { priority: 5, maxAttempts: 1, timeoutMs: 60_000, ...spec } };
  const h = headers();
  if (leaseMs !== undefined) h.set(JOB_LEASE_HEADER, String(leaseMs));
  const reply = (await master.request(`troupe.worker.${w.config.workerId}.assign`, JSON.stringify(body), { timeout: 5000, headers: h })).json<AssignReply>();
  expect(reply).toEqual({ accepted: true });
  const f = await events.final(id, 60_000);
  if (f.type !== "job.failed") throw new Error(`expected job ${id} to fail, it completed`);
  return { id, f };
}

/** The PNG stored under `name`: its signature checked; its width and height from the IHDR chunk. */
async function png(name: string) {
  const bytes = await store.getBlob(name);
  expect(bytes, `${name} in the store`).not.toBeNull();
  const b = Buffer.from(bytes!);
  expect(b.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
  return { size: b.length, width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

const workerLogs = (logs: LogEntry[] | undefined) => (logs ?? []).filter((l) => l.source === "worker").map((l) => l.message);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("a failed step", () => {
  it("lists a screenshot of the page at the failure after the scenario's own, stored as a PNG, and logs the page's URL and title", async () => {
    const { id, f } = await failed(on, { scenario: { steps: [
      { type: "navigate", url: pages.url("/form") },
      { type: "screenshot", label: "before" },
      // 2 s: the outcome (never there) does not depend on it.
      { type: "click", selectors: [["#does-not-exist"]], timeout: 2000 },
    ] } }, "step");
    // The original failure, as without the shot.
    expect(f.data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 2, type: "click" } });
    expect(f.data.screenshots).toEqual([`${id}/1/002-before.png`, `${id}/1/003-failed.png`]);
    const shot = await png(`${id}/1/003-failed.png`);
    expect(shot.size).toBeGreaterThan(1000);
    // The viewport, not the 2,000 px page.
    expect(shot.height).toBeLessThan(2000);
    expect(f.data.logs).toContainEqual(expect.objectContaining({ source: "worker", level: "info",
      message: `at the failure the page was at ${pages.url("/form")} (title "Troupe test form")` }));
    expect(workerLogs(f.data.logs).filter((m) => /failure screenshot/.test(m))).toEqual([]);
  }, 90_000);

  it("at the hard timeout: the screenshot of the step it ended, then the report", async () => {
    const { id, f } = await failed(on, { timeoutMs: 6000, scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "wait", ms: 60_000 }] } }, "hard");
    expect(f.data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "wait" }, message: expect.stringMatching(/hard timeout/) });
    expect(f.data.screenshots).toEqual([`${id}/1/002-failed.png`]);
    expect((await png(`${id}/1/002-failed.png`)).size).toBeGreaterThan(1000);
    expect(workerLogs(f.data.logs)).toContain(`at the failure the page was at ${pages.url("/form")} (title "Troupe test form")`);
  }, 90_000);

  it("with TROUPE_FAILURE_SCREENSHOTS=off: no screenshot, the URL and title still logged", async () => {
    const { f } = await failed(off, { scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "assert", title: "Another title", timeout: 2000 }] } }, "off");
    expect(f.data.error).toMatchObject({ code: "assertion", retryable: false, step: { index: 1, type: "assert" } });
    expect(f.data.screenshots).toBeUndefined();
    expect(workerLogs(f.data.logs)).toContain(`at the failure the page was at ${pages.url("/form")} (title "Troupe test form")`);
    expect(workerLogs(f.data.logs).filter((m) => /failure screenshot/.test(m))).toEqual([]);
  }, 90_000);

  it("a cancel takes no screenshot: the context closes at once", async () => {
    const id = jobId("cancel");
    const body: Command<"worker.assign"> = { jobId: id, attempt: 1, epoch: 1, spec: { priority: 5, maxAttempts: 1, timeoutMs: 60_000, scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "wait", ms: 60_000 }] } } };
    expect((await master.request(`troupe.worker.${on.config.workerId}.assign`, JSON.stringify(body), { timeout: 5000 })).json<AssignReply>()).toEqual({ accepted: true });
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 1, 30_000);
    expect((await master.request(`troupe.worker.${on.config.workerId}.cancel`, JSON.stringify({ jobId: id, attempt: 1, reason: "test" }), { timeout: 5000 })).json()).toEqual({ ok: true });
    const f = await events.final(id);
    if (f.type !== "job.failed") throw new Error("completed");
    expect(f.data.error.code).toBe("cancelled");
    expect(f.data.screenshots).toBeUndefined();
    expect(workerLogs(f.data.logs).filter((m) => /^at the failure|failure screenshot/.test(m))).toEqual([]);
  }, 60_000);
});

describe("a page that answers nothing (its script spins for ever)", () => {
  it("a failed step and the hard timeout are reported with their own error once the shot is given up, its reason in the logs", async () => {
    // The step's own failure: no check answered within its 300 ms and the 900 ms grace.
    const step = await failed(real, { scenario: { steps: [{ type: "navigate", url: pages.url("/spin") }, { type: "assert", title: "Another title", timeout: 300 }] } }, "spin-step");
    expect(step.f.data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "assert" }, message: expect.stringMatching(/the page answered no check/) });
    // The hard timeout while the page spins.
    const hard = await failed(real, { timeoutMs: 6000, scenario: { steps: [{ type: "navigate", url: pages.url("/spin") }, { type: "wait", ms: 60_000 }] } }, "spin-hard");
    expect(hard.f.data.error).toMatchObject({ code: "timeout", retryable: true, step: { index: 1, type: "wait" }, message: expect.stringMatching(/hard timeout/) });
    const started = await events.wait("job.started", (e) => e.data.jobId === hard.id);
    // Bounded: 6 s, the shot's 3 s, the context's close (up to 1.5 s), and room for a loaded machine; far from the 60 s wait.
    expect(Date.parse(hard.f.time) - Date.parse(started.time)).toBeLessThan(6000 + 3000 + 1500 + 15_000);
    for (const { f } of [step, hard]) {
      expect(f.data.screenshots).toBeUndefined();
      const logs = workerLogs(f.data.logs);
      expect(logs).toContain("failure screenshot given up: the page did not answer within 3000 ms");
      expect(logs).toContain(`at the failure the page was at ${pages.url("/spin")} (title unread: the page did not answer within 3000 ms)`);
    }
    await expect.poll(() => real.pool.openContexts + real.running.size, { timeout: 15_000 }).toBe(0);
  }, 120_000);

  it("under a short job lease the page gets a sixth of it (no progress goes out meanwhile: 3 s would be the whole lease)", async () => {
    const { f } = await failed(real, { scenario: { steps: [{ type: "navigate", url: pages.url("/spin") }, { type: "assert", title: "Another title", timeout: 300 }] } }, "spin-lease", 3000);
    expect(f.data.error).toMatchObject({ code: "timeout", step: { index: 1, type: "assert" } });
    expect(workerLogs(f.data.logs)).toContain("failure screenshot given up: the page did not answer within 500 ms");
    await expect.poll(() => real.pool.openContexts + real.running.size, { timeout: 15_000 }).toBe(0);
  }, 60_000);

  it("keeps the lease while the page is read: a progress goes out as the read begins (none did, and the reads could pass a short lease)", async () => {
    // The default cadence (5 s): the failing step's own progress goes out as it starts, none while it runs (300 ms)
    // or while the spinning page is read (3 s, given up). Only the read's own renewal comes in that window.
    const { id, f } = await failed(real, { scenario: { steps: [{ type: "navigate", url: pages.url("/spin") }, { type: "assert", title: "Another title", timeout: 300 }] } }, "spin-renew");
    expect(f.data.error).toMatchObject({ code: "timeout", step: { index: 1 } });
    // Logged once the title's read gave up: FAILURE_PAGE_MS after the read began.
    const urlLine = f.data.logs?.find((l) => l.source === "worker" && l.message.startsWith("at the failure the page was at"));
    expect(urlLine?.message).toMatch(/title unread: the page did not answer within 3000 ms/);
    const readBegan = Date.parse(urlLine!.time) - 3000;
    const progress = events.of("job.progress", (e) => e.data.jobId === id).map((e) => Date.parse(e.time));
    expect(progress.some((t) => t >= readBegan - 100), `a progress within 100 ms of the read's start (${readBegan}): ${progress.join(", ")}`).toBe(true);
  }, 60_000);
});

describe("a failure screenshot the store refuses", () => {
  it("leaves the failure as it was (not a storage error), and says why in the logs", async () => {
    const jsm = await jetstreamManager(master);
    await jsm.streams.delete("OBJ_troupe-artifacts");
    try {
      const { id, f } = await failed(on, { scenario: { steps: [{ type: "navigate", url: pages.url("/form") }, { type: "assert", title: "Another title", timeout: 2000 }] } }, "no-store");
      expect(f.data.error).toMatchObject({ code: "assertion", retryable: false, step: { index: 1, type: "assert" } });
      expect(f.data.screenshots).toBeUndefined();
      expect(workerLogs(f.data.logs)).toContainEqual(expect.stringMatching(new RegExp(
        `^failure screenshot not stored: screenshot ${escape(`${id}/1/002-failed.png`)} not stored in object store troupe-artifacts \\(\`troupe init\` creates it\\)`)));
    } finally {
      await nats.init();
    }
  }, 90_000);
});
