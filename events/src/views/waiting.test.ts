import { describe, expect, it } from "vitest";
import { createEvent } from "../codec.ts";
import type { EventData, EventType, TroupeEvent } from "../events.ts";
import { evolveJob, type JobView } from "./job.ts";
import { whyWaiting } from "./waiting.ts";
import { evolveWorker, type WorkerView } from "./worker.ts";

const T0 = Date.parse("2026-12-01T09:00:00Z");
const ev = <T extends EventType>(type: T, data: EventData<T>, ms: number) => createEvent(type, data, "test", new Date(ms)) as TroupeEvent;
const spec = { priority: 5, maxAttempts: 3, timeoutMs: 60_000 };

function job(extra: Record<string, unknown> = {}): JobView {
  const r = evolveJob(undefined, ev("job.submitted", { jobId: "j", spec: { url: "https://example.com/", ...spec, ...extra }, epoch: 1 } as EventData<"job.submitted">, T0) as Extract<TroupeEvent, { type: `job.${string}` }>);
  if (!r.ok) throw new Error(r.reason);
  return r.job;
}

function worker(id: string, o: { labels?: string[]; browsers?: string[]; used?: number; slots?: number; beatMs?: number; draining?: boolean } = {}): WorkerView {
  const slots = o.slots ?? 2;
  let w = evolveWorker(undefined, ev("worker.registered", {
    workerId: id, instanceId: `i-${id}`, name: id, type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "1",
    capabilities: { maxConcurrentJobs: slots, memory: 1024, cpu: 2, supportedBrowsers: (o.browsers ?? ["chromium"]).map((name) => ({ name, version: "1" })), ...(o.labels ? { labels: o.labels } : {}) },
  }, T0 - 60_000) as Extract<TroupeEvent, { type: `worker.${string}` }>);
  const used = o.used ?? 0;
  w = evolveWorker(w, ev("worker.heartbeat", {
    workerId: id, instanceId: `i-${id}`, status: o.draining ? "draining" : used ? "busy" : "online", currentJobs: used, maxConcurrentJobs: slots, heartbeatMs: 5000,
    jobIds: Array.from({ length: used }, (_, i) => `x${i}`),
    metrics: { memoryUsage: 100, cpuUsage: 5, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
    performance: { successRate: 100, averageJobDuration: 0 },
  }, o.beatMs ?? T0) as Extract<TroupeEvent, { type: `worker.${string}` }>);
  return w;
}

describe("whyWaiting (troupe submit --wait)", () => {
  const now = T0 + 1000;

  it("names what no live worker has: labels, a browser", () => {
    expect(whyWaiting(job({ workerLabels: ["gpu"] }), [worker("a", { labels: ["eu"] })], now, 0)).toBe("asks for label gpu, which no live worker has");
    expect(whyWaiting(job({ browser: "webkit" }), [worker("a")], now, 0)).toBe('asks for browser "webkit", which no live worker has');
  });

  it("says when no worker is live: none heartbeating lately, or only draining ones", () => {
    expect(whyWaiting(job(), [], now, 0)).toBe("no live worker: none has sent a heartbeat lately");
    expect(whyWaiting(job(), [worker("a", { draining: true })], now, 0)).toBe("no live worker takes jobs: the ones heartbeating are draining");
  });

  it("says when the workers that could take it have gone quiet (suspect), which take nothing meanwhile", () => {
    expect(whyWaiting(job(), [worker("a", { beatMs: T0 - 60_000 })], now, 0)).toBe("the worker that can take it has gone quiet (suspect: no heartbeat for two of its intervals)");
    expect(whyWaiting(job(), [worker("a", { beatMs: T0 - 60_000 }), worker("b")], now, 0)).toBeNull();
  });

  it("says every worker that could take it is busy, counting only those (a full worker without its label is no reason)", () => {
    const ws = [worker("a", { labels: ["eu"], used: 2 }), worker("b", { labels: ["eu"], used: 1, slots: 1 }), worker("c", { used: 0 })];
    expect(whyWaiting(job({ workerLabels: ["eu"] }), ws, now, 0)).toBe("every live worker that can take it is busy (2 workers, 3 of 3 slots in use)");
    expect(whyWaiting(job(), ws, now, 0)).toBeNull();
  });

  it("says when it is not due yet: runAt in the future", () => {
    expect(whyWaiting(job({ runAt: "2026-12-01T10:30:00.000Z" }), [worker("a")], now, 0)).toBe("scheduled (runAt), not before 10:30:00 UTC");
    expect(whyWaiting(job({ runAt: "2026-12-01T08:00:00.000Z" }), [worker("a")], now, 0)).toBeNull();
    expect(whyWaiting({ ...job(), status: "requeued", notBefore: "2026-12-01T09:00:31.000Z" }, [worker("a")], now, 0)).toBe("retried after a backoff, not before 09:00:31 UTC");
  });

  it("says nothing of a job that is not waiting", () => {
    const j = job({ workerLabels: ["gpu"] });
    expect(whyWaiting({ ...j, status: "running" }, [], now, 0)).toBeNull();
  });
});
