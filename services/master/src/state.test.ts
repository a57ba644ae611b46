import { describe, expect, it } from "vitest";
import { createEvent, type EventOf } from "@troupe/events";
import { applyHeartbeat, assignmentInstance, compactJob, emptyState, finishedGuardSeq, isSettled, lookupJob, MISSING_SPEC, thawJob } from "./state.ts";
import { heartbeat, logBuilder, registration, SPEC } from "./testing.ts";

describe("applyEvent", () => {
  it("tracks held jobs per worker through assignment and completion", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1", 3, ["chromium", "firefox"]));
    log.add("job.submitted", { jobId: "j1", spec: SPEC, idempotencyKey: "k" });
    log.add("job.assigned", { jobId: "j1", workerId: "w1", attempt: 1, epoch: 4 });
    expect([...s.workers.get("w1")!.held]).toEqual(["j1"]);
    expect(s.workers.get("w1")).toMatchObject({ maxSlots: 3, browsers: ["chromium", "firefox"] });
    expect(s.subjectSeq.get("troupe.evt.job.j1.assigned")).toBe(3);
    log.add("job.completed", { jobId: "j1", workerId: "w1", attempt: 1, result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] }, metrics: { totalDuration: 1, responseTime: 1, memoryUsed: 1 } });
    expect(s.workers.get("w1")!.held.size).toBe(0);
    expect(s.open.has("j1")).toBe(false);
    // Guard sequences only for what the master appends; the worker's events need none.
    expect(s.subjectSeq.has("troupe.evt.job.j1.completed")).toBe(false);
  });

  it("keeps capabilities.scriptSteps from a registration; a registration without it clears it", () => {
    const s = emptyState();
    const log = logBuilder(s);
    const r = registration("w1");
    log.add("worker.registered", { ...r, capabilities: { ...r.capabilities, scriptSteps: true } });
    expect(s.workers.get("w1")?.scriptSteps).toBe(true);
    // A new instance without TROUPE_ALLOW_SCRIPT_STEPS: the master must not offer it script jobs.
    log.add("worker.registered", { ...r, instanceId: "i-2" });
    expect(s.workers.get("w1")).not.toHaveProperty("scriptSteps");
    log.add("worker.registered", registration("w2"));
    expect(s.workers.get("w2")).not.toHaveProperty("scriptSteps");
  });

  it("keeps a resumed worker online when a draining heartbeat its process made before the resume is stored or folded after it (same millisecond too); a later one drains it", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1"));
    log.advance(1000);
    log.add("worker.draining", { workerId: "w1", instanceId: "i-w1", reason: "maintenance" });
    const drainingMadeAt = log.now + 5;
    log.advance(10);
    log.add("worker.registered", registration("w1")); // the resume: the same process registers again
    expect(s.workers.get("w1")?.lifecycle).toBe("online");
    // Made before the registration (worker's clock), stored in the same millisecond as it (server's clock).
    const stale = { ...heartbeat("w1", "i-w1", "draining"), time: new Date(drainingMadeAt).toISOString() };
    applyHeartbeat(s, stale, log.now);
    expect(s.workers.get("w1")?.lifecycle).toBe("online");
    // A draining heartbeat made after the registration (a drain whose event did not reach the log) still drains.
    const fresh = { ...heartbeat("w1", "i-w1", "draining"), time: new Date(log.now + 1000).toISOString() };
    applyHeartbeat(s, fresh, log.now + 1000);
    expect(s.workers.get("w1")?.lifecycle).toBe("draining");
  });

  it("records worker.lost's sequence, so a second verdict on the same worker passes the guard", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1", 1, ["chromium"]));
    log.add("worker.lost", { workerId: "w1", lastSeen: new Date(log.now).toISOString(), epoch: 2, jobIds: [] });
    expect(s.subjectSeq.get("troupe.evt.worker.w1.lost")).toBe(2);
  });

  it("rejects and counts a stale attempt and an older epoch, and records their sequence for the guard", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("job.submitted", { jobId: "j", spec: SPEC });
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 5 });
    log.add("job.requeued", { jobId: "j", attempt: 2, reason: "worker-lost", notBefore: new Date(log.now).toISOString(), epoch: 5 });
    expect(log.add("job.started", { jobId: "j", workerId: "w1", attempt: 1 })).toMatchObject({ ok: false, reason: "stale-attempt" });
    expect(log.add("job.assigned", { jobId: "j", workerId: "w2", attempt: 2, epoch: 3 })).toMatchObject({ ok: false, reason: "stale-epoch" });
    expect(s.subjectSeq.get("troupe.evt.job.j.assigned")).toBe(5);
    expect(Object.fromEntries(s.rejected)).toEqual({ "stale-attempt": 1, "stale-epoch": 1 });
    expect(s.jobs.get("j")).toMatchObject({ status: "requeued", attempt: 2 });
  });

  it("brings a lost worker back when it heartbeats again, and counts a redrive's fresh budget", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1"));
    log.add("worker.lost", { workerId: "w1", lastSeen: new Date(log.now).toISOString(), epoch: 1, jobIds: [] });
    expect(s.workers.get("w1")?.lifecycle).toBe("lost");
    log.advance(1000);
    log.add("worker.heartbeat", {
      workerId: "w1", instanceId: "i-w1", status: "online", currentJobs: 0, maxConcurrentJobs: 2, jobIds: [],
      metrics: { memoryUsage: 1, cpuUsage: 42, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 100, averageJobDuration: 0 },
    });
    expect(s.workers.get("w1")).toMatchObject({ lifecycle: "online", cpu: 42 });
    log.add("job.submitted", { jobId: "j", spec: { ...SPEC, maxAttempts: 1 } });
    log.add("job.dead", { jobId: "j", reason: "x", attempts: 1, epoch: 1 });
    log.add("job.requeued", { jobId: "j", attempt: 2, reason: "redrive", notBefore: new Date(log.now).toISOString(), epoch: 1 });
    expect(s.attemptBase.get("j")).toBe(1);
    expect(s.open.has("j")).toBe(true);
  });

  it("keeps a lost worker lost when the heartbeat its verdict was about is folded after it, in either order", () => {
    const hb = (workerId: string) => ({
      workerId, instanceId: `i-${workerId}`, status: "online" as const, currentJobs: 0, maxConcurrentJobs: 2, jobIds: [],
      metrics: { memoryUsage: 1, cpuUsage: 1, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 100, averageJobDuration: 0 },
    });
    const lastHbMs = Date.parse("2026-01-01T00:00:05Z");
    // The log first, then the heartbeat tail (as a start folds them), and the other way round.
    const logFirst = emptyState();
    const log = logBuilder(logFirst);
    log.add("worker.registered", registration("w1"));
    log.add("worker.lost", { workerId: "w1", lastSeen: new Date(lastHbMs).toISOString(), epoch: 1, jobIds: [] });
    applyHeartbeat(logFirst, createEvent("worker.heartbeat", hb("w1"), "w1") as EventOf<"worker.heartbeat">, lastHbMs);
    expect(logFirst.workers.get("w1")).toMatchObject({ lifecycle: "lost", lastSeenMs: lastHbMs });
    const hbFirst = emptyState();
    applyHeartbeat(hbFirst, createEvent("worker.heartbeat", hb("w1"), "w1") as EventOf<"worker.heartbeat">, lastHbMs);
    const log2 = logBuilder(hbFirst);
    log2.add("worker.registered", registration("w1"));
    log2.add("worker.lost", { workerId: "w1", lastSeen: new Date(lastHbMs).toISOString(), epoch: 1, jobIds: [] });
    expect(hbFirst.workers.get("w1")).toMatchObject({ lifecycle: "lost", lastSeenMs: lastHbMs });
    // A later heartbeat brings it back.
    applyHeartbeat(logFirst, createEvent("worker.heartbeat", hb("w1"), "w1") as EventOf<"worker.heartbeat">, lastHbMs + 1);
    expect(logFirst.workers.get("w1")?.lifecycle).toBe("online");
  });

  it("keeps a deregistered worker offline when its instance's last (draining) heartbeat is stored just after, live or at a start; a new instance comes back", () => {
    const hb = (instanceId: string, status: "online" | "draining") => heartbeat("w1", instanceId, status);
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", { ...registration("w1"), instanceId: "i-1" });
    log.add("worker.lost", { workerId: "w1", lastSeen: new Date(log.now).toISOString(), epoch: 1, jobIds: [] });
    log.advance(1000);
    applyHeartbeat(s, hb("i-1", "online"), log.now); // back after the verdict
    log.add("worker.draining", { workerId: "w1", instanceId: "i-1", reason: "SIGTERM" });
    log.add("worker.deregistered", { workerId: "w1", instanceId: "i-1", reason: "SIGTERM" });
    expect(s.workers.get("w1")?.lifecycle).toBe("offline");
    // The draining heartbeat sent before the deregistration, stored a millisecond after it in the other stream.
    applyHeartbeat(s, hb("i-1", "draining"), log.now + 1);
    expect(s.workers.get("w1")?.lifecycle).toBe("offline");
    // A restart is a new instance, which registers: then it is back (its heartbeats alone are not enough).
    applyHeartbeat(s, hb("i-2", "online"), log.now + 60_000);
    expect(s.workers.get("w1")?.lifecycle).toBe("offline");
    log.advance(60_000);
    log.add("worker.registered", { ...registration("w1"), instanceId: "i-2" });
    expect(s.workers.get("w1")).toMatchObject({ lifecycle: "online", instanceId: "i-2" });
  });

  it("names in an assignment the instance the folded assignment was made to, else the worker's current one", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", { ...registration("w1"), instanceId: "i-1" });
    log.add("worker.registered", { ...registration("w2"), instanceId: "i-w2" });
    log.add("job.submitted", { jobId: "j", spec: SPEC });
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 });
    expect(assignmentInstance(s, "j", "w1", 1)).toBe("i-1");
    // w1 restarted after the assignment was folded: the assignment still belongs to the old process.
    log.add("worker.registered", { ...registration("w1"), instanceId: "i-2" });
    expect(assignmentInstance(s, "j", "w1", 1)).toBe("i-1");
    // Requeued, and attempt 2 being read back for w2 before its fold: w2's process, not w1's old one.
    log.add("job.requeued", { jobId: "j", attempt: 2, previousAttempt: 1, previousWorkerId: "w1", reason: "worker-lost", notBefore: new Date(log.now).toISOString(), epoch: 1 });
    expect(assignmentInstance(s, "j", "w2", 2)).toBe("i-w2");
  });

  it("keeps the registered process online when another process with its id drains and deregisters (the paused twin stopped)", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", { ...registration("w1"), instanceId: "i-old" });
    log.add("worker.registered", { ...registration("w1"), instanceId: "i-new" });
    log.add("worker.draining", { workerId: "w1", instanceId: "i-old", reason: "SIGTERM" });
    log.add("worker.deregistered", { workerId: "w1", instanceId: "i-old", reason: "SIGTERM" });
    expect(s.workers.get("w1")).toMatchObject({ lifecycle: "online", instanceId: "i-new" });
    // Its own drain still counts.
    log.add("worker.draining", { workerId: "w1", instanceId: "i-new", reason: "SIGTERM" });
    expect(s.workers.get("w1")?.lifecycle).toBe("draining");
  });

  it("takes a registered worker's heartbeats only from its registered process (a paused twin's do not flip its instance)", () => {
    const hb = (instanceId: string) => heartbeat("w1", instanceId);
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", { ...registration("w1"), instanceId: "i-new" });
    applyHeartbeat(s, hb("i-old"), log.now + 1000);
    expect(s.workers.get("w1")).toMatchObject({ instanceId: "i-new", lastSeenMs: log.now });
    applyHeartbeat(s, hb("i-new"), log.now + 2000);
    expect(s.workers.get("w1")).toMatchObject({ instanceId: "i-new", lastSeenMs: log.now + 2000 });
  });
});

const RESULT = { success: true as const, data: { big: "x".repeat(1000) }, dataExtracted: 1, screenshots: [], logs: [] };
const METRICS = { totalDuration: 1, responseTime: 1, memoryUsed: 1 };

describe("settled jobs are kept compact", () => {
  it("compactJob keeps status, attempt, epoch, worker, order and guard sequences, nothing of spec, result or history", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("job.submitted", { jobId: "j", spec: SPEC });
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 4 });
    const r = log.add("job.completed", { jobId: "j", workerId: "w1", attempt: 1, result: RESULT, metrics: METRICS });
    if (!r.ok || !r.job) throw new Error("not folded");
    expect(isSettled(r.job)).toBe(true);
    expect(compactJob(r.job, 1, { assigned: 2 })).toEqual({
      id: "j", status: "completed", attempt: 1, epoch: 4, workerId: "w1", order: 1, assigned: 2, requeued: 0, cancelled: 0, dead: 0,
    });
    expect(isSettled({ status: "failed", error: { message: "m", retryable: true } })).toBe(false);
    expect(isSettled({ status: "failed", error: { message: "m", retryable: false } })).toBe(true);
  });

  it("thawJob gives evolveJob what it reads, with the placeholder spec", () => {
    const f = compactJob({ ...thawJob({ id: "j", status: "dead", attempt: 3, epoch: 2, workerId: "w", order: 7, assigned: 1, requeued: 2, cancelled: 0, dead: 3 }) }, 7, {});
    expect(f).toMatchObject({ id: "j", status: "dead", attempt: 3, epoch: 2, workerId: "w", order: 7 });
    const v = thawJob(f);
    expect(v).toMatchObject({ id: "j", status: "dead", attempt: 3, epoch: 2, workerId: "w", history: [] });
    expect(v.spec).toBe(MISSING_SPEC);
  });

  it("after N finished jobs the state holds only compact entries, and nothing per job in the other maps", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1", 1));
    const N = 200;
    for (let i = 0; i < N; i++) {
      const jobId = `j${i}`;
      log.add("job.submitted", { jobId, spec: SPEC, idempotencyKey: `key-${i}` });
      log.add("job.assigned", { jobId, workerId: "w1", attempt: 1, epoch: 1 });
      log.add("job.started", { jobId, workerId: "w1", attempt: 1 });
      if (i % 4 === 0) log.add("job.completed", { jobId, workerId: "w1", attempt: 1, result: RESULT, metrics: METRICS });
      else if (i % 4 === 1) log.add("job.failed", { jobId, workerId: "w1", attempt: 1, error: { message: "no", retryable: false } });
      else if (i % 4 === 2) log.add("job.cancelled", { jobId, attempt: 1, workerId: "w1", epoch: 1 });
      else log.add("job.dead", { jobId, reason: "x", attempts: 1, epoch: 1 });
    }
    expect(s.jobs.size).toBe(0);
    expect(s.finished.size).toBe(N);
    expect(s.open.size + s.submitSeq.size + s.activityMs.size + s.attemptBase.size + s.refusedAttempts.size + s.assignedInstance.size + s.needSpec.size).toBe(0);
    // Only the worker's own guard key is left; the jobs' sequences live in their compact entries.
    expect([...s.subjectSeq.keys()]).toEqual([]);
    for (const f of s.finished.values()) {
      // An attempt the log took from its worker (cancelled, dead) is kept as a stray: the worker may still run it.
      const took = f.status === "cancelled" || f.status === "dead";
      expect(Object.keys(f).sort()).toEqual(["assigned", "attempt", "cancelled", "dead", "epoch", "id", "order", "requeued", "status", ...(took ? ["strays"] : []), "workerId"]);
      if (took) expect(f.strays).toEqual([{ workerId: "w1", attempt: 1 }]);
      expect(Object.entries(f).every(([k, v]) => k === "strays" || v === undefined || typeof v === "number" || typeof v === "string")).toBe(true);
    }
    expect([...s.finished.values()].map((f) => f.status).slice(0, 4)).toEqual(["completed", "failed", "cancelled", "dead"]);
    expect(s.workers.get("w1")!.held.size).toBe(0);
    // Sequences: worker.registered 1, then per job i submitted 2+4i, assigned 3+4i, started 4+4i, the end 5+4i.
    expect(s.finished.get("j2")).toMatchObject({ assigned: 11, cancelled: 13 });
  });

  it("a late or stale event on a compact job is rejected without bringing it back, and its guard sequence is kept compact", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("job.submitted", { jobId: "j", spec: SPEC });
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 });
    log.add("job.completed", { jobId: "j", workerId: "w1", attempt: 1, result: RESULT, metrics: METRICS });
    expect(log.add("job.completed", { jobId: "j", workerId: "w1", attempt: 1, result: RESULT, metrics: METRICS })).toMatchObject({ ok: false, reason: "invalid-transition" });
    expect(log.add("job.assigned", { jobId: "j", workerId: "w2", attempt: 1, epoch: 1 })).toMatchObject({ ok: false });
    expect(log.add("job.submitted", { jobId: "j", spec: SPEC })).toMatchObject({ ok: false, reason: "duplicate-job" });
    expect(s.jobs.has("j")).toBe(false);
    expect(s.subjectSeq.size).toBe(0);
    expect(s.finished.get("j")).toMatchObject({ status: "completed", assigned: 5 });
    expect(finishedGuardSeq(s, "j", "job.assigned")).toBe(5);
    expect(finishedGuardSeq(s, "j", "job.requeued")).toBe(0);
    expect(finishedGuardSeq(s, "other", "job.requeued")).toBeUndefined();
  });

  it("a redrive brings a dead job back in full, waiting for its spec, with its guard sequences as subject keys again", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("job.submitted", { jobId: "j", spec: { ...SPEC, maxAttempts: 1 } });
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 });
    log.add("job.dead", { jobId: "j", reason: "x", attempts: 1, epoch: 1 });
    expect(lookupJob(s, "j")).toMatchObject({ status: "dead" });
    expect(log.add("job.requeued", { jobId: "j", attempt: 2, previousAttempt: 1, reason: "redrive", notBefore: new Date(log.now).toISOString(), epoch: 2 })).toMatchObject({ ok: true });
    expect(s.finished.has("j")).toBe(false);
    expect(s.jobs.get("j")).toMatchObject({ status: "requeued", attempt: 2, epoch: 2, spec: MISSING_SPEC });
    expect(s.needSpec.has("j")).toBe(true);
    expect(s.open.has("j")).toBe(true);
    expect(s.submitSeq.get("j")).toBe(1);
    expect(s.attemptBase.get("j")).toBe(1);
    expect(Object.fromEntries(s.subjectSeq)).toEqual({ "troupe.evt.job.j.assigned": 2, "troupe.evt.job.j.dead": 3, "troupe.evt.job.j.requeued": 4 });
    // Runs again and completes: compact again, with every sequence.
    log.add("job.assigned", { jobId: "j", workerId: "w2", attempt: 2, epoch: 2 });
    log.add("job.completed", { jobId: "j", workerId: "w2", attempt: 2, result: RESULT, metrics: METRICS });
    expect(s.finished.get("j")).toEqual({ id: "j", status: "completed", attempt: 2, epoch: 2, workerId: "w2", order: 1, assigned: 5, requeued: 4, cancelled: 0, dead: 3 });
    expect(s.needSpec.size + s.jobs.size + s.subjectSeq.size).toBe(0);
  });

  it("cancelling a final failure brings it back only to settle it again as cancelled", () => {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("job.submitted", { jobId: "j", spec: SPEC });
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 });
    log.add("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: { message: "no", retryable: false } });
    expect(s.finished.get("j")?.status).toBe("failed");
    expect(log.add("job.requeued", { jobId: "j", attempt: 2, reason: "failed-retryable", notBefore: new Date(log.now).toISOString(), epoch: 1 })).toMatchObject({ ok: false, reason: "invalid-transition" });
    expect(log.add("job.cancelled", { jobId: "j", epoch: 1 })).toMatchObject({ ok: true });
    expect(s.finished.get("j")).toMatchObject({ status: "cancelled", cancelled: 5, requeued: 4 });
    expect(s.jobs.size + s.needSpec.size + s.open.size).toBe(0);
  });
});
