import { headers, type NatsConnection } from "@nats-io/nats-core";
import { ASSIGNED_AGE_HEADER, JOB_LEASE_HEADER, type Command } from "@troupe/events";
import { startLatencyProxy, startTestNats, waitFor, type LatencyProxy, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectAs, createLogger } from "@troupe/events/node";
import { startMaster, type RunningMaster } from "../../master/src/main.ts";
import { lookupJob } from "../../master/src/state.ts";
import { command, FAST, jobIdOf, masterIn, submit } from "../../master/test/helpers.ts";
import type { Worker } from "../src/worker.ts";
import { EventLog, jobId, startPages, startTestWorker, type TestPages } from "./helpers.ts";

// A worker reaches NATS through a proxy that can freeze the link without closing it (a cut route, a paused peer).
let nats: TestNats;
let pages: TestPages;
let events: EventLog;
let proxy: LatencyProxy;
let cut: Worker;
let ui: NatsConnection;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [nats, pages] = await Promise.all([startTestNats({ init: true }), startPages()]);
  events = await EventLog.start(nats);
  proxy = await startLatencyProxy(nats.url);
  // The master's job lease below is 3 s: the worker is told the same, as docs/worker.md asks.
  cut = await startTestWorker(nats, { NATS_URL: proxy.url, TROUPE_WORKER_NAME: "Worker Node Cut", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_JOB_LEASE_MS: "3000", TROUPE_ATTEMPT_CHECK_MS: "30000" });
  ui = await nats.connect("ui");
});
afterAll(async () => {
  proxy?.thaw();
  for (const stop of stops.reverse()) await stop();
  await cut?.stop("test over");
  await Promise.all([proxy?.close(), nats?.stop(), pages?.close()]);
});

const hits = (path: string) => pages.urls.filter((u) => u === path).length;
const scenario = (tag: string) => ({ steps: [
  { type: "navigate", url: pages.url(`/fence-a?t=${tag}`) },
  { type: "wait", ms: 3000 },
  { type: "navigate", url: pages.url(`/fence-b?t=${tag}`) },
] });

/**
 * Cuts `link` the moment its worker sends step 1's progress of a `scenario()` (held back until the thaw): the cut falls
 * at the start of the wait, whatever the machine's load. A freeze after the test had read that progress could come too
 * late for the fence's window before step 3, or during a hold before step 2 (a late acknowledgement), which asked the
 * master on through the cut and never held again (a loaded CI run).
 */
const cutAtStep2 = (link: LatencyProxy) => link.freezeWhenClientSends('"stepsDone":1,"stepsTotal":3');

/** A master that leads and knows the cut-off worker; `via`: its own link to NATS (a latency proxy's URL). */
async function leading(id: string, over: Parameters<typeof masterIn>[2] = {}, via?: string): Promise<RunningMaster> {
  let m: RunningMaster;
  if (via) {
    const nc = await connectAs({ url: via, role: "master", dataDir: nats.dataDir, name: id, env: {} });
    stops.push(() => nc.close());
    m = await startMaster(nc, { ...FAST, id, ...over }, createLogger("master", process.env.TROUPE_LOG_LEVEL ?? "silent").child({ master: id }));
  } else m = await masterIn(nats, id, over);
  stops.push(() => m.stop());
  // A master before it, stopped behind a slowed link, may not have handed its lease over: up to its 20 s lapse.
  await waitFor(`${id} to lead`, () => m.master.isLeader, 40_000);
  await waitFor(`${id} to know the cut-off worker`, () => m.master.state.workers.get("wn-cut")?.lifecycle === "online", 20_000);
  return m;
}

describe("a worker cut off from NATS", () => {
  it("holds its attempt before the next step, and stops it on the master's cancel once the link is back: the page after the cut is visited once, by the new attempt", async () => {
    const master = await leading("m-fence");
    const held = cut.holds;
    cutAtStep2(proxy);
    const id = jobIdOf(await submit(ui, { scenario: scenario("cut"), maxAttempts: 3 }));
    /** What happened to the job, for a failure's message: its events, and what the master and the cut-off worker hold. */
    const story = () => `events: ${events.events.filter((e) => "jobId" in e.data && e.data.jobId === id).map((e) => `${e.type}#${"attempt" in e.data ? e.data.attempt : "-"}@${e.time.slice(11, 23)}${"workerId" in e.data ? ` ${e.data.workerId}` : ""}`).join(", ")}; master: ${JSON.stringify(lookupJob(master.master.state, id) ?? null)?.slice(0, 400)}; cut worker runs it: ${cut.running.has(id)}, holds ${cut.holds}`;
    try {
      await waitFor("the cut-off worker to hold the attempt", () => cut.holds > held, 20_000);
      // The master takes the worker for lost and gives the job to another, which runs it to the end.
      const spare = await startTestWorker(nats, { TROUPE_WORKER_NAME: "Worker Node Spare", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_JOB_LEASE_MS: "3000" });
      stops.push(() => spare.stop("test over"));
      const done = await events.wait("job.completed", (e) => e.data.jobId === id, 30_000);
      expect([done.data.workerId, done.data.attempt]).toEqual(["wn-spare", 2]);
      expect(hits("/fence-b?t=cut")).toBe(1);
      expect(cut.running.has(id)).toBe(true);

      const thawedAt = new Date().toISOString().slice(11, 23);
      proxy.thaw();
      const stopped = await events.wait("job.failed", (e) => e.data.jobId === id && e.data.attempt === 1, 30_000).catch((e: Error) => {
        throw new Error(`${e.message} (thawed at ${thawedAt}; ${story()})`);
      });
      expect(stopped.data.error.code).toBe("cancelled");
      await waitFor("the held attempt to end", () => !cut.running.has(id));
      expect(hits("/fence-b?t=cut")).toBe(1);
      expect(hits("/fence-a?t=cut")).toBe(2);
      await spare.stop("test over");
    } finally {
      // Even when a step above fails: left leading, it made the next test wait 20 s to lead, and fail.
      proxy.thaw();
      await master.stop();
    }
  }, 90_000);

  it("asks the leader before it goes on: a master folding heartbeats slower than the old fixed 2 s wait still stops the attempt before its next step", async () => {
    // The master hears everything 2.5 s late once the cut-off worker's link is back: its cancel, which that worker's
    // heartbeat brings, came after the worker had gone on (the page after the cut was visited twice; a loaded CI run).
    const slowLink = await startLatencyProxy(nats.url);
    const master = await leading("m-fence-slow", { leaderLeaseMs: 20_000 }, slowLink.url);
    const before = { ...cut.checks };
    const held = cut.holds;
    cutAtStep2(proxy);
    const id = jobIdOf(await submit(ui, { scenario: scenario("slow"), maxAttempts: 3 }));
    let relief: Worker | undefined;
    try {
      await waitFor("the cut-off worker to hold the attempt", () => cut.holds > held, 20_000);
      relief = await startTestWorker(nats, { TROUPE_WORKER_NAME: "Worker Node Relief", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_JOB_LEASE_MS: "3000" });
      const done = await events.wait("job.completed", (e) => e.data.jobId === id, 30_000);
      expect(done.data.attempt).toBe(2);
      expect(done.data.workerId).not.toBe("wn-cut");
      expect(hits("/fence-b?t=slow")).toBe(1);

      slowLink.delayMs = 2500;
      proxy.thaw();
      const stopped = await events.wait("job.failed", (e) => e.data.jobId === id && e.data.attempt === 1, 30_000);
      expect(stopped.data.error.code).toBe("cancelled");
      // Stopped by the leader's answer, or by the cancel its (late) fold of the worker's heartbeat sends, which may
      // come first while the answer waits for a read of the stream: never gone on (without the check it did).
      expect(stopped.data.error.message).toMatch(/no longer this worker's|must not run on/);
      expect([cut.checks.confirmed, cut.checks.unanswered]).toEqual([before.confirmed, before.unanswered]);
      await waitFor("the held attempt to end", () => !cut.running.has(id));
      expect(hits("/fence-b?t=slow")).toBe(1);
      expect(hits("/fence-a?t=slow")).toBe(2);
    } finally {
      proxy.thaw();
      slowLink.delayMs = 0;
      await relief?.stop("test over");
      await master.stop();
      await slowLink.close();
    }
  }, 90_000);

  it("holds before the next step when the silence ended during the step before (a paused process resumed mid-step): a slow master's cancel came after that step had run", async () => {
    // Found by a soak (2026-12-01): the fence asked only whether the link was silent now, and a heartbeat stored after
    // the pause wiped out the silence in which the master had given the attempt away (the page after it visited twice).
    const slowLink = await startLatencyProxy(nats.url);
    const master = await leading("m-fence-mid", { leaderLeaseMs: 20_000 }, slowLink.url);
    const before = { ...cut.checks };
    const WAIT = 12_000;
    const id = jobIdOf(await submit(ui, { maxAttempts: 3, scenario: { steps: [
      { type: "navigate", url: pages.url("/fence-a?t=mid") },
      { type: "wait", ms: WAIT },
      { type: "navigate", url: pages.url("/fence-b?t=mid") },
    ] } }));
    try {
      const waiting = await events.wait("job.progress", (e) => e.data.jobId === id && e.data.attempt === 1 && e.data.stepsDone === 1);
      const held = cut.holds;
      proxy.freeze();
      // Taken for lost, the job requeued; no other worker runs (nor is it offered to one still listing it).
      await events.wait("job.requeued", (e) => e.data.jobId === id && e.data.attempt === 2, 15_000);
      // The link comes back 3 s before the wait ends, to a master that hears everything 6 s late from then on: the
      // cancel its fold of the worker's heartbeat sends comes after the next step began, unless the worker holds.
      const backAt = Date.parse(waiting.time) + WAIT - 3000;
      expect(Date.now(), "requeued too late to bring the link back during the wait").toBeLessThan(backAt - 500);
      await new Promise((r) => setTimeout(r, backAt - Date.now()));
      slowLink.delayMs = 6000;
      proxy.thaw();
      const stopped = await events.wait("job.failed", (e) => e.data.jobId === id && e.data.attempt === 1, 40_000).catch((e: Error) => {
        throw new Error(`${e.message}: attempt 1 was not stopped (held ${cut.holds - held} times; the page after the wait visited ${hits("/fence-b?t=mid")} times; ${events.of("job.completed", (c) => c.data.jobId === id).map((c) => `completed by attempt ${c.data.attempt}`).join(", ") || "no completion"})`);
      });
      expect(stopped.data.error.code).toBe("cancelled");
      expect(cut.holds).toBe(held + 1);
      expect([cut.checks.confirmed, cut.checks.unanswered]).toEqual([before.confirmed, before.unanswered]);
      // Attempt 2 (its own 12 s wait first) cannot have reached it yet: only attempt 1 could have.
      expect(hits("/fence-b?t=mid")).toBe(0);
    } finally {
      proxy.thaw();
      slowLink.delayMs = 0;
      // Attempt 2 may run on the cut-off worker now: cancelled, so that the next tests find it free.
      await command(ui, "jobs.cancel", { jobId: id }).catch(() => undefined);
      await waitFor("the job to run nowhere", () => !cut.running.has(id), 30_000).catch(() => undefined);
      await master.stop();
      await slowLink.close();
    }
  }, 120_000);

  it("holds, then goes on when the link comes back before the master took anything: the attempt completes, none is spent", async () => {
    // The master waits far longer than the cut: it never takes the worker for lost, nor the job's lease for lapsed.
    await leading("m-fence-patient", { heartbeatIntervalMs: 20_000, leaseMs: 60_000 });
    const before = cut.holds;
    cutAtStep2(proxy);
    const id = jobIdOf(await submit(ui, { scenario: scenario("blip"), maxAttempts: 3 }));
    await waitFor("the cut-off worker to hold the attempt", () => cut.holds > before, 20_000);
    expect(hits("/fence-b?t=blip")).toBe(0);
    proxy.thaw();
    const done = await events.wait("job.completed", (e) => e.data.jobId === id, 30_000);
    expect([done.data.workerId, done.data.attempt]).toEqual(["wn-cut", 1]);
    expect(hits("/fence-b?t=blip")).toBe(1);
    expect(events.of("job.requeued", (e) => e.data.jobId === id)).toEqual([]);
  }, 90_000);

  it("after a hold it renews the job's lease before it asks the master and goes on: the progress ticks sent while cut off were lost", async () => {
    // A patient master of its own (the ones before stand down): nothing is taken from the worker while it is cut off.
    for (const stop of stops.splice(0).reverse()) await stop();
    await leading("m-fence-renew", { heartbeatIntervalMs: 20_000, leaseMs: 60_000 });
    // Ticks far apart: the only progress of step 3 is the renewal.
    const own = await startLatencyProxy(nats.url);
    const w = await startTestWorker(nats, { NATS_URL: own.url, TROUPE_WORKER_NAME: "Worker Node Renew", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_LABELS: "renew", TROUPE_ATTEMPT_CHECK_MS: "30000" }, [], { progressEveryMs: 600_000 });
    try {
      const held = w.holds;
      cutAtStep2(own);
      const id = jobIdOf(await submit(ui, { scenario: scenario("renew"), maxAttempts: 3, workerLabels: ["renew"] }));
      await waitFor("the cut-off worker to hold the attempt", () => w.holds > held, 20_000);
      own.thaw();
      const done = await events.wait("job.completed", (e) => e.data.jobId === id, 30_000);
      expect([done.data.workerId, done.data.attempt]).toEqual(["wn-renew", 1]);
      expect(w.checks.confirmed).toBe(1);
      // Step 2's own progress, and the renewal (ticks are 10 min apart); published before the completion by the same
      // connection: received before it. (Told apart by their times, they raced the thaw: the step's, sent as the
      // hold began, could be dated after the test's clock read at the thaw.)
      const afterStep2 = events.of("job.progress", (e) => e.data.jobId === id && e.data.stepsDone === 2);
      expect(afterStep2.map((e) => e.time), "step 2's progress and the renewal").toHaveLength(2);
    } finally {
      own.thaw();
      await w.stop("test over");
      await own.close();
    }
  }, 90_000);

  it.each([
    { window: 30_000, why: "it waited out the check's 30 s window on the cut link, then went on" },
    { window: 1000, why: "a check window shorter than the fence's (1.25 s here) ran out first, and it went on (a review)" },
  ])("holds again when the link goes silent while it asks the master (the question or its answer lost), check window $window ms: $why", async ({ window }) => {
    for (const stop of stops.splice(0).reverse()) await stop();
    await leading("m-fence-recut", { heartbeatIntervalMs: 20_000, leaseMs: 60_000 });
    const own = await startLatencyProxy(nats.url);
    const label = `recut-${window}`;
    const w = await startTestWorker(nats, { NATS_URL: own.url, TROUPE_WORKER_NAME: `Worker Node Recut ${window}`, TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_WORKER_LABELS: label, TROUPE_ATTEMPT_CHECK_MS: String(window) });
    try {
      const held = w.holds;
      cutAtStep2(own);
      const id = jobIdOf(await submit(ui, { scenario: scenario(label), maxAttempts: 3, workerLabels: [label] }));
      await waitFor("the cut-off worker to hold the attempt", () => w.holds > held, 20_000);
      // Back, and cut again the moment it asks (thaw() forgets a freeze trigger: set after it).
      own.thaw();
      own.freezeWhenClientSends("attempts.check");
      await waitFor("the link to be cut again as the worker asks", () => own.frozen, 20_000);
      await waitFor("the attempt to be held again", () => w.holds > held + 1, 15_000);
      expect(hits(`/fence-b?t=${label}`)).toBe(0);
      own.thaw();
      const done = await events.wait("job.completed", (e) => e.data.jobId === id, 30_000);
      expect([done.data.workerId, done.data.attempt]).toEqual([`wn-recut-${window}`, 1]);
      expect(hits(`/fence-b?t=${label}`)).toBe(1);
      // Went on once the link was back: confirmed by the master (a loaded machine's slow answer may outlast 1 s).
      expect(w.checks.stopped).toBe(0);
      if (window === 30_000) expect(w.checks).toMatchObject({ confirmed: 1, unanswered: 0 });
    } finally {
      own.thaw();
      await w.stop("test over");
      await own.close();
    }
  }, 90_000);

  it("and replaced meanwhile by a process with its worker id notices once its heartbeats are stored again, and stops as superseded (no reconnect told it; it ran on beside the new one)", async () => {
    const env = { NATS_URL: proxy.url, TROUPE_WORKER_NAME: "Worker Node Cut Twin", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_JOB_LEASE_MS: "3000" };
    const old = await startTestWorker(nats, env);
    let twin: Worker | undefined;
    try {
      await events.wait("worker.heartbeat", (e) => e.data.instanceId === old.instanceId);
      proxy.freeze();
      // It cannot answer the new process's presence check, which therefore starts.
      twin = await startTestWorker(nats, { ...env, NATS_URL: nats.url });
      // A silence longer than a heartbeat and the fence's window: what a paused process's heartbeats show.
      await waitFor("a long enough silence", () => old.fence.silentMs() > 500 + old.fence.doubtAfterMs + 250, 15_000);
      const superseded = old.superseded();
      proxy.thaw();
      await expect(superseded).resolves.toMatchObject({ workerId: "wn-cut-twin", instanceId: twin.instanceId });
    } finally {
      proxy.thaw();
      await old.abandon();
      await twin?.stop("test over");
    }
  }, 30_000);
});

describe("a worker left at the default 30 s lease under a master with a 3 s one", () => {
  it("holds when cut off for 5/6 of the master's lease (its assignment names it), not of its own 30 s", async () => {
    // The masters of the tests before stand down: this one must lead.
    for (const stop of stops.splice(0).reverse()) await stop();
    const master = await leading("m-fence-short", { leaseMs: 3000 });
    const own = await startLatencyProxy(nats.url);
    // Heartbeats every 20 s: the fence's window is the lease's (2.5 s), not three heartbeats'.
    const w = await startTestWorker(nats, { NATS_URL: own.url, TROUPE_WORKER_NAME: "Worker Node Default Lease", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_HEARTBEAT_MS: "20000", TROUPE_WORKER_LABELS: "default-lease" });
    try {
      expect(w.config.jobLeaseMs).toBe(30_000);
      const held = w.holds;
      cutAtStep2(own);
      jobIdOf(await submit(ui, { workerLabels: ["default-lease"], maxAttempts: 3, scenario: { steps: [
        { type: "navigate", url: pages.url("/fence-a?t=default-lease") },
        { type: "wait", ms: 6000 },
        { type: "navigate", url: pages.url("/fence-b?t=default-lease") },
      ] } }));
      // Its own lease would hold only after 25 s of silence: the 6 s wait would end first and step 3 would run.
      await waitFor("the cut-off worker to hold the attempt", () => w.holds > held, 20_000);
      expect(hits("/fence-b?t=default-lease")).toBe(0);
    } finally {
      own.thaw();
      await w.stop("test over");
      await own.close();
      await master.stop();
    }
  }, 90_000);
});

describe("an attempt whose own progress NATS has not acknowledged", () => {
  it("holds before the next step after 5/6 of the master's lease without it, though a heartbeat was acknowledged since: a cut just after one let the next step run after the master gave the attempt away", async () => {
    // Found by a soak (2026-12-01, a 12 s lease): the fence counted silence from the last acknowledgement of anything,
    // and a heartbeat acknowledged up to a progress interval after the attempt's last progress put the worker's hold
    // after the master's lease lapse. A 9 s lease here leaves the cut a wide window (it must fall between 1.5 s and
    // 9 s after step 1's progress); heartbeats every 3 s keep the link's own window at the lease's 7.5 s.
    for (const stop of stops.splice(0).reverse()) await stop();
    const master = await leading("m-fence-lease", { leaseMs: 9000 });
    const own = await startLatencyProxy(nats.url);
    // No progress ticks between steps: step 1's end is the attempt's last renewal, as a cut leaves it.
    const w = await startTestWorker(nats, { NATS_URL: own.url, TROUPE_WORKER_NAME: "Worker Node Lease Fence", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_HEARTBEAT_MS: "3000", TROUPE_WORKER_LABELS: "lease-fence" }, [], { progressEveryMs: 600_000 });
    const id = jobIdOf(await submit(ui, { workerLabels: ["lease-fence"], maxAttempts: 3, scenario: { steps: [
      { type: "navigate", url: pages.url("/fence-a?t=lease") },
      { type: "wait", ms: 10_000 },
      { type: "navigate", url: pages.url("/fence-b?t=lease") },
    ] } }));
    try {
      const step1 = await events.wait("job.progress", (e) => e.data.jobId === id && e.data.attempt === 1 && e.data.stepsDone === 1);
      const [held, heldForLease] = [w.holds, w.holdsForLease];
      // Right after a heartbeat's acknowledgement, 4 s or more after step 1's progress: at step 3 (10 s after it) the
      // link has then been silent for about 6 s, under its 7.5 s window (and held by that rule only if step 3 came late).
      const p = Date.parse(step1.time);
      await waitFor("a heartbeat acknowledged 4 s or more after step 1's progress", () => Date.now() >= p + 4000 && w.fence.silentMs() < 200, 15_000);
      const cutAt = Date.now();
      own.freeze();
      const requeued = await events.wait("job.requeued", (e) => e.data.jobId === id && e.data.attempt === 2, 20_000);
      expect(Date.parse(requeued.time), "the cut came after the master gave the attempt away: its cancel, not the fence, stopped it").toBeGreaterThan(cutAt);
      await waitFor("the attempt to be held before step 3", () => w.holds > held, 15_000).catch((e: Error) => {
        throw new Error(`${e.message}: the page after the wait visited ${hits("/fence-b?t=lease")} times`);
      });
      expect(hits("/fence-b?t=lease")).toBe(0);
      expect(w.holdsForLease, "held for the attempt's own lease, not for the link's silence").toBe(heldForLease + 1);
      own.thaw();
      const stopped = await events.wait("job.failed", (e) => e.data.jobId === id && e.data.attempt === 1, 30_000);
      expect(stopped.data.error.code).toBe("cancelled");
      expect(hits("/fence-b?t=lease")).toBe(0);
    } finally {
      own.thaw();
      await command(ui, "jobs.cancel", { jobId: id }).catch(() => undefined);
      await w.stop("test over");
      await own.close();
      await master.stop();
    }
  }, 90_000);
});

describe("an attempt the master's log stored a while before the worker heard of it", () => {
  it("counts the attempt's lease from the stored assignment (the age the master names), not from when it heard of it: cut as it reports its start, it holds before step 1", async () => {
    // Heartbeats far apart: the link's window is the lease's 2.5 s, which a cut of a context's creation does not reach.
    const own = await startLatencyProxy(nats.url);
    const w = await startTestWorker(nats, { NATS_URL: own.url, TROUPE_WORKER_NAME: "Worker Node Aged", TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_HEARTBEAT_MS: "20000" }, [], { progressEveryMs: 600_000 });
    const m = await nats.connect("master");
    const id = jobId("aged");
    try {
      const [held, heldForLease] = [w.holds, w.holdsForLease];
      // Nothing of the attempt is stored from its start on: the master's lease, 3 s from the stored assignment 2.49 s
      // before the question, is about to lapse.
      own.freezeWhenClientSends(`job.${id}.started`);
      const h = headers();
      h.set(JOB_LEASE_HEADER, "3000");
      h.set(ASSIGNED_AGE_HEADER, "2490");
      const body: Command<"worker.assign"> = { jobId: id, attempt: 1, epoch: 1, spec: { priority: 5, maxAttempts: 1, timeoutMs: 60_000, scenario: { steps: [{ type: "navigate", url: pages.url("/fence-a?t=aged") }] } } };
      // Its acceptance may leave in the same write as the start, which the cut holds back: not waited for.
      void m.request(`troupe.worker.${w.config.workerId}.assign`, JSON.stringify(body), { timeout: 20_000, headers: h }).catch(() => undefined);
      await waitFor("the worker to run the attempt", () => w.running.has(id), 10_000);
      await waitFor("the attempt to be held before step 1", () => w.holds > held, 15_000).catch((e: Error) => {
        throw new Error(`${e.message}: its page visited ${hits("/fence-a?t=aged")} times`);
      });
      expect(w.holdsForLease, "held for the attempt's own lease").toBe(heldForLease + 1);
      expect(hits("/fence-a?t=aged")).toBe(0);
    } finally {
      own.thaw();
      await m.close();
      await w.stop("test over");
      await own.close();
    }
  }, 60_000);
});
