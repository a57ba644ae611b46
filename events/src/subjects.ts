import { isValidId } from "./ids.ts";

export const DEFAULT_PREFIX = "troupe";

export const WORKER_EVENT_KINDS = ["registered", "draining", "deregistered", "lost"] as const;
export const JOB_EVENT_KINDS = [
  "submitted",
  "assigned",
  "started",
  "progress",
  "completed",
  "failed",
  "requeued",
  "cancelled",
  "dead",
] as const;
export type WorkerEventKind = (typeof WORKER_EVENT_KINDS)[number];
export type JobEventKind = (typeof JOB_EVENT_KINDS)[number];
export const WORKER_COMMAND_KINDS = ["assign", "cancel", "drain", "resume"] as const;
export type WorkerCommandKind = (typeof WORKER_COMMAND_KINDS)[number];
export const RPC_KINDS = ["jobs.submit", "jobs.cancel", "jobs.retry", "workers.drain", "workers.resume", "attempts.check"] as const;
export type RpcKind = (typeof RPC_KINDS)[number];

/** Where a parsed subject points. */
export type ParsedSubject =
  | { kind: "worker-event"; workerId: string; event: WorkerEventKind }
  | { kind: "job-event"; jobId: string; event: JobEventKind }
  | { kind: "heartbeat"; workerId: string }
  | { kind: "worker-command"; workerId: string; command: WorkerCommandKind }
  | { kind: "rpc"; rpc: RpcKind };

function checkId(id: string, what: string): string {
  if (!isValidId(id)) throw new Error(`invalid ${what} for a subject token: ${JSON.stringify(id)}`);
  return id;
}

/** What subjectsFor made, to tell its objects from look-alikes (or ones whose builders were swapped since). */
const built = new WeakMap<object, { prefix: string; worker: unknown; job: unknown; heartbeat: unknown }>();

/** Subject builders and parsers for one prefix (DESIGN.md, "Subjects"). */
export function subjectsFor(prefix = DEFAULT_PREFIX) {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new Error(`invalid subject prefix ${JSON.stringify(prefix)}: dot-separated tokens of [A-Za-z0-9_-]`);
  }
  const p = prefix;
  const prefixTokens = p.split(".").length;
  const s = {
    prefix: p,
    /** All events (the TROUPE_EVENTS stream). */
    allEvents: `${p}.evt.>`,
    /** All heartbeats (the TROUPE_HEARTBEATS stream). */
    allHeartbeats: `${p}.hb.>`,
    worker: (workerId: string, event: WorkerEventKind) => `${p}.evt.worker.${checkId(workerId, "worker id")}.${event}`,
    workerEvents: (workerId: string) => `${p}.evt.worker.${checkId(workerId, "worker id")}.*`,
    job: (jobId: string, event: JobEventKind) => `${p}.evt.job.${checkId(jobId, "job id")}.${event}`,
    jobEvents: (jobId: string) => `${p}.evt.job.${checkId(jobId, "job id")}.*`,
    heartbeat: (workerId: string) => `${p}.hb.${checkId(workerId, "worker id")}`,
    workerCommand: (workerId: string, command: WorkerCommandKind) =>
      `${p}.worker.${checkId(workerId, "worker id")}.${command}`,
    rpc: (rpc: RpcKind) => `${p}.rpc.${rpc}`,

    /** Parses a subject of this prefix; null when it is not one of ours. */
    parse(subject: string): ParsedSubject | null {
      const t = subject.split(".");
      if (t.slice(0, prefixTokens).join(".") !== p) return null;
      const r = t.slice(prefixTokens);
      if (r[0] === "evt" && r.length === 4) {
        const [, entity, id, ev] = r as [string, string, string, string];
        if (!isValidId(id)) return null;
        if (entity === "worker" && (WORKER_EVENT_KINDS as readonly string[]).includes(ev)) {
          return { kind: "worker-event", workerId: id, event: ev as WorkerEventKind };
        }
        if (entity === "job" && (JOB_EVENT_KINDS as readonly string[]).includes(ev)) {
          return { kind: "job-event", jobId: id, event: ev as JobEventKind };
        }
        return null;
      }
      if (r[0] === "hb" && r.length === 2 && isValidId(r[1])) return { kind: "heartbeat", workerId: r[1] as string };
      if (r[0] === "worker" && r.length === 3 && isValidId(r[1])) {
        const c = r[2] as string;
        if ((WORKER_COMMAND_KINDS as readonly string[]).includes(c)) {
          return { kind: "worker-command", workerId: r[1] as string, command: c as WorkerCommandKind };
        }
        return null;
      }
      if (r[0] === "rpc" && r.length === 3) {
        const rpc = `${r[1]}.${r[2]}`;
        if ((RPC_KINDS as readonly string[]).includes(rpc)) return { kind: "rpc", rpc: rpc as RpcKind };
      }
      return null;
    },
  };
  built.set(s, { prefix: p, worker: s.worker, job: s.job, heartbeat: s.heartbeat });
  return s;
}

/**
 * The prefix of a Subjects made by subjectsFor whose prefix and event subject builders
 * (worker, job, heartbeat) are still its own, so `${prefix}.evt.job.${id}.${kind}` etc. is
 * exactly what they build; undefined for anything else.
 */
export function standardPrefix(s: Subjects): string | undefined {
  const b = built.get(s);
  return b && b.prefix === s.prefix && b.worker === s.worker && b.job === s.job && b.heartbeat === s.heartbeat ? b.prefix : undefined;
}

export type Subjects = ReturnType<typeof subjectsFor>;
/** Subjects under the default `troupe` prefix. */
export const subjects: Subjects = subjectsFor();
