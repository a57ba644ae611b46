import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FakeWorker } from "./fake-worker.ts";
import { fakeWorker, fastEnv, foldJobs, readLog, spawnChild, submit, type Child } from "./helpers.ts";

/**
 * A master whose clock is not the NATS server's. Heartbeats and progress are stamped with the server's time;
 * judged against a master clock 20 s ahead, every healthy worker was lost at once and every running job's
 * lease lapsed (an attack run: jobs ran three times and ended dead). The master judges on the server's clock.
 */

const SKEW = fileURLToPath(new URL("./fixtures/skew-clock.mjs", import.meta.url));
const STEP = fileURLToPath(new URL("./fixtures/skew-step.mjs", import.meta.url));
let nats: TestNats;
let ui: NatsConnection;
let worker: FakeWorker;
let master: Child | undefined;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  ui = await nats.connect("ui");
  worker = await fakeWorker(nats, { id: "w-skew", slots: 1, behaviour: () => ({ kind: "hang" }), progressEveryMs: 100, heartbeatMs: 200 });
});

afterAll(async () => {
  await master?.stop();
  await worker?.stop({ deregister: true });
  await nats?.stop();
});

/**
 * The master expects heartbeats every second (lost after 3 s of silence; the worker sends every 200 ms): far
 * below the 20 s skew, and above a loaded machine's stalls (at 200 ms, a 700 ms stall of this test process,
 * where the fake worker lives, was a lost worker on a loaded CI run).
 */
const HEARTBEAT_MS = "1000";
/** The job lease, renewed by the fake worker's progress (every 100 ms) from this process: 5 s for the same reason. */
const LEASE_MS = 5000;
/** The last stored sequence: each case judges only the events after its start (an earlier case's stay in the log). */
const lastSeq = async () => (await readLog(ui)).at(-1)?.seq ?? 0;

describe("a master whose clock is not the NATS server's", () => {
  it.each([20_000, -20_000])("keeps a heartbeating worker and a job whose progress renews its lease, its clock %i ms off (lost after 3 s, lease 5 s)", async (skewMs) => {
    await master?.stop();
    const from = await lastSeq();
    master = spawnChild(["--import", SKEW, "bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv(`m-skew${skewMs > 0 ? "-ahead" : "-behind"}`), TROUPE_HEARTBEAT_MS: HEARTBEAT_MS, TROUPE_JOB_LEASE_MS: String(LEASE_MS), SKEW_MS: String(skewMs), SKEW_MONO: "1", TROUPE_LOG_LEVEL: "info" });
    // A standby only takes over once the lease of the one before lapses (it stopped and gave it back: at once).
    await waitFor("the master leading", () => master!.output().includes("became leader"), 30_000, 50);
    const r = await submit(ui, { url: `https://example.com/skewed${skewMs}` });
    if (!r.ok) throw new Error(r.error.message);
    const status = async () => foldJobs(await readLog(ui)).jobs.get(r.jobId)?.status;
    await waitFor("the job running", async () => (await status()) === "running", 30_000, 100).catch(async (e: Error) => Promise.reject(new Error(`${e.message}\n${master?.output().slice(-2000)}\n${JSON.stringify((await readLog(ui)).map((l) => l.event.type + " " + l.event.time))}`)));
    const startedAt = Date.now();
    // Progress stored for two leases after it started, read from the log (not the clock).
    await waitFor("progress spanning two leases", async () => {
      const last = (await readLog(ui)).filter((l) => l.event.type === "job.progress" && l.event.data.jobId === r.jobId).at(-1);
      return last !== undefined && Date.parse(last.event.time) - startedAt > 2 * LEASE_MS;
    }, 30_000, 200);
    await worker.complete(r.jobId);
    await waitFor("completed", async () => (await status()) === "completed", 20_000, 100);
    const log = (await readLog(ui)).filter((l) => l.seq > from);
    const story = JSON.stringify(log.filter((l) => l.event.type !== "job.progress").map((l) => `${l.seq} ${l.event.type}`));
    expect(log.filter((l) => (l.event.type === "worker.lost" || l.event.type === "job.requeued") && (l.event.type === "worker.lost" || l.event.data.jobId === r.jobId)), story).toEqual([]);
    // Its own events are dated on the server's clock, not its own 20 s off (the log's times agree with its stamps).
    const own = log.filter((l) => l.event.source === `m-skew${skewMs > 0 ? "-ahead" : "-behind"}` && (l.event.type === "job.submitted" || l.event.type === "job.assigned") && l.event.data.jobId === r.jobId);
    expect(own.map((l) => l.event.type)).toEqual(["job.submitted", "job.assigned"]);
    for (const l of own) expect(Math.abs(Date.parse(l.event.time) - l.storedMs), l.event.type).toBeLessThan(5000); // ≪ the 20 s skew, above a loaded machine's stalls
  }, 90_000);

  it("keeps them when its wall clock steps 20 s ahead while it runs (an NTP step, a VM resume)", async () => {
    await master?.stop();
    const from = await lastSeq();
    const startedAt = Date.now();
    master = spawnChild(["--import", STEP, "bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv("m-step"), TROUPE_HEARTBEAT_MS: HEARTBEAT_MS, TROUPE_JOB_LEASE_MS: String(LEASE_MS), STEP_MS: "20000", STEP_AFTER_MS: "5000", TROUPE_LOG_LEVEL: "info" });
    await waitFor("the master leading", () => master!.output().includes("became leader"), 30_000, 50);
    const r = await submit(ui, { url: "https://example.com/stepped" });
    if (!r.ok) throw new Error(r.error.message);
    const status = async () => foldJobs(await readLog(ui)).jobs.get(r.jobId)?.status;
    await waitFor("the job running", async () => (await status()) === "running", 30_000, 100);
    // Progress stored for two leases past the step (5 s after the master started), read from the log.
    await waitFor("progress two leases past the step", async () => {
      const last = (await readLog(ui)).filter((l) => l.event.type === "job.progress" && l.event.data.jobId === r.jobId).at(-1);
      return last !== undefined && Date.parse(last.event.time) - startedAt > 5000 + 2 * LEASE_MS;
    }, 30_000, 200);
    await worker.complete(r.jobId);
    await waitFor("completed", async () => (await status()) === "completed", 20_000, 100);
    const log = (await readLog(ui)).filter((l) => l.seq > from);
    const story = JSON.stringify(log.filter((l) => l.event.type !== "job.progress").map((l) => `${l.seq} ${l.event.type}`));
    expect(log.filter((l) => l.event.type === "worker.lost" || (l.event.type === "job.requeued" && l.event.data.jobId === r.jobId)), story).toEqual([]);
    expect(master.output()).not.toMatch(/lost leadership/);
  }, 90_000);
});
