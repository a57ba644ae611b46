import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ID_MAX_LENGTH, isValidId } from "../ids.ts";
import { subjectsFor } from "../subjects.ts";
import { loadCredential, newPassword, passwordVar, userVar, type Credential } from "./credentials.ts";
import { writePrivateFile } from "./private-file.ts";
import { storeNames } from "./streams.ts";

/**
 * Per-worker NATS users (docs/security.md, "Per-worker users"). The shared
 * `worker` user of nats.conf may act for every worker id; a per-worker user
 * may only subscribe to its own worker's commands and inbox, publish its own
 * heartbeats and worker events, and write artifacts without reading any. They
 * live in `<data dir>/worker-users.json` (mode 0600) and are rendered into the
 * config nats-server runs (nats-conf.ts) at each start and on reload. Change them holding
 * `withNatsConfigLock` (nats-reload.ts), as `troupe worker-user` does.
 */
export interface WorkerUser extends Credential {
  workerId: string;
  createdAt: string;
}

/** The micro-service name every worker registers under (services/worker). */
export const WORKER_SERVICE_NAME = "troupe-worker";

export const workerUsersPath = (dataDir: string) => join(dataDir, "worker-users.json");

/** The NATS user name of a worker's own user. */
export const workerUserName = (workerId: string) => `worker-${workerId}`;

/**
 * Where a worker's replies arrive (nats.js `inboxPrefix`). Every worker uses it, so the same worker runs under
 * the shared user or its own; its own user may subscribe to nothing else under _INBOX, so it cannot read the
 * replies and consumer deliveries other clients get there.
 */
export const workerInboxPrefix = (workerId: string) => `_INBOX.w.${workerId}`;

function checkWorkerId(id: string): string {
  if (!isValidId(id)) throw new Error(`invalid worker id ${JSON.stringify(id)}: 1–${ID_MAX_LENGTH} characters of [A-Za-z0-9_-]`);
  return id;
}

/** Reads worker-users.json (none yet: an empty list); a malformed file is an error naming it, never read as empty. */
export function loadWorkerUsers(dataDir: string): WorkerUser[] {
  const file = workerUsersPath(dataDir);
  if (!existsSync(file)) return [];
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${file}: cannot be read (${(e as Error).message})`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // Not "or remove it": removing it drops every per-worker user at the next reload.
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); fix it (its users are cut off at the next reload without it)`, { cause: e });
  }
  const users = (parsed as { version?: unknown; users?: unknown } | null)?.users;
  if ((parsed as { version?: unknown } | null)?.version !== 1 || !Array.isArray(users)) throw new Error(`${file}: expected {"version": 1, "users": [...]}`);
  const seen = new Set<string>();
  return users.map((u: unknown, i) => {
    const w = u as Partial<WorkerUser> | null;
    const ok = w && isValidId(w.workerId)
      && w.user === workerUserName(w.workerId) && typeof w.password === "string" && /^[A-Za-z0-9_-]{16,200}$/.test(w.password)
      && typeof w.createdAt === "string";
    if (!ok) throw new Error(`${file}: users[${i}] is not a worker user (workerId, user "worker-<id>", password of [A-Za-z0-9_-], createdAt)`);
    if (seen.has(w.workerId as string)) throw new Error(`${file}: worker ${w.workerId} is listed twice`);
    seen.add(w.workerId as string);
    return { workerId: w.workerId, user: w.user, password: w.password, createdAt: w.createdAt } as WorkerUser;
  });
}

function saveWorkerUsers(dataDir: string, users: readonly WorkerUser[]): void {
  writePrivateFile(workerUsersPath(dataDir), `${JSON.stringify({ version: 1, users }, null, 2)}\n`);
}

/**
 * Adds a user for `workerId`, or with `rotate` gives an existing one a new password
 * (its connections are refused at the next reload). An existing user without `rotate` is an error:
 * printing its password again would invite copying one credential to several machines.
 */
export function addWorkerUser(dataDir: string, workerId: string, o: { rotate?: boolean; now?: Date } = {}): WorkerUser {
  checkWorkerId(workerId);
  const users = loadWorkerUsers(dataDir);
  const i = users.findIndex((u) => u.workerId === workerId);
  if (i >= 0 && !o.rotate) throw new Error(`worker ${workerId} already has a user (${workerUserName(workerId)}); --rotate gives it a new password`);
  const user: WorkerUser = { workerId, user: workerUserName(workerId), password: newPassword(), createdAt: (o.now ?? new Date()).toISOString() };
  saveWorkerUsers(dataDir, i >= 0 ? users.map((u, j) => (j === i ? user : u)) : [...users, user]);
  return user;
}

/**
 * The credential a worker connects with, and where it came from: the environment's
 * TROUPE_NATS_WORKER_USER/PASSWORD when set; else the worker's own user in the data dir's
 * worker-users.json (on the NATS machine: `troupe up`'s workers, or any started there with an id that has
 * one); else the shared worker user of credentials.env.
 */
export function workerCredential(dataDir: string, workerId: string, env: Record<string, string | undefined> = process.env): Credential & { from: "environment" | "own user" | "shared user"; problem?: string } {
  if (env[userVar("worker")] || env[passwordVar("worker")]) return { ...loadCredential("worker", dataDir, env), from: "environment" };
  let own: WorkerUser | undefined;
  let problem: string | undefined;
  try {
    own = loadWorkerUsers(dataDir).find((u) => u.workerId === workerId);
  } catch (e) {
    // A worker that never had its own user must not stop over that file (readable only by the NATS machine's
    // owner, or broken): it goes on as the shared user, and the caller says why.
    problem = (e as Error).message;
  }
  if (own) return { user: own.user, password: own.password, from: "own user" };
  return { ...loadCredential("worker", dataDir, env), from: "shared user", ...(problem ? { problem } : {}) };
}

/** Removes a worker's user; false when it had none. */
export function removeWorkerUser(dataDir: string, workerId: string): boolean {
  checkWorkerId(workerId);
  const users = loadWorkerUsers(dataDir);
  const kept = users.filter((u) => u.workerId !== workerId);
  if (kept.length === users.length) return false;
  saveWorkerUsers(dataDir, kept);
  return true;
}

/**
 * A per-worker user as a nats.conf `users` entry for a prefix: the shared worker user's permissions
 * narrowed to this worker id. Job events stay `evt.job.*.<kind>` (their subject names a job, not a
 * worker): the master folds one only from the worker its current assignment names (docs/security.md).
 * The object store is write-only: chunks and metadata, no reads, no purge, no stream info (which
 * would list every subject: job ids). Of the heartbeats it may read back its own last one (direct get). Replies only to requests it received (`allow_responses`), never
 * to any `_INBOX` subject: the master's reply subjects are predictable once one is seen, so a worker
 * allowed to publish on `_INBOX.>` could answer the master's next request to another worker.
 */
export function workerUserConf(prefix: string, u: Pick<WorkerUser, "workerId" | "user" | "password">, indent = "    "): string {
  const s = subjectsFor(prefix);
  const n = storeNames(prefix);
  const id = checkWorkerId(u.workerId);
  const q = (v: string) => JSON.stringify(v);
  const list = (xs: string[]) => xs.map(q).join(", ");
  const publish = [
    s.worker(id, "registered"), s.worker(id, "draining"), s.worker(id, "deregistered"),
    ...(["started", "progress", "completed", "failed"] as const).map((k) => `${prefix}.evt.job.*.${k}`),
    s.heartbeat(id), `${prefix}.worker.${id}.presence`,
    // A held attempt asks the leader whether it is still this worker's (the leader answers only about the worker named).
    s.rpc("attempts.check"),
    `$O.${n.artifacts}.C.*`, `$O.${n.artifacts}.M.*`,
    // Its own last heartbeat only: the server's stamp, to date its events when its clock is off.
    `$JS.API.DIRECT.GET.${n.heartbeats}.${s.heartbeat(id)}`,
  ];
  const subscribe = [
    s.workerCommand(id, "assign"), s.workerCommand(id, "cancel"), s.workerCommand(id, "drain"), s.workerCommand(id, "resume"), `${prefix}.worker.${id}.presence`,
    // Service discovery (`nats micro ls`): $SRV.<verb>, $SRV.<verb>.troupe-worker, $SRV.<verb>.troupe-worker.<service id>.
    "$SRV.*", `$SRV.*.${WORKER_SERVICE_NAME}`, `$SRV.*.${WORKER_SERVICE_NAME}.*`,
    `${workerInboxPrefix(id)}.>`,
  ];
  return [
    `${indent}{`,
    `${indent}  # Worker ${id} only (troupe worker-user; docs/security.md).`,
    `${indent}  user: ${q(u.user)}`,
    `${indent}  password: ${q(u.password)}`,
    `${indent}  allowed_connection_types: ["STANDARD"]`,
    `${indent}  permissions: {`,
    `${indent}    publish: { allow: [${list(publish)}] }`,
    `${indent}    subscribe: { allow: [${list(subscribe)}] }`,
    // One reply per request received, within 2 minutes (nats-server's defaults for `true`).
    `${indent}    allow_responses: true`,
    `${indent}  }`,
    `${indent}}`,
  ].join("\n");
}
