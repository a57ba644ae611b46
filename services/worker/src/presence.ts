import { hostname } from "node:os";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { isValidId } from "@troupe/events";

/**
 * Tells a restart from a duplicate: each live worker process answers on
 * `<prefix>.worker.<id>.presence` with its instance id. Before registering, a
 * new process asks; an answer from another instance means the id is taken.
 * (Worker-to-worker only; no other service reads it.)
 */
export interface PresenceInfo {
  workerId: string;
  instanceId: string;
  pid: number;
  host: string;
  startedAt: string;
}

export function presenceSubject(prefix: string, workerId: string): string {
  return `${prefix}.worker.${workerId}.presence`;
}

function parsePresence(data: Uint8Array): PresenceInfo | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(data)) as Partial<PresenceInfo>;
    if (isValidId(v.workerId) && isValidId(v.instanceId) && typeof v.pid === "number" && typeof v.host === "string" && typeof v.startedAt === "string") return v as PresenceInfo;
  } catch {
    // not ours
  }
  return null;
}

/** Throws a clear error when another live process already runs this worker id. */
export async function assertNoDuplicate(nc: NatsConnection, prefix: string, me: PresenceInfo, timeoutMs = 1000): Promise<void> {
  let reply;
  try {
    reply = await nc.request(presenceSubject(prefix, me.workerId), JSON.stringify(me), { timeout: timeoutMs });
  } catch (e) {
    // No responders or no answer: nobody else holds the id.
    if (/no responders|timeout|503/i.test((e as Error).message) || (e as Error).name === "NoRespondersError" || (e as Error).name === "TimeoutError") return;
    // A worker's own NATS user (troupe worker-user) may act only as its worker: the first denied subject is this one.
    if (/permissions violation/i.test((e as Error).message)) {
      throw new Error(`this NATS user may not act as worker ${JSON.stringify(me.workerId)} (${(e as Error).message}): a user from \`troupe worker-user add <id>\` works only with TROUPE_WORKER_ID=<id>`, { cause: e });
    }
    throw new Error(`presence check for worker ${me.workerId} failed: ${(e as Error).message}`, { cause: e });
  }
  const other = parsePresence(reply.data);
  if (other && other.instanceId !== me.instanceId) {
    throw new Error(
      `worker id ${JSON.stringify(me.workerId)} is already running (instance ${other.instanceId}, pid ${other.pid} on ${other.host}, since ${other.startedAt}); stop it, or give this worker another --name or --id [TROUPE_WORKER_ID]`,
    );
  }
}

/** Answers presence requests for this process. */
export function servePresence(nc: NatsConnection, prefix: string, me: PresenceInfo): Subscription {
  const body = JSON.stringify(me);
  return nc.subscribe(presenceSubject(prefix, me.workerId), { callback: (err, msg) => { if (!err) msg.respond(body); } });
}

export function presenceInfo(workerId: string, instanceId: string): PresenceInfo {
  return { workerId, instanceId, pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
}

/**
 * Another live process answering for this worker id, or null. Every reply within `timeoutMs` is read, since
 * this process answers on the subject too (used once running: after a reconnect, a process that was paused
 * may find it was replaced meanwhile).
 */
export async function findOtherInstance(nc: NatsConnection, prefix: string, me: PresenceInfo, timeoutMs = 1000): Promise<PresenceInfo | null> {
  let replies: AsyncIterable<{ data: Uint8Array }>;
  try {
    replies = await nc.requestMany(presenceSubject(prefix, me.workerId), JSON.stringify(me), { maxWait: timeoutMs });
  } catch {
    return null;
  }
  try {
    for await (const m of replies) {
      const other = parsePresence(m.data);
      if (other && other.instanceId !== me.instanceId) return other;
    }
  } catch {
    // no responders, or the wait ended: nobody else
  }
  return null;
}
