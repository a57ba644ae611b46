import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/nats-core";
import { descendants, startLatencyProxy, startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { connectAs, createLogger } from "@troupe/events/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMaster, type RunningMaster } from "../../master/src/main.ts";
import { FAST, jobIdOf, masterIn, submit } from "../../master/test/helpers.ts";
import type { Worker } from "../src/worker.ts";
import { EventLog, startPages, startTestWorker, type TestPages } from "./helpers.ts";

// Found by a soak (2026-12-01): a worker paused (SIGSTOP) past the job lease went on with its attempt after the master
// had given it to another worker, without holding: the page after the pause was visited by both attempts (soak:
// s00084, s00098). The fence (link-fence.ts) remembered only the latest proof that the link works, and asked "silent
// for too long?" at each step boundary: any proof after the pause and before the next step — a heartbeat acknowledged,
// a command that waited in the socket during the pause — wiped out the silence in which the master took the attempt.
// Then only the master's stale-attempt cancel, which that heartbeat brings, could stop the attempt, and a master
// folding heartbeats late sent it too late. Now each attempt keeps its longest silence (LinkFence.watch) and holds.
const TROUPE = fileURLToPath(new URL("../../../bin/troupe.mjs", import.meta.url));
let nats: TestNats;
let pages: TestPages;
let events: EventLog;
let ui: NatsConnection;
let master: RunningMaster;
let paused: ChildProcess;
let spare: Worker | undefined;
let stderr = "";

beforeAll(async () => {
  [nats, pages] = await Promise.all([startTestNats({ init: true }), startPages()]);
  events = await EventLog.start(nats);
  ui = await nats.connect("ui");
  // Lost after 3 × 500 ms of silence; a job lease of 3 s; an assignment unanswered for 1 s is taken back.
  master = await masterIn(nats, "m-pause", { heartbeatIntervalMs: 500, leaseMs: 3000, assignTimeoutMs: 1000 });
  await waitFor("m-pause to lead", () => master.master.isLeader, 20_000);
  // A real process, so that it can be paused as a whole (its socket fills while it is stopped).
  paused = spawn(process.execPath, [TROUPE, "worker"], {
    env: { ...process.env, ...nats.env(), TROUPE_WORKER_NAME: "Worker Node Paused", TROUPE_WORKER_PORT: "0", TROUPE_WORKER_HOST: "127.0.0.1",
      TROUPE_HEARTBEAT_MS: "500", TROUPE_JOB_LEASE_MS: "3000", TROUPE_MAX_JOBS: "2", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_MAX_CPU: "100",
      TROUPE_LOG_FORMAT: "json", TROUPE_FAILURE_SCREENSHOTS: "off" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  paused.stdout!.on("data", (d: Buffer) => (stderr += d.toString()));
  paused.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  await waitFor("the master to know the worker to be paused", () => master.master.state.workers.get("wn-paused")?.lifecycle === "online", 60_000);
}, 90_000);

afterAll(async () => {
  if (paused && paused.exitCode === null && paused.signalCode === null) {
    // A graceful stop closes its Chromium; a SIGKILL of the worker alone left the browser running.
    const tree = descendants(paused.pid as number);
    const exited = new Promise((r) => paused.once("exit", r));
    paused.kill("SIGCONT");
    paused.kill("SIGTERM");
    if ((await Promise.race([exited, new Promise((r) => setTimeout(() => r("late"), 20_000))])) === "late") {
      for (const pid of [paused.pid as number, ...tree]) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone already.
        }
      }
    }
  }
  await spare?.stop("test over");
  await master?.stop();
  await Promise.all([nats?.stop(), pages?.close()]);
});

const hits = (path: string) => pages.urls.filter((u) => u === path).length;

describe("a worker paused past its job lease", () => {
  it("holds the attempt when the pause ended during a step: the page after the pause is visited once, although a slow master cancels late", async () => {
    const slowLink = await startLatencyProxy(nats.url);
    const nc = await connectAs({ url: slowLink.url, role: "master", dataDir: nats.dataDir, name: "m-slow", env: {} });
    // The only leader for this test (the first one stops): a long leader lease, since its link is slowed below.
    await master.stop();
    master = await startMaster(nc, { ...FAST, id: "m-slow", heartbeatIntervalMs: 500, leaseMs: 3000, assignTimeoutMs: 1000, leaderLeaseMs: 20_000 }, createLogger("master", process.env.TROUPE_LOG_LEVEL ?? "silent").child({ master: "m-slow" }));
    await waitFor("m-slow to lead and know the worker", () => master.master.isLeader && master.master.state.workers.get("wn-paused")?.lifecycle === "online", 30_000);
    // A spare, drained until the pause, so that the job starts on the worker to be paused and moves to the spare at once.
    spare = await startTestWorker(nats, { TROUPE_WORKER_NAME: "Worker Node Spare", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_JOB_LEASE_MS: "3000" });
    await spare.drain("until the pause");
    await waitFor("m-slow to see the spare draining", () => master.master.state.workers.get("wn-spare")?.lifecycle === "draining", 20_000);
    const WAIT = 12_000;
    const id = jobIdOf(await submit(ui, { scenario: { steps: [
      { type: "navigate", url: pages.url("/mid-a") },
      { type: "wait", ms: WAIT },
      { type: "navigate", url: pages.url("/mid-b") },
    ] }, maxAttempts: 3 }));
    const from = stderr.length;
    try {
      await events.wait("job.progress", (e) => e.data.jobId === id && e.data.attempt === 1 && e.data.workerId === "wn-paused" && e.data.stepsDone === 1, 30_000);
      const waitFrom = Date.now();
      paused.kill("SIGSTOP");
      // Silent past the lease and three heartbeats: the master takes the worker for lost and gives the job to the spare.
      expect((await spare.resume()).ok).toBe(true);
      await events.wait("job.started", (e) => e.data.jobId === id && e.data.attempt === 2 && e.data.workerId === "wn-spare", 15_000);
      // Resumed 0.8 s before its wait ends, with a master that hears everything 2.5 s late from now on: the next step
      // comes long after the worker's first heartbeat is stored again, and before the master's cancel can arrive.
      const resumeAt = waitFrom + WAIT - 800;
      expect(Date.now()).toBeLessThan(resumeAt);
      await new Promise((r) => setTimeout(r, resumeAt - Date.now()));
      slowLink.delayMs = 2500;
      paused.kill("SIGCONT");
      await events.wait("job.completed", (e) => e.data.jobId === id && e.data.workerId === "wn-spare", 40_000);
      await events.wait("job.failed", (e) => e.data.jobId === id && e.data.workerId === "wn-paused", 30_000).catch(() =>
        events.wait("job.completed", (e) => e.data.jobId === id && e.data.workerId === "wn-paused", 1));
      const held = /holding it before step 3/.test(stderr.slice(from));
      expect({ pageAfterPauseVisits: hits("/mid-b"), held }).toEqual({ pageAfterPauseVisits: 1, held: true });
    } finally {
      paused.kill("SIGCONT");
      slowLink.delayMs = 0;
      await spare?.stop("test over");
      spare = undefined;
      await master.stop();
      await slowLink.close();
      master = await masterIn(nats, "m-pause-2", { heartbeatIntervalMs: 500, leaseMs: 3000, assignTimeoutMs: 1000 });
      await waitFor("the paused worker to be back", () => master.master.isLeader && master.master.state.workers.get("wn-paused")?.lifecycle === "online", 60_000);
    }
  }, 150_000);

  it("(control) holds the attempt after the pause when no command reached it during the pause", async () => {
    const id = jobIdOf(await submit(ui, { scenario: { steps: [
      { type: "navigate", url: pages.url("/quiet-a") },
      { type: "wait", ms: 3000 },
      { type: "navigate", url: pages.url("/quiet-b") },
    ] }, maxAttempts: 3 }));
    await events.wait("job.progress", (e) => e.data.jobId === id && e.data.attempt === 1 && e.data.workerId === "wn-paused" && e.data.stepsDone === 1, 30_000);
    const from = stderr.length;
    paused.kill("SIGSTOP");
    spare ??= await startTestWorker(nats, { TROUPE_WORKER_NAME: "Worker Node Spare", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_JOB_LEASE_MS: "3000" });
    const done = await events.wait("job.completed", (e) => e.data.jobId === id, 30_000);
    expect(done.data.workerId).toBe("wn-spare");
    paused.kill("SIGCONT");
    await events.wait("job.failed", (e) => e.data.jobId === id && e.data.workerId === "wn-paused", 30_000);
    expect({ pageAfterPauseVisits: hits("/quiet-b"), held: /holding it before step 3/.test(stderr.slice(from)) }).toEqual({ pageAfterPauseVisits: 1, held: true });
    await waitFor("the paused worker to be back", () => master.master.state.workers.get("wn-paused")?.lifecycle === "online", 30_000);
  }, 120_000);
});
