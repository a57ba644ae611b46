import type { FieldError } from "./errors.ts";
import { isValidId } from "./ids.ts";
import type { JobStatus } from "./views/job.ts";

/**
 * Bulk actions: retry or cancel every job that matches a filter of the read models, as the dashboard's
 * "Retry all" / "Cancel all" and `troupe retry|cancel --status` do. Each job is still one command to the
 * master, which decides it as it decides a single one; this module only parses the request and runs the
 * commands. Pure: no I/O, so the same code serves the UI server and the CLI.
 */

export type BulkAction = "retry" | "cancel";

/** The statuses each action takes; a filter must name at least one, and only these (a bulk action never runs on "every job"). */
export const BULK_STATUSES: Readonly<Record<BulkAction, readonly JobStatus[]>> = {
  retry: ["failed", "dead"],
  cancel: ["queued", "requeued", "assigned", "running"],
};

export const BULK_DEFAULT_LIMIT = 1000;
export const BULK_MAX_LIMIT = 10_000;
/** Commands in flight at once: enough to hide a round trip, few enough to leave the master room for its own work. */
export const BULK_CONCURRENCY = 8;
/** Refusals listed one by one in a summary; the rest are only counted. */
export const BULK_LISTED_REFUSALS = 20;
const MAX_Q = 200;
const MAX_REASON = 500;

export interface BulkFilter {
  status: JobStatus[];
  /** Part of an id, url or tag, as the Jobs page's search. */
  q?: string;
  workerId?: string;
}

export interface BulkRequest extends BulkFilter {
  /** At most this many jobs, newest first. */
  limit: number;
  /** Kept in the log with each cancellation (cancel only). */
  reason?: string;
  /** Only count and list the matching jobs; send nothing. */
  dryRun: boolean;
  /**
   * The jobs a person confirmed (a dry run's `jobIds`): only those of them that still match the filter are acted
   * on, so jobs that arrived between the dry run and the confirmation are not taken with them.
   */
  jobIds?: string[];
}

export type BulkParse = { ok: true; value: BulkRequest } | { ok: false; error: FieldError };

const fail = (path: string, message: string): BulkParse => ({ ok: false, error: { path, message } });

/** Validates a bulk request body (`POST /api/bulk/<action>`, or the CLI's flags gathered into one object). */
export function parseBulkRequest(action: BulkAction, body: unknown): BulkParse {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return fail("", "body must be a JSON object");
  const b = body as Record<string, unknown>;
  const known = ["status", "q", "workerId", "limit", "dryRun", "jobIds", ...(action === "cancel" ? ["reason"] : [])];
  for (const k of Object.keys(b)) if (!known.includes(k)) return fail(k, `unknown field; a bulk ${action} takes ${known.join(", ")}`);
  const allowed = BULK_STATUSES[action];
  const raw = typeof b.status === "string" ? [b.status] : b.status;
  if (raw === undefined) return fail("status", `required: which jobs to ${action} (${allowed.join(", ")}; several as a list)`);
  if (!Array.isArray(raw) || raw.length === 0 || raw.some((s) => typeof s !== "string")) {
    return fail("status", `expected a status or a non-empty list of them (${allowed.join(", ")})`);
  }
  for (const s of raw as string[]) {
    if (!(allowed as readonly string[]).includes(s)) return fail("status", `a bulk ${action} takes jobs that are ${allowed.join(", ")}; got ${JSON.stringify(s)}`);
  }
  const value: BulkRequest = { status: [...new Set(raw as JobStatus[])], limit: BULK_DEFAULT_LIMIT, dryRun: false };
  if (b.q !== undefined) {
    if (typeof b.q !== "string" || b.q.length > MAX_Q) return fail("q", `expected text of at most ${MAX_Q} characters`);
    // A search given blank (`--search "$TAG"` with TAG unset) must not widen the action to every job in the status.
    if (!b.q.trim()) return fail("q", "the search is blank: leave it out to take every job in the status, or give the text to look for");
    // A NUL ended SQLite's pattern there: "\u0000" matched every job.
    if (/[\u0000-\u001f\u007f]/.test(b.q)) return fail("q", "the search holds a control character");
    value.q = b.q.trim();
  }
  if (b.workerId !== undefined) {
    if (!isValidId(b.workerId)) return fail("workerId", `expected a worker id (1-64 characters of [A-Za-z0-9_-]), got ${JSON.stringify(b.workerId)}`);
    value.workerId = b.workerId;
  }
  if (b.limit !== undefined) {
    if (typeof b.limit !== "number" || !Number.isInteger(b.limit) || b.limit < 1 || b.limit > BULK_MAX_LIMIT) {
      return fail("limit", `expected a whole number from 1 to ${BULK_MAX_LIMIT}, got ${JSON.stringify(b.limit)}`);
    }
    value.limit = b.limit;
  }
  if (b.dryRun !== undefined) {
    if (typeof b.dryRun !== "boolean") return fail("dryRun", `expected true or false, got ${JSON.stringify(b.dryRun)}`);
    value.dryRun = b.dryRun;
  }
  if (b.jobIds !== undefined) {
    if (!Array.isArray(b.jobIds) || b.jobIds.length === 0 || b.jobIds.length > BULK_MAX_LIMIT) {
      return fail("jobIds", `expected a list of 1 to ${BULK_MAX_LIMIT} job ids (a dry run's jobIds)`);
    }
    const bad = b.jobIds.findIndex((id) => !isValidId(id));
    if (bad >= 0) return fail(`jobIds[${bad}]`, `expected a job id (1-64 characters of [A-Za-z0-9_-]), got ${JSON.stringify(b.jobIds[bad])}`);
    value.jobIds = [...new Set(b.jobIds as string[])];
  }
  if (b.reason !== undefined) {
    if (typeof b.reason !== "string" || b.reason.length > MAX_REASON) return fail("reason", `expected text of at most ${MAX_REASON} characters`);
    if (b.reason) value.reason = b.reason;
  }
  return { ok: true, value };
}

/**
 * Answers after which a bulk run stops sending (the CLI and the dashboard alike): no master, a silent one, one that
 * could not record it, a broken reply. Any other refusal is about that one job.
 */
export const BULK_STOP_CODES: ReadonlySet<string> = new Set(["unavailable", "timeout", "internal", "bad-gateway", "bad-reply"]);

/** What one job's command came to. `stop`: the master could not be asked (unreachable, silent), so asking about the next jobs is pointless. */
export type BulkItemOutcome = { ok: true } | { ok: false; code: string; message: string; stop?: boolean };

export interface BulkRefusal {
  jobId: string;
  code: string;
  message: string;
}

/** The ids to act on: the filter's matches, or of the confirmed `jobIds` those that still match (in the order given). */
export function bulkTargets(req: Pick<BulkRequest, "jobIds">, matching: readonly string[]): { ids: string[]; moved: number } {
  if (!req.jobIds) return { ids: [...matching], moved: 0 };
  const still = new Set(matching);
  const ids = req.jobIds.filter((id) => still.has(id));
  return { ids, moved: req.jobIds.length - ids.length };
}

export interface BulkSummary {
  /** Jobs the master recorded the action for. */
  done: number;
  /** Jobs the master refused (e.g. `conflict`: the job moved on since the read models were read). */
  refused: number;
  /** The first refusals, in the order the jobs were given. */
  refusals: BulkRefusal[];
  /**
   * Jobs neither done nor refused because the run stopped: never asked, or asked without an answer. Running
   * the same action again is the remedy: those done since no longer match the filter.
   */
  notDone: number;
  /** Why the run stopped before the end, when it did. */
  stopped?: { code: string; message: string };
}

/**
 * Runs `send` for each id, `concurrency` at a time, in order. The first outcome with `stop` ends the run:
 * no new command is sent, the ones in flight are awaited and counted. A `send` that throws counts as a stop.
 */
export async function runBulk(
  ids: readonly string[],
  send: (id: string) => Promise<BulkItemOutcome>,
  o: { concurrency?: number; listed?: number } = {},
): Promise<BulkSummary> {
  const listed = o.listed ?? BULK_LISTED_REFUSALS;
  const outcomes: (BulkItemOutcome | undefined)[] = new Array(ids.length);
  let next = 0;
  let stopped: BulkSummary["stopped"];
  const lane = async () => {
    while (!stopped && next < ids.length) {
      const i = next++;
      let r: BulkItemOutcome;
      try {
        r = await send(ids[i]!);
      } catch (e) {
        r = { ok: false, code: "internal", message: (e as Error).message, stop: true };
      }
      outcomes[i] = r;
      if (!r.ok && r.stop && !stopped) stopped = { code: r.code, message: r.message };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? BULK_CONCURRENCY, ids.length)) }, lane));
  const summary: BulkSummary = { done: 0, refused: 0, refusals: [], notDone: 0 };
  for (let i = 0; i < ids.length; i++) {
    const r = outcomes[i];
    if (!r || (!r.ok && r.stop)) summary.notDone++;
    else if (r.ok) summary.done++;
    else {
      summary.refused++;
      if (summary.refusals.length < listed) summary.refusals.push({ jobId: ids[i]!, code: r.code, message: r.message });
    }
  }
  if (stopped) summary.stopped = stopped;
  return summary;
}

/** One line for people: "retried 240 of 243 jobs; 3 refused" and why it stopped, if it did; `moved`: confirmed jobs that no longer matched. */
export function describeBulk(action: BulkAction, matched: number, s: BulkSummary, moved = 0): string {
  const verb = action === "retry" ? "retried" : "cancelled";
  const asked = matched + moved;
  const parts = [`${verb} ${s.done} of ${asked} job${asked === 1 ? "" : "s"}`];
  if (moved) parts.push(`${moved} no longer ${action === "retry" ? "failed or dead" : "waiting or running"}`);
  if (s.refused) parts.push(`${s.refused} refused`);
  if (s.notDone) parts.push(`${s.notDone} not done`);
  const line = parts.join("; ");
  return s.stopped ? `${line} — stopped: ${s.stopped.message}` : line;
}
