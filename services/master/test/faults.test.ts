import { createServer } from "node:net";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseLease } from "@troupe/events";
import type { RunningMaster } from "../src/main.ts";
import { FakeWorker } from "./fake-worker.ts";
import { fakeWorker, fastEnv, foldJobs, masterIn, readLog, spawnChild, spawnMaster, submit, type Child, type LoggedEvent, jobIdOf } from "./helpers.ts";
import { lookupJob } from "../src/state.ts";

let nats: TestNats;
let ui: NatsConnection;
const cleanup: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  nats = await startTestNats({ init: true });
  ui = await nats.connect("ui");
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});
afterAll(async () => {
  await nats?.stop();
});

async function leaseHolder(nc: NatsConnection) {
  const kv = await new Kvm(nc).open("troupe-master");
  const e = await kv.get("leader");
  const v = e && e.operation === "PUT" ? parseLease(e.string()) : null;
  return v && v.expiresAtMs > Date.now() ? { holder: v.holder, revision: e!.revision } : null;
}

/** Each job has exactly one accepted completion; no attempt of a job was assigned twice. */
function expectExactlyOnce(log: LoggedEvent[], jobIds: string[]) {
  const { jobs } = foldJobs(log);
  const completions = new Map<string, number>();
  const assigned = new Map<string, number>();
  for (const { event: e } of log) {
    if (e.type === "job.assigned") assigned.set(`${e.data.jobId}#${e.data.attempt}`, (assigned.get(`${e.data.jobId}#${e.data.attempt}`) ?? 0) + 1);
  }
  for (const id of jobIds) {
    const j = jobs.get(id);
    expect(j?.status, `job ${id}`).toBe("completed");
    completions.set(id, j!.history.filter((h) => h.outcome === "completed").length);
  }
  expect([...completions.values()].every((n) => n === 1)).toBe(true);
  expect([...assigned.entries()].filter(([, n]) => n > 1)).toEqual([]);
}

function spawnFakeWorker(id: string, extra: Record<string, string> = {}): Promise<Child> {
  const c = spawnChild(["--import", "tsx", "services/master/test/fake-worker-main.ts"], { ...nats.env(), FAKE_WORKER_ID: id, ...extra });
  return waitFor(`fake worker ${id} ready`, () => (c.output().includes("ready") ? c : c.proc.exitCode !== null ? Promise.reject(new Error(c.output())) : null), 60_000, 50);
}

// Child processes (masters, workers) start through tsx: seconds each on a loaded machine.
const SLOW = 180_000;

describe("faults", () => {
  it("kill -9 a worker mid-job: its jobs are requeued, completed elsewhere, and its late completion is rejected", async () => {
    const m: RunningMaster = await masterIn(nats, "m-faults-1");
    cleanup.push(() => m.stop());
    const doomed = await spawnFakeWorker("w-doomed", { FAKE_SLOTS: "2", FAKE_BEHAVIOUR: "hang", FAKE_PROGRESS_MS: "100" });
    cleanup.push(() => doomed.kill9());
    const ids = [jobIdOf(await submit(ui, { url: "https://example.com/k1" })), jobIdOf(await submit(ui, { url: "https://example.com/k2" }))];
    const job = (id: string) => lookupJob(m.master.state, id);
    await waitFor("both running on the doomed worker", () => ids.every((id) => job(id)?.status === "running" && job(id)?.workerId === "w-doomed"));
    const rescue = await fakeWorker(nats, { id: "w-rescue", slots: 2 });
    cleanup.push(() => rescue.stop({ deregister: true }));
    await doomed.kill9();
    await waitFor("both completed by the rescuer", () => ids.every((id) => job(id)?.status === "completed"), 15_000);
    expect(ids.map((id) => job(id)?.workerId)).toEqual(["w-rescue", "w-rescue"]);

    // The killed worker's last words arrive late (they were in flight when it died).
    const ghost = await new FakeWorker({ id: "w-doomed", url: nats.url, env: nats.env() });
    ghost.nc = await nats.connect("worker");
    ghost.js = (await import("@nats-io/jetstream")).jetstream(ghost.nc);
    const before = m.master.state.rejected.get("stale-attempt") ?? 0;
    for (const id of ids) await ghost.complete(id, 1);
    await waitFor("late completions rejected", () => (m.master.state.rejected.get("stale-attempt") ?? 0) >= before + 2);
    expect(m.master.metricsText()).toMatch(/troupe_master_rejected_events_total\{reason="stale-attempt"\} [1-9]/);

    const log = await readLog(ui);
    const lost = log.find((l) => l.event.type === "worker.lost" && l.event.data.workerId === "w-doomed");
    expect(lost?.event.data).toMatchObject({ jobIds: expect.arrayContaining(ids) });
    for (const id of ids) {
      expect(log.some((l) => l.event.type === "job.requeued" && l.event.data.jobId === id && l.event.data.reason === "worker-lost")).toBe(true);
    }
    expectExactlyOnce(log, ids);
    const { rejected } = foldJobs(log);
    expect(rejected.filter((r) => r.type === "job.completed" && r.reason === "stale-attempt").length).toBeGreaterThanOrEqual(2);
  }, SLOW);

  it("kill -9 the master mid-run: a new one rebuilds from the log, loses no job, assigns none twice", async () => {
    const a = spawnMaster(nats, "m-crash-a");
    cleanup.push(() => a.kill9());
    await waitFor("master a leads", async () => (await leaseHolder(ui))?.holder === "m-crash-a", 60_000, 100);
    const ws = [await fakeWorker(nats, { id: "w-r1", slots: 3, behaviour: () => ({ kind: "complete", afterMs: 80 }) }), await fakeWorker(nats, { id: "w-r2", slots: 3, behaviour: () => ({ kind: "complete", afterMs: 80 }) })];
    for (const w of ws) cleanup.push(() => w.stop({ deregister: true }));
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(jobIdOf(await submit(ui, { url: `https://example.com/crash/${i}` })));
    const completed = () => ws.reduce((n, w) => n + w.accepted.length - w.running.size, 0);
    await waitFor("some jobs done", () => completed() >= 6);
    await a.kill9();
    const doneAtKill = completed();
    expect(doneAtKill).toBeLessThan(30);
    const b = spawnMaster(nats, "m-crash-b");
    cleanup.push(() => b.stop());
    await waitFor("all jobs completed after the restart", async () => {
      const { jobs } = foldJobs(await readLog(ui));
      return ids.every((id) => jobs.get(id)?.status === "completed");
    }, 30_000, 200);
    const log = await readLog(ui);
    expectExactlyOnce(log, ids);
    const bAssigned = log.filter((l) => l.event.type === "job.assigned" && l.event.source === "m-crash-b");
    expect(bAssigned.length).toBeGreaterThan(0);
  }, SLOW);

  it("two masters: only the leader assigns; when it is killed the other takes over, no double assignment", async () => {
    // A 5 s leader lease: a stall of m1's process under ~3 s is no takeover during the first batch (at 2 s, one of ~2 s was).
    const leaderLease = { TROUPE_LEADER_LEASE_MS: "5000" };
    const m1 = spawnMaster(nats, "m-two-1", leaderLease);
    cleanup.push(() => m1.kill9());
    await waitFor("m1 leads", async () => (await leaseHolder(ui))?.holder === "m-two-1", 60_000, 100);
    const m2 = spawnMaster(nats, "m-two-2", leaderLease);
    cleanup.push(() => m2.stop());
    const ws = [await fakeWorker(nats, { id: "w-t1", slots: 2, behaviour: () => ({ kind: "complete", afterMs: 30 }) }), await fakeWorker(nats, { id: "w-t2", slots: 2, behaviour: () => ({ kind: "complete", afterMs: 30 }) })];
    for (const w of ws) cleanup.push(() => w.stop({ deregister: true }));
    const batch = async (tag: string) => {
      const out: string[] = [];
      for (let i = 0; i < 12; i++) out.push(jobIdOf(await submit(ui, { url: `https://example.com/${tag}/${i}` })));
      await waitFor(`${tag} completed`, async () => {
        const { jobs } = foldJobs(await readLog(ui));
        return out.every((id) => jobs.get(id)?.status === "completed");
      }, 30_000, 200);
      return out;
    };
    const first = await batch("two-first");
    let log = await readLog(ui);
    const assignedBy = (ids: string[]) => log.filter((l) => l.event.type === "job.assigned" && ids.includes(l.event.data.jobId)).map((l) => l.event);
    expect(new Set(assignedBy(first).map((e) => e.source))).toEqual(new Set(["m-two-1"]));
    // One epoch for the whole first batch: the revision of m1's winning lease write (renewals keep it).
    const epochs = new Set(assignedBy(first).map((e) => (e.type === "job.assigned" ? e.data.epoch : 0)));
    expect(epochs.size).toBe(1);
    const firstEpoch = [...epochs][0] as number;
    expect(firstEpoch).toBeGreaterThan(0);

    await m1.kill9();
    // m1's last lease as it stands after the kill (nobody may write it before it lapses).
    const kv = await new Kvm(ui).open("troupe-master");
    const last = parseLease((await kv.get("leader"))!.string())!;
    expect(last.holder).toBe("m-two-1");
    await waitFor("m2 takes over", async () => (await leaseHolder(ui))?.holder === "m-two-2", 60_000, 50);
    // m2's lease write (the winning one, or a renewal soon after) came only after m1's lease had lapsed.
    const takeover = (await kv.get("leader"))!;
    expect(parseLease(takeover.string())?.holder).toBe("m-two-2");
    expect(takeover.created.getTime()).toBeGreaterThanOrEqual(last.expiresAtMs - 10);
    const second = await batch("two-second");
    log = await readLog(ui);
    const after = assignedBy(second);
    expect(new Set(after.map((e) => e.source))).toEqual(new Set(["m-two-2"]));
    expect(after.every((e) => e.type === "job.assigned" && e.data.epoch > firstEpoch)).toBe(true);
    expectExactlyOnce(log, [...first, ...second]);
  }, SLOW);

  it("a worker lost, back, and lost again gets a second worker.lost (the guard knows the first)", async () => {
    const m: RunningMaster = await masterIn(nats, "m-faults-relost");
    cleanup.push(() => m.stop());
    const lostOf = async () => (await readLog(ui)).filter((l) => l.event.type === "worker.lost" && l.event.data.workerId === "w-relost");
    const first = await fakeWorker(nats, { id: "w-relost", heartbeatMs: 100 });
    await first.stop(); // silent: lost after 3 heartbeat intervals
    await waitFor("the first worker.lost", async () => ((await lostOf()).length === 1 ? true : null), 20_000, 100);
    const again = await fakeWorker(nats, { id: "w-relost", heartbeatMs: 100 });
    await waitFor("the worker back online", () => (m.master.state.workers.get("w-relost")?.lifecycle === "online" ? true : null), 20_000);
    await again.stop();
    await waitFor("the second worker.lost", async () => ((await lostOf()).length === 2 ? true : null), 20_000, 100);
    expect(m.master.counters.guardConflicts).toBe(0);
  }, 60_000);
});

describe("a screenshot retention nats-server refuses", () => {
  it("leaves the master running and serving submits, its log naming the setting", async () => {
    // 1 PB: accepted as an option, but more than JetStream can reserve here.
    const m = spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv("m-huge-cap"), TROUPE_ARTIFACT_MAX_MB: String(1024 * 1024 * 1024) });
    cleanup.push(() => m.stop());
    await waitFor("the refusal logged", () => /screenshot store retention not applied/.test(m.output()), 30_000, 50);
    expect(m.output()).toMatch(/size cap 1073741824 MB \(--artifact-max-mb, TROUPE_ARTIFACT_MAX_MB\)/);
    // The refusal is logged while the master starts, before it serves submits (a fresh-clone run once asked in
    // between and got "no responders"): asked again until a master answers.
    const r = await waitFor("a master answering the submit", () =>
      submit(ui, { url: "https://example.com/after-refused-cap", idempotencyKey: "after-refused-cap" }).catch((e: Error) => (/no responders/.test(e.message) ? null : Promise.reject(e))), 30_000, 100);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(m.proc.exitCode).toBeNull();
  }, 60_000);
});

describe("a metrics port or host the master cannot have", () => {
  it("stops the start at once with exit 1, naming the setting, before reading the log (it replayed it, then hung on EADDRINUSE until the watchdog)", async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (taken.address() as { port: number }).port;
      const m = spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv("m-port-taken"), TROUPE_MASTER_PORT: String(port) });
      cleanup.push(() => m.stop());
      await new Promise<void>((r) => m.proc.once("exit", () => r()));
      expect(m.proc.exitCode, m.output()).toBe(1);
      expect(m.output()).toMatch(new RegExp(`metrics: cannot listen on 127\\.0\\.0\\.1:${port} \\(--host \\[TROUPE_MASTER_HOST\\], --port \\[TROUPE_MASTER_PORT\\]; 0 turns it off\\): .*EADDRINUSE`));
      expect(m.output()).not.toMatch(/still running|state rebuilt from the log/);
    } finally {
      await new Promise((r) => taken.close(r));
    }
    const bad = spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv("m-bad-host"), TROUPE_MASTER_PORT: "0", TROUPE_MASTER_HOST: "not a host" });
    await new Promise<void>((r) => bad.proc.once("exit", () => r()));
    expect(bad.proc.exitCode, bad.output()).toBe(2);
    expect(bad.output()).toMatch(/TROUPE_MASTER_HOST.*an IP address or host name/);
  }, 60_000);
});
