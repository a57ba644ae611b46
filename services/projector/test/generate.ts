import type { JetStreamClient } from "@nats-io/jetstream";
import { createEvent, type EventData, type EventType, type TroupeEvent } from "@troupe/events";
import { publishEvent } from "@troupe/events/node";

/**
 * Realistic event streams for the kill test and the benchmark: registrations,
 * heartbeats and job lifecycles over many workers, with failures, lost-worker
 * requeues and late (stale) completions. Seeded, so a run is repeatable.
 */

export interface GenerateOptions {
  workers: number;
  /** Events to produce (heartbeats included). */
  events: number;
  /** Simulated time of the first event (epoch ms). */
  startMs: number;
  /** Simulated ms between events. */
  stepMs?: number;
  seed?: number;
  /** Share of events that are heartbeats (default 0.5). */
  heartbeatShare?: number;
  /** Prefix of ids, so runs into the same streams do not collide. */
  idPrefix?: string;
}

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

interface Job {
  id: string;
  worker: string;
  attempt: number;
  step: "submitted" | "assigned" | "started" | "progress" | "requeued";
  progress: number;
}

const spec = (i: number) => ({ url: `https://shop.example.com/item/${i}`, priority: 1 + (i % 10), maxAttempts: 3, timeoutMs: 60_000, tags: ["bench"] });
const caps = { maxConcurrentJobs: 4, memory: 8192, cpu: 4, supportedBrowsers: [{ name: "chromium", version: "120.0" }] };

export function* generateEvents(o: GenerateOptions): Generator<TroupeEvent> {
  const rand = rng(o.seed ?? 42);
  const step = o.stepMs ?? 10;
  const p = o.idPrefix ?? "";
  const hbShare = o.heartbeatShare ?? 0.5;
  let t = o.startMs;
  let n = 0;
  const ev = <T extends EventType>(type: T, data: EventData<T>, source: string): TroupeEvent => {
    t += step;
    n++;
    return createEvent(type, data, source, new Date(t)) as TroupeEvent;
  };
  const workers = Array.from({ length: o.workers }, (_, i) => `${p}w${i}`);
  for (const w of workers) {
    if (n >= o.events) return;
    yield ev("worker.registered", { workerId: w, instanceId: `${w}-1`, name: `worker ${w}`, type: "puppeteer", ip: `10.0.${Math.floor(workers.indexOf(w) / 250)}.${workers.indexOf(w) % 250}`, port: 3002, version: "0.1.0", capabilities: caps }, w);
  }
  const active: Job[] = [];
  const stale: { job: Job }[] = [];
  let nextJob = 0;
  let hbIdx = 0;
  while (n < o.events) {
    if (rand() < hbShare) {
      const w = workers[hbIdx++ % workers.length] as string;
      const mine = active.filter((j) => j.worker === w).length;
      yield ev("worker.heartbeat", {
        workerId: w, instanceId: `${w}-1`, status: mine > 0 ? "busy" : "online", currentJobs: mine, maxConcurrentJobs: 4, jobIds: [],
        metrics: { memoryUsage: 500 + Math.round(rand() * 3000), cpuUsage: Math.round(rand() * 1000) / 10, diskUsage: 35.5, networkUsage: Math.round(rand() * 100) / 10, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 300 },
        performance: { successRate: 95, averageJobDuration: 2500 },
      }, w);
      continue;
    }
    if (stale.length && rand() < 0.02) {
      const s = stale.pop() as { job: Job };
      yield ev("job.completed", { jobId: s.job.id, workerId: s.job.worker, attempt: s.job.attempt, result: { success: true, data: {}, dataExtracted: 0, screenshots: [], logs: [] }, metrics: { totalDuration: 5000, responseTime: 400, memoryUsed: 80 } }, s.job.worker);
      continue;
    }
    if (active.length < workers.length * 2 && (active.length === 0 || rand() < 0.25)) {
      const id = `${p}j${nextJob++}`;
      active.push({ id, worker: "", attempt: 1, step: "submitted", progress: 0 });
      yield ev("job.submitted", { jobId: id, spec: spec(nextJob) }, "master");
      continue;
    }
    const i = Math.floor(rand() * active.length);
    const j = active[i] as Job;
    switch (j.step) {
      case "submitted":
      case "requeued":
        j.worker = workers[Math.floor(rand() * workers.length)] as string;
        j.step = "assigned";
        yield ev("job.assigned", { jobId: j.id, workerId: j.worker, attempt: j.attempt, epoch: 1 }, "master");
        break;
      case "assigned":
        j.step = "started";
        yield ev("job.started", { jobId: j.id, workerId: j.worker, attempt: j.attempt }, j.worker);
        break;
      case "started":
      case "progress": {
        const r = rand();
        if (j.progress < 80 && r < 0.6) {
          j.step = "progress";
          j.progress += 20;
          yield ev("job.progress", { jobId: j.id, workerId: j.worker, attempt: j.attempt, progress: j.progress, currentStep: { index: j.progress / 20, type: "click" }, metrics: { elapsedMs: j.progress * 30 } }, j.worker);
        } else if (r < 0.03 && j.attempt < 3) {
          stale.push({ job: { ...j } });
          j.attempt++;
          j.step = "requeued";
          j.progress = 0;
          yield ev("job.requeued", { jobId: j.id, attempt: j.attempt, previousAttempt: j.attempt - 1, previousWorkerId: j.worker, reason: "lease-expired", notBefore: new Date(t).toISOString(), epoch: 1 }, "master");
        } else if (r < 0.12) {
          active.splice(i, 1);
          yield ev("job.failed", { jobId: j.id, workerId: j.worker, attempt: j.attempt, error: { message: "timeout waiting for selector #buy", code: "timeout", retryable: false }, metrics: { totalDuration: 1000 + Math.round(rand() * 5000) } }, j.worker);
        } else {
          active.splice(i, 1);
          yield ev("job.completed", {
            jobId: j.id, workerId: j.worker, attempt: j.attempt,
            result: { success: true, data: { title: `Item ${j.id}`, price: Math.round(rand() * 10000) / 100 }, dataExtracted: 2, screenshots: [], logs: [{ time: new Date(t).toISOString(), level: "info", message: "page loaded" }] },
            metrics: { totalDuration: 500 + Math.round(rand() * 4000), responseTime: 100 + Math.round(rand() * 900), memoryUsed: 50 + Math.round(rand() * 100) },
          }, j.worker);
        }
        break;
      }
    }
  }
}

const MASTER_TYPES = new Set(["worker.lost", "job.submitted", "job.assigned", "job.requeued", "job.cancelled", "job.dead"]);

/**
 * Publishes events with up to `window` acks outstanding per connection, through
 * the role that produces each. Master and worker events travel on two
 * connections, so the order in TROUPE_EVENTS is kept where it matters — per job
 * and per worker: an event waits for the previous event of the same job (or
 * worker) when that one went through the other connection and is not yet
 * acknowledged. Heartbeats (their own stream) never wait.
 */
export async function publishAll(events: Iterable<TroupeEvent>, js: { master: JetStreamClient; worker: JetStreamClient; heartbeats?: JetStreamClient }, window = 500, onCount?: (n: number) => void): Promise<number> {
  const lanes = { master: new Set<Promise<unknown>>(), worker: new Set<Promise<unknown>>(), hb: new Set<Promise<unknown>>() };
  const last = new Map<string, { lane: string; done: Promise<unknown> }>();
  let n = 0;
  for (const e of events) {
    const lane = e.type === "worker.heartbeat" ? "hb" : MASTER_TYPES.has(e.type) ? "master" : "worker";
    const key = lane === "hb" ? null : "jobId" in e.data ? `j:${e.data.jobId}` : `w:${e.data.workerId}`;
    const prev = key ? last.get(key) : undefined;
    if (prev && prev.lane !== lane) await prev.done;
    const set = lanes[lane];
    const client = lane === "hb" ? (js.heartbeats ?? js.worker) : js[lane];
    const p: Promise<unknown> = publishEvent(client, e).then(() => {
      set.delete(p);
      if (key && last.get(key)?.done === p) last.delete(key);
    });
    set.add(p);
    if (key) last.set(key, { lane, done: p });
    n++;
    if (onCount && n % 10_000 === 0) onCount(n);
    if (set.size >= window) await Promise.race(set);
  }
  await Promise.all([...lanes.master, ...lanes.worker, ...lanes.hb]);
  return n;
}
