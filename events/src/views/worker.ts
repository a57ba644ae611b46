import type { EventOf, TroupeEvent } from "../events.ts";
import type { Static } from "@sinclair/typebox";
import type { Capabilities } from "../payloads.ts";

/**
 * The worker read model, shared by the projector (SQLite rows) and the browser
 * (live updates). Pure and deterministic: every time comes from the event.
 *
 * Two streams feed a worker: TROUPE_EVENTS (lifecycle and the job outcomes it
 * produced) and TROUPE_HEARTBEATS (telemetry). A consumer may interleave them in
 * any order, so each stream only writes its own fields and the derived fields
 * (status, lastSeen, rates, and the telemetry shown) are a pure function of both
 * parts — the final view does not depend on the interleaving. Heartbeats are kept
 * per worker process (`heartbeats`), and the one shown is the registered
 * process's: which process is registered comes from the other stream.
 */

/** What a heartbeat tells of a worker's load and machine, as a view shows it. */
export interface WorkerTelemetry {
  currentJobs: number;
  /** Jobs the worker said it runs in its latest heartbeat. */
  jobIds: string[];
  /** Latest heartbeat metrics: cpu and disk in %, memory in MiB, network in Mbps. */
  cpu: number;
  memory: number;
  memoryTotal?: number;
  disk: number;
  network: number;
}

/** The latest heartbeat of one process (instance) of a worker. */
export interface HeartbeatPart extends WorkerTelemetry {
  instanceId: string;
  at: string;
  status: "online" | "busy" | "draining";
  maxJobs: number;
  heartbeatMs?: number;
}

/** How many processes' latest heartbeats a worker view keeps (a restart, a paused twin, the one before). */
export const HEARTBEAT_PARTS = 3;

/** Stored status. `suspect` is never stored: it is derived at read time from lastSeen (see `workerPresence`). */
export type WorkerStatusView = "online" | "busy" | "suspect" | "draining" | "offline" | "lost";
export const WORKER_STATUSES: readonly WorkerStatusView[] = ["online", "busy", "suspect", "draining", "offline", "lost"];

export type WorkerLifecycle = "registered" | "draining" | "deregistered" | "lost";

export interface WorkerView extends WorkerTelemetry {
  id: string;
  name: string;
  type: string;
  ip: string;
  port: number;
  version: string;
  instanceId?: string;
  capabilities?: Static<typeof Capabilities>;
  status: WorkerStatusView;
  maxJobs: number;
  /** Computed from the job events this worker produced (never its own claims). */
  jobsCompleted: number;
  jobsFailed: number;
  /** completed ÷ (completed + failed) × 100; 0 with no finished jobs. */
  successRate: number;
  /** Mean run time (ms) of its finished attempts that reported a duration. */
  averageJobDuration: number;
  /** Mean main-navigation response time (ms) of its completed attempts. */
  averageResponseTime: number;
  registeredAt?: string;
  /** Latest time anything was heard from or about the worker. */
  lastSeen?: string;

  // --- per-stream parts (the derived fields above are computed from these) ---
  /** From TROUPE_EVENTS: last lifecycle event and its time. */
  lifecycle?: WorkerLifecycle;
  lifecycleAt?: string;
  /** From TROUPE_EVENTS: time of the latest event the worker itself produced. */
  lastEventAt?: string;
  /**
   * From TROUPE_HEARTBEATS: the latest heartbeat of each of the worker's last HEARTBEAT_PARTS processes, the
   * latest folded first. The telemetry above (cpu … jobIds, currentJobs) and the four fields below are the
   * shown one's (`shownHeartbeat`): the registered process's, so another process with its id (one paused,
   * then resumed beside its replacement) does not make the view flip between the two.
   */
  heartbeats?: HeartbeatPart[];
  /** The shown heartbeat's status claim and time. */
  heartbeatStatus?: "online" | "busy" | "draining";
  lastHeartbeatAt?: string;
  /** From TROUPE_HEARTBEATS: the job slots the latest heartbeat claimed (maxJobs is the newer of it and the registration's). */
  heartbeatMaxJobs?: number;
  /** From TROUPE_HEARTBEATS: the worker's own heartbeat interval, when it says (its silence is judged by it). */
  heartbeatMs?: number;
  /** Accumulators for the averages. */
  durationSum: number;
  durationCount: number;
  responseTimeSum: number;
  responseTimeCount: number;
}

type WorkerEvent = Extract<TroupeEvent, { type: `worker.${string}` }>;
/** Job outcomes that count towards a worker's statistics; fold them only after `evolveJob` accepted them. */
export type WorkerJobOutcome = EventOf<"job.completed"> | EventOf<"job.failed">;

export function emptyWorker(id: string): WorkerView {
  return copyWorker({
    id, name: id, type: "", ip: "", port: 0, version: "", status: "offline", currentJobs: 0, maxJobs: 0, jobIds: [],
    cpu: 0, memory: 0, disk: 0, network: 0, jobsCompleted: 0, jobsFailed: 0, successRate: 0, averageJobDuration: 0, averageResponseTime: 0,
    durationSum: 0, durationCount: 0, responseTimeSum: 0, responseTimeCount: 0,
  });
}

/**
 * A copy with every key in one (the canonical) order, absent optional fields
 * `undefined`: every view the reducers return has this one object shape, so
 * copies are cheap, and its JSON has one key order whichever stream set a field first.
 */
function copyWorker(w: WorkerView): WorkerView {
  return {
    id: w.id, name: w.name, type: w.type, ip: w.ip, port: w.port, version: w.version, instanceId: w.instanceId, capabilities: w.capabilities,
    status: w.status, currentJobs: w.currentJobs, maxJobs: w.maxJobs, jobIds: w.jobIds, cpu: w.cpu, memory: w.memory, memoryTotal: w.memoryTotal,
    disk: w.disk, network: w.network, jobsCompleted: w.jobsCompleted, jobsFailed: w.jobsFailed, successRate: w.successRate,
    averageJobDuration: w.averageJobDuration, averageResponseTime: w.averageResponseTime, registeredAt: w.registeredAt, lastSeen: w.lastSeen,
    lifecycle: w.lifecycle, lifecycleAt: w.lifecycleAt, lastEventAt: w.lastEventAt, heartbeatStatus: w.heartbeatStatus,
    heartbeats: w.heartbeats, lastHeartbeatAt: w.lastHeartbeatAt, heartbeatMaxJobs: w.heartbeatMaxJobs, heartbeatMs: w.heartbeatMs, durationSum: w.durationSum, durationCount: w.durationCount, responseTimeSum: w.responseTimeSum,
    responseTimeCount: w.responseTimeCount,
  };
}

/**
 * True when ISO time `b` is after `a`. Two times of the same day in the form
 * `toISOString` writes (`YYYY-MM-DDTHH:mm:ss.sssZ`) compare as strings, which
 * is what Date.parse would say; anything else is parsed.
 */
export function isoAfter(a: string, b: string): boolean {
  if (a.length === 24 && b.length === 24 && a.charCodeAt(23) === 90 && b.charCodeAt(23) === 90 && a.charCodeAt(19) === 46 && b.charCodeAt(19) === 46 && a.slice(0, 11) === b.slice(0, 11)) return b > a;
  return Date.parse(b) > Date.parse(a);
}

const later = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined ? b : b === undefined ? a : isoAfter(a, b) ? b : a;

/** Status from both parts: a lifecycle verdict wins unless a newer heartbeat contradicts a `lost`. */
export function deriveWorkerStatus(w: Pick<WorkerView, "lifecycle" | "lifecycleAt" | "heartbeatStatus" | "lastHeartbeatAt">): WorkerStatusView {
  const hbAfter = w.lastHeartbeatAt !== undefined && w.lifecycleAt !== undefined && isoAfter(w.lifecycleAt, w.lastHeartbeatAt);
  if (w.lifecycle === "deregistered") return "offline";
  if (w.lifecycle === "lost" && !hbAfter) return "lost";
  if (w.lifecycle === "draining") return "draining";
  // A draining heartbeat from before the latest registration is from before a resume (the same process registers
  // again to take jobs): the registration is newer news. One after it (a drain whose event never reached the log) holds.
  if (w.heartbeatStatus === "draining" && w.lifecycle === "registered" && !hbAfter) return "online";
  if (w.heartbeatStatus) return w.heartbeatStatus;
  return w.lifecycle === "registered" || w.lifecycle === "lost" ? "online" : "offline";
}

/**
 * The heartbeat a view shows: with no registration known, the latest folded; else the registered process's;
 * without one yet, the latest dated before that registration (the process it replaced, last known), else none.
 * The master judges presence the same way (services/master state.ts ignores other processes' heartbeats).
 */
export function shownHeartbeat(w: Pick<WorkerView, "heartbeats" | "instanceId" | "registeredAt">): HeartbeatPart | undefined {
  const parts = w.heartbeats;
  if (!parts?.length) return undefined;
  if (w.instanceId === undefined) return parts[0];
  const own = parts.find((p) => p.instanceId === w.instanceId);
  if (own) return own;
  const reg = w.registeredAt;
  return reg === undefined ? undefined : parts.find((p) => isoAfter(p.at, reg));
}

function derive(w: WorkerView): WorkerView {
  const hb = shownHeartbeat(w);
  w.heartbeatStatus = hb?.status;
  w.lastHeartbeatAt = hb?.at;
  w.heartbeatMaxJobs = hb?.maxJobs;
  w.heartbeatMs = hb?.heartbeatMs;
  w.currentJobs = hb?.currentJobs ?? 0;
  w.jobIds = hb?.jobIds ?? [];
  w.cpu = hb?.cpu ?? 0;
  w.memory = hb?.memory ?? 0;
  w.memoryTotal = hb?.memoryTotal;
  w.disk = hb?.disk ?? 0;
  w.network = hb?.network ?? 0;
  const finished = w.jobsCompleted + w.jobsFailed;
  w.status = deriveWorkerStatus(w);
  // A lost or departed worker runs nothing: its last heartbeat's jobs were requeued (lost) or finished (a stop drains).
  if (w.status === "lost" || w.status === "offline") {
    w.currentJobs = 0;
    w.jobIds = [];
  }
  w.successRate = finished === 0 ? 0 : (w.jobsCompleted / finished) * 100;
  w.averageJobDuration = w.durationCount === 0 ? 0 : w.durationSum / w.durationCount;
  w.averageResponseTime = w.responseTimeCount === 0 ? 0 : w.responseTimeSum / w.responseTimeCount;
  w.lastSeen = later(w.lastEventAt, w.lastHeartbeatAt);
  // By time, not by which stream was folded last (a rebuild folds the events before the heartbeats).
  const hbNewer = w.lastHeartbeatAt !== undefined && (w.registeredAt === undefined || isoAfter(w.registeredAt, w.lastHeartbeatAt));
  w.maxJobs = hbNewer ? (w.heartbeatMaxJobs ?? 0) : (w.capabilities?.maxConcurrentJobs ?? w.heartbeatMaxJobs ?? 0);
  return w;
}

/**
 * Folds a worker lifecycle event or a heartbeat into the worker's view (a new
 * object; the input is not changed).
 */
export function evolveWorker(view: WorkerView | undefined, event: WorkerEvent): WorkerView {
  const w: WorkerView = view ? copyWorker(view) : emptyWorker(event.data.workerId);
  const t = event.time;
  switch (event.type) {
    case "worker.registered": {
      const d = event.data;
      w.name = d.name;
      w.type = d.type;
      w.ip = d.ip;
      w.port = d.port;
      w.version = d.version;
      w.instanceId = d.instanceId;
      w.capabilities = d.capabilities;
      w.registeredAt = t;
      w.lifecycle = "registered";
      w.lifecycleAt = t;
      w.lastEventAt = later(w.lastEventAt, t);
      break;
    }
    case "worker.draining":
      // Another process with this worker id leaving (a paused twin, an old instance's slow stop after its
      // replacement registered) is not this worker's; the master judges it the same way (services/master state.ts).
      if (w.instanceId !== undefined && event.data.instanceId !== w.instanceId) break;
      w.lifecycle = "draining";
      w.lifecycleAt = t;
      w.lastEventAt = later(w.lastEventAt, t);
      break;
    case "worker.deregistered":
      if (w.instanceId !== undefined && event.data.instanceId !== w.instanceId) break;
      w.lifecycle = "deregistered";
      w.lifecycleAt = t;
      w.lastEventAt = later(w.lastEventAt, t);
      break;
    case "worker.lost":
      w.lifecycle = "lost";
      w.lifecycleAt = t;
      break;
    case "worker.heartbeat": {
      const d = event.data;
      const parts = w.heartbeats ?? [];
      const before = parts.find((p) => p.instanceId === d.instanceId);
      const m = d.metrics;
      // memoryTotal and heartbeatMs are optional: an absent one keeps what this process said before.
      const heartbeatMs = d.heartbeatMs ?? before?.heartbeatMs;
      const memoryTotal = m.memoryTotal ?? before?.memoryTotal;
      const part: HeartbeatPart = {
        instanceId: d.instanceId, at: t, status: d.status, currentJobs: d.currentJobs, maxJobs: d.maxConcurrentJobs,
        ...(heartbeatMs !== undefined ? { heartbeatMs } : {}), jobIds: d.jobIds,
        cpu: m.cpuUsage, memory: m.memoryUsage, ...(memoryTotal !== undefined ? { memoryTotal } : {}), disk: m.diskUsage, network: m.networkUsage,
      };
      // Heartbeats fold in their stream's order, wherever the events are: the parts do not depend on the interleaving.
      w.heartbeats = [part, ...parts.filter((p) => p.instanceId !== d.instanceId)].slice(0, HEARTBEAT_PARTS);
      break;
    }
  }
  return derive(w);
}

/** Counts an accepted job outcome towards the worker that produced it. */
export function countJobOutcome(view: WorkerView | undefined, event: WorkerJobOutcome): WorkerView {
  const w: WorkerView = view ? copyWorker(view) : emptyWorker(event.data.workerId);
  w.lastEventAt = later(w.lastEventAt, event.time);
  if (event.type === "job.completed") {
    w.jobsCompleted += 1;
    w.durationSum += event.data.metrics.totalDuration;
    w.durationCount += 1;
    w.responseTimeSum += event.data.metrics.responseTime;
    w.responseTimeCount += 1;
  } else {
    w.jobsFailed += 1;
    const m = event.data.metrics;
    if (m) {
      w.durationSum += m.totalDuration;
      w.durationCount += 1;
      if (m.responseTime !== undefined) {
        w.responseTimeSum += m.responseTime;
        w.responseTimeCount += 1;
      }
    }
  }
  return derive(w);
}

/**
 * The status to show at `nowMs`: an online or busy worker not heard from for
 * `suspectAfterMs` — or for two of its own heartbeat intervals, when those are
 * longer — is `suspect` (the master declares it `lost` later). Read-time only,
 * because it depends on the clock.
 */
export function workerPresence(w: Pick<WorkerView, "status" | "lastSeen" | "heartbeatMs">, nowMs: number, suspectAfterMs: number): WorkerStatusView {
  if ((w.status === "online" || w.status === "busy") && w.lastSeen !== undefined && nowMs - Date.parse(w.lastSeen) > suspectWindow(w, suspectAfterMs)) return "suspect";
  return w.status;
}

/** The heartbeat interval taken for a worker that does not state its own (the contract's default). */
export const UNSTATED_HEARTBEAT_MS = 30_000;

/**
 * How long a worker may be silent before it shows as suspect: two of its own heartbeat intervals (two missed, as the
 * master counts), never less than `suspectAfterMs`. 0 (the default everywhere) sets no floor: a worker that states
 * no interval is then taken at UNSTATED_HEARTBEAT_MS. The default was a fixed 90 s floor: `troupe workers` called a
 * worker of `troupe up` (10 s heartbeats) online for 90 s, its dashboard suspect after 20 s.
 */
export function suspectWindow(w: Pick<WorkerView, "heartbeatMs">, suspectAfterMs: number): number {
  return Math.max(suspectAfterMs, 2 * (w.heartbeatMs ?? (suspectAfterMs > 0 ? 0 : UNSTATED_HEARTBEAT_MS)));
}

/** The view with its keys in canonical order (for byte-identical storage: `JSON.stringify` leaves out the absent ones). */
export function canonicalWorker(w: WorkerView): WorkerView {
  return copyWorker(w);
}
