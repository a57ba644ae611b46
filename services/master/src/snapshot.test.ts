import { describe, expect, it } from "vitest";
import { decodeSnapshot, encodeSnapshot, encodeSnapshotSliced, encodeState, resumeFrom, SNAPSHOT_VERSION, snapshotDue } from "./snapshot.ts";
import { applyEvent, emptyState, type MasterState } from "./state.ts";
import { logBuilder, registration, SPEC } from "./testing.ts";

const META = { prefix: "troupe", writtenBy: "m1", writtenAt: "2026-01-01T00:00:00.000Z" };
const result = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
const metrics = { totalDuration: 1, responseTime: 1, memoryUsed: 1 };

/** A state with something in every collection: running, queued, retrying, completed, dead, redriven, cancelled jobs, a lost worker, rejections. */
function busyState(): MasterState {
  const s = emptyState();
  const log = logBuilder(s);
  const at = () => new Date(log.now).toISOString();
  const w1 = registration("w1", 2, ["chromium", "firefox"]);
  log.add("worker.registered", { ...w1, capabilities: { ...w1.capabilities, labels: ["region=eu", "residential"], scriptSteps: true } });
  log.add("worker.registered", registration("w2", 1));
  log.add("job.submitted", { jobId: "done", spec: SPEC, idempotencyKey: "k1" });
  log.add("job.assigned", { jobId: "done", workerId: "w1", attempt: 1, epoch: 1 });
  log.add("job.started", { jobId: "done", workerId: "w1", attempt: 1 });
  log.add("job.completed", { jobId: "done", workerId: "w1", attempt: 1, result, metrics });
  log.add("job.submitted", { jobId: "run", spec: { ...SPEC, tags: ["a"] } });
  log.add("job.assigned", { jobId: "run", workerId: "w1", attempt: 1, epoch: 1 });
  log.add("job.progress", { jobId: "run", workerId: "w1", attempt: 1, progress: 40 });
  log.add("job.submitted", { jobId: "wait", spec: SPEC, idempotencyKey: "k2" });
  log.add("job.submitted", { jobId: "dead", spec: { ...SPEC, maxAttempts: 1 } });
  log.add("job.assigned", { jobId: "dead", workerId: "w2", attempt: 1, epoch: 1 });
  log.add("job.requeued", { jobId: "dead", attempt: 2, previousAttempt: 1, previousWorkerId: "w2", reason: "worker-refused", notBefore: at(), epoch: 1 });
  log.add("job.dead", { jobId: "dead", reason: "out of attempts", attempts: 1, epoch: 1 });
  log.add("job.submitted", { jobId: "redriven", spec: SPEC });
  log.add("job.dead", { jobId: "redriven", reason: "x", attempts: 1, epoch: 1 });
  log.add("job.requeued", { jobId: "redriven", attempt: 2, reason: "redrive", notBefore: at(), epoch: 1 });
  log.add("job.submitted", { jobId: "gone", spec: SPEC });
  log.add("job.cancelled", { jobId: "gone", reason: "user", epoch: 1 });
  // Taken from w1 (lease lapsed), completed by w2: w1's attempt is kept as a stray.
  log.add("job.submitted", { jobId: "lapsed", spec: SPEC });
  log.add("job.assigned", { jobId: "lapsed", workerId: "w1", attempt: 1, epoch: 1 });
  log.add("job.requeued", { jobId: "lapsed", attempt: 2, previousAttempt: 1, previousWorkerId: "w1", reason: "lease-expired", notBefore: at(), epoch: 1 });
  log.add("job.assigned", { jobId: "lapsed", workerId: "w2", attempt: 2, epoch: 1 });
  log.add("job.completed", { jobId: "lapsed", workerId: "w2", attempt: 2, result, metrics });
  log.add("job.started", { jobId: "run", workerId: "w2", attempt: 1 }); // wrong worker: rejected
  log.advance(5000);
  log.add("worker.lost", { workerId: "w2", lastSeen: at(), epoch: 1, jobIds: [] });
  return s;
}

describe("master snapshots", () => {
  it("round-trips a state: what is read back deep-equals what was written", () => {
    const s = busyState();
    s.workers.get("w1")!.heartbeatMs = 30_000; // from its heartbeats: the window it is judged by survives a restart
    // Every collection is exercised.
    expect(s.jobs.size && s.finished.size && s.needSpec.size && s.subjectSeq.size && s.activityMs.size && s.attemptBase.size && s.assignedInstance.size && s.submitSeq.size && s.open.size && s.rejected.size).toBeTruthy();
    expect(s.workers.get("w2")?.lifecycle).toBe("lost");
    const d = decodeSnapshot(encodeSnapshot(s, META), { prefix: "troupe" });
    if (!d.ok) throw new Error(d.error);
    expect(d.snapshot).toEqual({ format: "troupe-master-snapshot", version: SNAPSHOT_VERSION, ...META });
    // cpu comes from heartbeats only and is not part of a snapshot.
    for (const w of s.workers.values()) w.cpu = 0;
    expect(d.state).toEqual(s);
    expect(JSON.stringify(encodeState(d.state))).toBe(JSON.stringify(encodeState(s)));
    expect(d.state.workers.get("w1")?.held).toBeInstanceOf(Set);
    expect(d.state.workers.get("w1")?.labels).toEqual(["region=eu", "residential"]);
    expect(d.state.workers.get("w2")?.labels).toBeUndefined();
    // Only w1 runs page-JavaScript steps, after a restart too.
    expect(d.state.workers.get("w1")?.scriptSteps).toBe(true);
    expect(d.state.workers.get("w2")?.scriptSteps).toBeUndefined();
    expect(encodeState(s).workers.find((w) => w.id === "w2")).not.toHaveProperty("scriptSteps");
    expect(d.state.finished.get("lapsed")?.strays).toEqual([{ workerId: "w1", attempt: 1 }]);
  });

  it("folds on from a loaded snapshot exactly as from the original", () => {
    const a = busyState();
    const d = decodeSnapshot(encodeSnapshot(a, META));
    if (!d.ok) throw new Error(d.error);
    const b = d.state;
    for (const s of [a, b]) {
      const m = (seq: number, subject: string) => ({ seq, subject, timeMs: Date.parse("2026-01-02T00:00:00Z") + seq });
      applyEvent(s, { ...busyEvent("job.completed"), data: { jobId: "run", workerId: "w1", attempt: 1, result, metrics } } as never, m(100, "troupe.evt.job.run.completed"));
      applyEvent(s, { ...busyEvent("job.assigned"), data: { jobId: "wait", workerId: "w1", attempt: 1, epoch: 2 } } as never, m(101, "troupe.evt.job.wait.assigned"));
    }
    for (const w of a.workers.values()) w.cpu = 0;
    expect(encodeState(b)).toEqual(encodeState(a));
  });

  it("sliced encoding writes the same bytes, pausing between slices, and captures the state as it was when it started", async () => {
    const s = busyState();
    const expected = encodeSnapshot(s, META);
    let pauses = 0;
    const m = (seq: number, subject: string) => ({ seq, subject, timeMs: Date.parse("2026-01-02T00:00:00Z") + seq });
    const sliced = await encodeSnapshotSliced(s, META, {
      slice: 1,
      // The fold goes on between slices: a job completes, another is assigned, a worker holds it.
      pause: async () => {
        pauses++;
        if (pauses === 1) {
          applyEvent(s, { ...busyEvent("job.completed"), data: { jobId: "run", workerId: "w1", attempt: 1, result, metrics } } as never, m(100, "troupe.evt.job.run.completed"));
          applyEvent(s, { ...busyEvent("job.assigned"), data: { jobId: "wait", workerId: "w1", attempt: 1, epoch: 2 } } as never, m(101, "troupe.evt.job.wait.assigned"));
        }
      },
    });
    // Every collection with more than one entry was split: a pause after each of its entries.
    const state = encodeState(busyState());
    const slicedEntries = Object.values(state).filter((v) => Array.isArray(v) && v.length > 1).reduce((n, v) => n + (v as unknown[]).length, 0);
    expect(pauses).toBe(slicedEntries);
    expect(new TextDecoder().decode(sliced)).toBe(new TextDecoder().decode(expected));
    expect(encodeState(s)).not.toEqual(state); // the state did move on meanwhile
    // Default slices: one piece, the same bytes.
    expect(new TextDecoder().decode(await encodeSnapshotSliced(busyState(), META))).toBe(new TextDecoder().decode(encodeSnapshot(busyState(), META)));
  });

  it("refuses malformed input, another format or version, another prefix", () => {
    const good = JSON.parse(new TextDecoder().decode(encodeSnapshot(busyState(), META)));
    const bad = (v: unknown) => decodeSnapshot(typeof v === "string" ? v : JSON.stringify(v), { prefix: "troupe" });
    expect(bad("{not json")).toMatchObject({ ok: false, error: expect.stringMatching(/not JSON/) });
    expect(decodeSnapshot(new Uint8Array([0xff, 0xfe]))).toMatchObject({ ok: false });
    expect(bad([])).toMatchObject({ ok: false, error: "not an object" });
    expect(bad({ ...good, format: "x" })).toMatchObject({ ok: false, error: expect.stringMatching(/format/) });
    expect(bad({ ...good, version: 1 })).toMatchObject({ ok: false, error: expect.stringMatching(/version 1/) });
    expect(bad({ ...good, version: SNAPSHOT_VERSION + 1 })).toMatchObject({ ok: false, error: expect.stringMatching(/unknown version/) });
    expect(bad({ ...good, prefix: "other" })).toMatchObject({ ok: false, error: expect.stringMatching(/prefix/) });
    expect(bad({ ...good, state: null })).toMatchObject({ ok: false, error: "state is not an object" });
    expect(bad({ ...good, state: { ...good.state, appliedSeq: -1 } })).toMatchObject({ ok: false, error: expect.stringMatching(/appliedSeq/) });
    expect(bad({ ...good, state: { ...good.state, jobs: {} } })).toMatchObject({ ok: false, error: "jobs is not an array" });
    expect(bad({ ...good, state: { ...good.state, jobs: [{ id: 1 }] } })).toMatchObject({ ok: false, error: expect.stringMatching(/jobs/) });
    expect(bad({ ...good, state: { ...good.state, finished: [{ ...good.state.finished[0], status: "running" }] } })).toMatchObject({ ok: false, error: expect.stringMatching(/finished/) });
    expect(bad({ ...good, state: { ...good.state, finished: [{ ...good.state.finished[0], strays: [{ workerId: 1, attempt: 1 }] }] } })).toMatchObject({ ok: false, error: expect.stringMatching(/strays/) });
    expect(bad({ ...good, state: { ...good.state, workers: [{ ...good.state.workers[0], held: [1] }] } })).toMatchObject({ ok: false, error: expect.stringMatching(/held/) });
    expect(bad({ ...good, state: { ...good.state, workers: [{ ...good.state.workers[0], lifecycle: "asleep" }] } })).toMatchObject({ ok: false, error: expect.stringMatching(/workers/) });
    expect(bad({ ...good, state: { ...good.state, workers: [{ ...good.state.workers[0], scriptSteps: "yes" }] } })).toMatchObject({ ok: false, error: expect.stringMatching(/scriptSteps/) });
    // An older master's snapshot has no scriptSteps: its workers run no script job until they register again.
    const older = bad({ ...good, state: { ...good.state, workers: good.state.workers.map(({ scriptSteps: _, ...w }: Record<string, unknown>) => w) } });
    expect(older.ok && older.state.workers.get("w1")?.scriptSteps).toBeUndefined();
    expect(bad({ ...good, state: { ...good.state, subjectSeq: [["a", "1"]] } })).toMatchObject({ ok: false, error: expect.stringMatching(/subjectSeq/) });
    expect(bad({ ...good, state: { ...good.state, open: undefined } })).toMatchObject({ ok: false, error: expect.stringMatching(/open/) });
    expect(bad(good)).toMatchObject({ ok: true });
  });

  it("resumes after the snapshot unless the stream was reset or lost the events after it", () => {
    expect(resumeFrom(10, { first_seq: 1, last_seq: 20 })).toEqual({ ok: true, startSeq: 11 });
    expect(resumeFrom(10, { first_seq: 1, last_seq: 10 })).toEqual({ ok: true, startSeq: 11 });
    expect(resumeFrom(10, { first_seq: 11, last_seq: 10 })).toEqual({ ok: true, startSeq: 11 }); // purged up to the snapshot, nothing lost
    expect(resumeFrom(10, { first_seq: 12, last_seq: 20 })).toMatchObject({ ok: false, reason: expect.stringMatching(/starts at 12/) });
    expect(resumeFrom(10, { first_seq: 21, last_seq: 20 })).toMatchObject({ ok: false });
    expect(resumeFrom(10, { first_seq: 0, last_seq: 0 })).toMatchObject({ ok: false, reason: expect.stringMatching(/reset/) });
  });
});

function busyEvent(type: string) {
  return { specversion: "1.0", id: `e-${type}`, source: "test", type, time: "2026-01-02T00:00:00.000Z" };
}

describe("snapshotDue", () => {
  it("waits `every` events, and at least as many events as the state has entries, so the cost per event stays constant", () => {
    expect(snapshotDue(9_999, 10_000, 10)).toBe(false);
    expect(snapshotDue(10_000, 10_000, 10)).toBe(true);
    // A million jobs held: not every 10,000 events, but every million.
    expect(snapshotDue(10_000, 10_000, 1_000_000)).toBe(false);
    expect(snapshotDue(999_999, 10_000, 1_000_000)).toBe(false);
    expect(snapshotDue(1_000_000, 10_000, 1_000_000)).toBe(true);
    expect(snapshotDue(5_000_000, 0, 10)).toBe(false); // off
  });
});
