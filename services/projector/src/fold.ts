import {
  countJobOutcome, emptyFleetMinute, evolveFleetMinute, evolveJob, evolveWorker, minuteOf,
  type FleetMinute, type FleetSample, type JobView, type TroupeEvent, type WorkerMinute, type WorkerView,
} from "@troupe/events";

/**
 * Routes one decoded event through the shared reducers into the read models.
 * The storage behind `ViewStore` is the projector's SQLite writer (or a Map in
 * unit tests); this module holds no I/O and no clock.
 */

export interface ViewStore {
  job(id: string): JobView | undefined;
  putJob(job: JobView): void;
  worker(id: string): WorkerView | undefined;
  putWorker(worker: WorkerView): void;
  fleetMinute(minute: number): FleetMinute | undefined;
  putFleetMinute(m: FleetMinute): void;
  workerMinute(workerId: string, minute: number): WorkerMinute | undefined;
  putWorkerMinute(m: WorkerMinute): void;
}

export type FoldResult = { ok: true } | { ok: false; reason: string; detail: string };

/**
 * Skips that ordinary races make (a worker's report landing after its job was cancelled or requeued, a deposed
 * master's last decision): logged as information. Everything else (invalid bodies, a wrong worker or token) is a warning.
 */
export function isExpectedSkip(reason: string): boolean {
  return reason === "stale-attempt" || reason === "stale-epoch" || reason === "invalid-transition";
}

const OK: FoldResult = { ok: true };

export interface FoldOptions {
  /** Series samples of minutes before this (epoch ms) are dropped: they are outside the kept window. */
  seriesCutoffMs: number;
}

function addFleet(store: ViewStore, time: string, sample: FleetSample, o: FoldOptions): void {
  const minute = minuteOf(time);
  if (minute < o.seriesCutoffMs) return;
  store.putFleetMinute(evolveFleetMinute(store.fleetMinute(minute) ?? emptyFleetMinute(minute), sample));
}

function addWorkerMinute(store: ViewStore, workerId: string, time: string | number, o: FoldOptions, f: (m: WorkerMinute) => void): void {
  const minute = typeof time === "number" ? time : minuteOf(time);
  if (minute < o.seriesCutoffMs) return;
  const m = { ...(store.workerMinute(workerId, minute) ?? { workerId, minute, cpuSum: 0, memorySum: 0, samples: 0, completed: 0, failed: 0 }) };
  f(m);
  store.putWorkerMinute(m);
}

/**
 * What of a heartbeat counts once a later heartbeat of the same worker will
 * overwrite everything it sets in the worker's view: its series sample. A
 * rebuild batch knows which heartbeats those are (`BatchPacker`) and folds
 * them with `foldHeartbeatSample` instead of parsing them again.
 */
export interface HeartbeatSample {
  workerId: string;
  /** minuteOf(event.time). */
  minute: number;
  cpuUsage: number;
  memoryUsage: number;
}

/** The series part of `foldEvent` for a heartbeat, alone (see HeartbeatSample). */
export function foldHeartbeatSample(store: ViewStore, s: HeartbeatSample, o: FoldOptions): void {
  addWorkerMinute(store, s.workerId, s.minute, o, (m) => {
    m.cpuSum += s.cpuUsage;
    m.memorySum += s.memoryUsage;
    m.samples++;
  });
}

/** Folds one event; a rejected event changes nothing and says why. */
export function foldEvent(store: ViewStore, e: TroupeEvent, o: FoldOptions): FoldResult {
  if (e.type.startsWith("job.")) {
    const je = e as Extract<TroupeEvent, { type: `job.${string}` }>;
    const before = store.job(je.data.jobId);
    const r = evolveJob(before, je);
    if (!r.ok) return { ok: false, reason: r.reason, detail: r.detail };
    store.putJob(r.job);
    switch (je.type) {
      case "job.submitted":
        addFleet(store, je.time, { kind: "submitted" }, o);
        break;
      case "job.assigned": {
        // Waiting started when the job (re)entered the queue, or when it became runnable if that is later.
        const queuedAt = Math.max(Date.parse((before as JobView).updatedAt), before?.notBefore ? Date.parse(before.notBefore) : 0);
        addFleet(store, je.time, { kind: "assigned", queueWaitMs: Math.max(0, Date.parse(je.time) - queuedAt) }, o);
        break;
      }
      case "job.completed":
      case "job.failed": {
        const runTimeMs = r.job.duration;
        addFleet(store, je.time, je.type === "job.completed" ? { kind: "completed", runTimeMs: runTimeMs ?? 0 } : { kind: "failed", ...(runTimeMs !== undefined ? { runTimeMs } : {}) }, o);
        store.putWorker(countJobOutcome(store.worker(je.data.workerId), je));
        addWorkerMinute(store, je.data.workerId, je.time, o, (m) => (je.type === "job.completed" ? m.completed++ : m.failed++));
        break;
      }
    }
    return OK;
  }
  const we = e as Extract<TroupeEvent, { type: `worker.${string}` }>;
  store.putWorker(evolveWorker(store.worker(we.data.workerId), we));
  if (we.type === "worker.heartbeat") {
    const metrics = we.data.metrics;
    foldHeartbeatSample(store, { workerId: we.data.workerId, minute: minuteOf(we.time), cpuUsage: metrics.cpuUsage, memoryUsage: metrics.memoryUsage }, o);
  }
  return OK;
}
