import { describe, expect, it } from "vitest";
import { ATTEMPT_MAX } from "@troupe/events";
import { afterRefusal, backoffDelay, decide, forgetUnregistered, retryOrDead } from "./recovery.ts";
import { applyHeartbeat, emptyState } from "./state.ts";
import { heartbeat, logBuilder, registration, SPEC } from "./testing.ts";

const cfg = { heartbeatIntervalMs: 1000, leaseMs: 5000, backoffMs: 100, maxBackoffMs: 1000 };

function running(maxAttempts = 3) {
  const s = emptyState();
  const log = logBuilder(s);
  log.add("worker.registered", registration("w1"));
  log.add("job.submitted", { jobId: "j", spec: { ...SPEC, maxAttempts } });
  log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 1, epoch: 1 });
  log.add("job.started", { jobId: "j", workerId: "w1", attempt: 1 });
  return { s, log };
}

describe("backoffDelay", () => {
  it("doubles per attempt spent, capped", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, cfg))).toEqual([100, 200, 400, 800, 1000]);
  });
});

describe("decide", () => {
  it("declares a silent worker lost after 3 intervals and requeues its jobs with backoff", () => {
    const { s, log } = running();
    expect(decide(s, log.now + 2500, cfg)).toEqual([]);
    const d = decide(s, log.now + 3001, cfg);
    expect(d).toEqual([
      { kind: "worker-lost", workerId: "w1", instanceId: "i-w1", lastSeenMs: log.now - 0, jobIds: ["j"] },
      { kind: "requeue", jobId: "j", attempt: 2, previousAttempt: 1, previousWorkerId: "w1", reason: "worker-lost", notBeforeMs: log.now + 3001 + 100 },
    ]);
    expect(decide(s, log.now + 3001, cfg, (id) => id === "w1" || id === "j")).toEqual([]);
  });

  it("announces no loss for a worker that only ever sent heartbeats, and forgets it once silent (made-up ids must not pile up)", () => {
    const { s, log } = running();
    const hb = (workerId: string) => heartbeat(workerId, `i-${workerId}`);
    for (let i = 0; i < 100; i++) applyHeartbeat(s, hb(`phantom-${i}`), log.now);
    applyHeartbeat(s, hb("w1"), log.now);
    expect(s.workers.size).toBe(101);
    expect(forgetUnregistered(s, log.now + 2500, cfg)).toEqual([]);
    // Past the lost window: the registered worker is declared lost as before, the phantoms are only dropped.
    expect(decide(s, log.now + 3001, cfg).filter((d) => d.kind === "worker-lost").map((d) => d.kind === "worker-lost" && d.workerId)).toEqual(["w1"]);
    expect(forgetUnregistered(s, log.now + 3001, cfg)).toHaveLength(100);
    expect([...s.workers.keys()]).toEqual(["w1"]);
  });

  it("takes no silence from before the master could see for evidence: a full window from then on", () => {
    const { s, log } = running();
    // Silent for 10 s and the lease long lapsed, but the master has been leading and connected only for 2.9 s.
    const now = log.now + 10_000;
    expect(decide(s, now, cfg, undefined, now - 2900)).toEqual([]);
    // Three intervals after it could see again, the worker is lost; the lease lapses leaseMs after that moment.
    expect(decide(s, now + 101, cfg, undefined, now - 2900).map((d) => d.kind)).toEqual(["worker-lost", "requeue"]);
    s.workers.get("w1")!.lastSeenMs = now + 4000;
    expect(decide(s, now + 4000, cfg, undefined, now - 1000)).toEqual([]);
    expect(decide(s, now + 4001, cfg, undefined, now - 1000)).toEqual([expect.objectContaining({ kind: "requeue", reason: "lease-expired" })]);
  });

  it("requeues a running job whose lease lapsed while its worker still heartbeats", () => {
    const { s, log } = running();
    s.workers.get("w1")!.lastSeenMs = log.now + 5500;
    const d = decide(s, log.now + 5001 + 500, cfg);
    expect(d).toEqual([expect.objectContaining({ kind: "requeue", reason: "lease-expired", attempt: 2 })]);
  });

  it("marks a job dead once its attempts are spent, and requeues a retryable failure before that", () => {
    const { s, log } = running(1);
    log.add("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: { message: "boom", retryable: true } });
    expect(decide(s, log.now, cfg)).toEqual([{ kind: "dead", jobId: "j", reason: "gave up after 1 of 1 attempt: the last failed with an error worth retrying", attempts: 1, lastError: { message: "boom", retryable: true } }]);
    const two = running(2);
    two.log.add("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: { message: "boom", retryable: true } });
    expect(decide(two.s, two.log.now, cfg)).toEqual([expect.objectContaining({ kind: "requeue", reason: "failed-retryable", attempt: 2 })]);
  });

  it("counts a retry's backoff from the failure when this master's clock estimate lags it, at most the clock tolerance ahead", () => {
    const failAt = (ms: number) => {
      const r = running(2);
      r.log.add("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: { message: "boom", retryable: true } });
      r.s.jobs.get("j")!.finishedAt = new Date(r.log.now + ms).toISOString();
      return r;
    };
    const lagging = failAt(2);
    expect(decide(lagging.s, lagging.log.now, cfg)).toEqual([expect.objectContaining({ kind: "requeue", notBeforeMs: lagging.log.now + 2 + 100 })]);
    const earlier = failAt(-50);
    expect(decide(earlier.s, earlier.log.now, cfg)).toEqual([expect.objectContaining({ kind: "requeue", notBeforeMs: earlier.log.now + 100 })]);
    const future = failAt(3_600_000);
    expect(decide(future.s, future.log.now, cfg)).toEqual([expect.objectContaining({ kind: "requeue", notBeforeMs: future.log.now + 1000 + 100 })]);
  });

  it("counts backoffs from the server's time now while silences are judged as of a fold that lags behind it", () => {
    const lapsed = running();
    // Judged as of what the fold has read (the lease lapsed by then), scheduled from now, 3 s later.
    const judged = lapsed.log.now + 5001 + 500;
    lapsed.s.workers.get("w1")!.lastSeenMs = judged;
    expect(decide(lapsed.s, judged, cfg, undefined, undefined, judged + 3000)).toEqual([expect.objectContaining({ kind: "requeue", reason: "lease-expired", notBeforeMs: judged + 3000 + 100 })]);
    const failed = running(2);
    failed.log.add("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: { message: "boom", retryable: true } });
    // The failure lies 2 s past the lagging judgement: the backoff counts from the failure, not from the lag plus the 1 s cap.
    const now = failed.log.now;
    expect(decide(failed.s, now - 2000, cfg, undefined, undefined, now)).toEqual([expect.objectContaining({ kind: "requeue", reason: "failed-retryable", notBeforeMs: now + 100 })]);
  });

  it("leaves a final failure alone and kills a waiting job past expiresAt", () => {
    const { s, log } = running();
    log.add("job.failed", { jobId: "j", workerId: "w1", attempt: 1, error: { message: "bad url", retryable: false } });
    log.add("job.submitted", { jobId: "exp", spec: { ...SPEC, expiresAt: new Date(log.now + 10).toISOString() } });
    s.workers.get("w1")!.lastSeenMs = log.now + 100;
    expect(decide(s, log.now + 5, cfg)).toEqual([]);
    expect(decide(s, log.now + 20, cfg)).toEqual([expect.objectContaining({ kind: "dead", jobId: "exp", attempts: 0 })]);
  });
});

describe("refused attempts", () => {
  it("are not spent: a job refused once still has its full budget", () => {
    const { s, log } = running(2);
    log.add("job.requeued", { jobId: "j", attempt: 2, previousAttempt: 1, reason: "worker-refused", notBefore: new Date(log.now).toISOString(), epoch: 1 });
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: 2, epoch: 1 });
    log.add("job.failed", { jobId: "j", workerId: "w1", attempt: 2, error: { message: "boom", retryable: true } });
    expect(decide(s, log.now, cfg)).toEqual([expect.objectContaining({ kind: "requeue", reason: "failed-retryable", attempt: 3 })]);
  });
});

describe("a worker that restarted", () => {
  it("no longer runs the attempts of its old instance: they are requeued at once", () => {
    const { s, log } = running();
    log.add("worker.registered", { ...registration("w1"), instanceId: "i-w1-second" });
    expect(decide(s, log.now, cfg)).toEqual([expect.objectContaining({ kind: "requeue", jobId: "j", reason: "worker-lost", attempt: 2 })]);
  });
});

describe("the last attempt number", () => {
  /** A job assigned at `attempt` after that many refusals (refusals spend no attempt). */
  function refusedUpTo(attempt: number) {
    const s = emptyState();
    const log = logBuilder(s);
    log.add("worker.registered", registration("w1"));
    log.add("job.submitted", { jobId: "j", spec: SPEC });
    for (let a = 1; a < attempt; a++) {
      log.add("job.assigned", { jobId: "j", workerId: "w1", attempt: a, epoch: 1 });
      log.add("job.requeued", { jobId: "j", attempt: a + 1, previousAttempt: a, previousWorkerId: "w1", reason: "worker-refused", notBefore: new Date(log.now).toISOString(), epoch: 1 });
    }
    log.add("job.assigned", { jobId: "j", workerId: "w1", attempt, epoch: 1 });
    return { s, log, job: s.jobs.get("j")! };
  }

  it("requeues a refused job to the next worker at once, and after a backoff once every worker refused", () => {
    const { s, log, job } = refusedUpTo(3);
    expect(afterRefusal(s, job, "w1", "full", false, log.now, cfg)).toEqual({ kind: "requeue", jobId: "j", attempt: 4, previousAttempt: 3, previousWorkerId: "w1", reason: "worker-refused", notBeforeMs: log.now });
    expect(afterRefusal(s, job, "w1", "full", true, log.now, cfg)).toMatchObject({ kind: "requeue", attempt: 4, notBeforeMs: log.now + backoffDelay(3, cfg) });
  });

  it("turns a job refused up to the contract's last attempt number dead instead of asking for an invalid requeue", () => {
    const { s, log, job } = refusedUpTo(ATTEMPT_MAX);
    const d = afterRefusal(s, job, "w1", "invalid", false, log.now, cfg);
    expect(d).toMatchObject({ kind: "dead", jobId: "j", attempts: 1, lastError: { code: "refused", retryable: false } });
    expect(d.kind === "dead" && d.reason).toMatch(/refused 1000 times by the workers, last by w1: invalid; attempt number 1000 is the last/);
    // A lapsed lease at that number ends the same way, though attempts remain in the budget.
    expect(retryOrDead(s, job, "lease-expired", log.now, cfg)).toMatchObject({ kind: "dead", reason: expect.stringMatching(/attempt number 1000 is the last/) });
    // One number below, both still requeue.
    const below = refusedUpTo(ATTEMPT_MAX - 1);
    expect(afterRefusal(below.s, below.job, "w1", "invalid", false, below.log.now, cfg)).toMatchObject({ kind: "requeue", attempt: ATTEMPT_MAX });
    expect(retryOrDead(below.s, below.job, "lease-expired", below.log.now, cfg)).toMatchObject({ kind: "requeue", attempt: ATTEMPT_MAX });
  });
});
