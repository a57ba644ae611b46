import type { NatsConnection } from "@nats-io/nats-core";
import {
  BULK_DEFAULT_LIMIT, BULK_MAX_LIMIT, BULK_STATUSES, BULK_STOP_CODES, decodeReply, describeBulk, parseBulkRequest, runBulk, subjectsFor, validateCommand,
  type BulkAction, type BulkItemOutcome, type CommandName,
} from "@troupe/events";
import {
  bool, connectAs, defineCommand, int, isOwnEarlierCancel, natsOptions, requestAgainOnTimeout, RPC_TRIES, str, terminalSafe, UsageError,
  type CliCommand, type OptionValues,
} from "@troupe/events/node";
import { dbPathFor } from "../../services/projector/src/db-file.ts";
import { matchingJobIds, openReadModels } from "../../services/projector/src/read-models.ts";

/**
 * `troupe cancel`, `troupe retry`, `troupe drain`, `troupe resume`: the master's commands from a shell, as the dashboard sends
 * them; cancel and retry also in bulk, for every job of the read models in a status (`--status`).
 */

type AckName = Extract<CommandName, "jobs.cancel" | "jobs.retry" | "workers.drain" | "workers.resume">;

const workerCommandDetails = "Exit 0 when the worker did it (the master passes it on), 1 when it was refused (e.g. an unknown worker, or one shutting down) or no answer came, 2 on bad input.";

function workerIdOf(positionals: readonly string[]): string {
  const id = positionals[0];
  if (id === undefined) throw new UsageError("give the worker id");
  return id;
}

const baseOptions = {
  ...natsOptions,
  answerTimeout: int("how long to wait for the master's answer (a cancel or a drain is asked again, up to 3 times), and for a master to listen when none does (one restarting)", { default: 10_000, min: 100, max: 600_000, metavar: "<ms>" }),
} as const;
const reason = { reason: str("why, kept in the log", { metavar: "<text>" }) } as const;

/** Flags only (no environment variables): a filter left in a shell's environment must never widen a later command. */
const bulkOptions = (action: BulkAction) => ({
  status: str(`instead of a job id: every job in this status (comma-separated for several: ${BULK_STATUSES[action].join(", ")})`, { metavar: "<status>" }),
  search: str("with --status: only jobs whose id, url or tag contains this", { metavar: "<text>" }),
  worker: str("with --status: only jobs of this worker", { metavar: "<id>" }),
  limit: int("with --status: at most this many jobs, newest first", { default: BULK_DEFAULT_LIMIT, min: 1, max: BULK_MAX_LIMIT }),
  dryRun: bool("with --status: print the matching job ids, send nothing", { default: false }),
  db: str("with --status: the read-model database to choose jobs from (default <data dir>/readmodels.sqlite)", { env: "TROUPE_PROJECTOR_DB", metavar: "<file>" }),
});

type Values = OptionValues<typeof baseOptions>;

/** What the masters answered (`stop`: no master could be asked, as a bulk run reads it). */
async function ask(nc: NatsConnection, rpc: AckName, body: Record<string, unknown>, v: Values): Promise<BulkItemOutcome> {
  const subject = subjectsFor(v.prefix).rpc(rpc);
  let askedAgain = false;
  let data: Uint8Array;
  try {
    // A retry is asked once: redriving again is not a no-op once the first try was recorded.
    data = (await requestAgainOnTimeout(nc, subject, JSON.stringify(body), {
      timeoutMs: v.answerTimeout, tries: rpc === "jobs.retry" ? 1 : RPC_TRIES, onRetry: () => (askedAgain = true),
      // Nothing is recorded while no master listens (one restarting): waiting for one is safe for every command.
      waitForResponderMs: v.answerTimeout,
    })).data;
  } catch (e) {
    return { ok: false, code: "unavailable", message: `no answer from a master on ${subject}: ${(e as Error).message} (is \`troupe master\` running?)`, stop: true };
  }
  const r = decodeReply("ack", data);
  if (!r.ok) return { ok: false, code: "bad-reply", message: `invalid reply from the master: ${r.error.message}`, stop: true };
  if (r.value.ok || isOwnEarlierCancel(rpc, askedAgain, r.value.error)) return { ok: true };
  const e = r.value.error;
  return { ok: false, code: e.code, message: `${e.field ? `${e.field}: ` : ""}${e.message}`, stop: BULK_STOP_CODES.has(e.code) };
}

async function connect(rpc: string, v: Values): Promise<NatsConnection> {
  return connectAs({ url: v.natsUrl, ca: v.natsCa, role: "ui", dataDir: v.dataDir, name: `troupe-${rpc}` });
}

/** What a command did, said once it is done (it printed nothing: a new user could not tell it from a no-op). */
function doneLine(rpc: AckName, body: Record<string, unknown>): string {
  const id = String(body.jobId ?? body.workerId);
  switch (rpc) {
    case "jobs.cancel": return `job ${id} cancelled`;
    case "jobs.retry": return `job ${id} redriven: a new attempt is queued`;
    case "workers.drain": return `worker ${id} draining: it takes no new jobs and finishes the ones it runs (troupe resume ${id} undoes it)`;
    case "workers.resume": return `worker ${id} takes jobs again`;
  }
}

async function send(rpc: AckName, body: Record<string, unknown>, v: Values): Promise<number> {
  const checked = validateCommand(rpc, body);
  if (!checked.ok) throw new UsageError(`${checked.error.path || rpc}: ${checked.error.message}`);
  const nc = await connect(rpc, v);
  try {
    const a = await ask(nc, rpc, body, v);
    if (a.ok) {
      console.log(terminalSafe(doneLine(rpc, body)));
      return 0;
    }
    console.error(terminalSafe(a.stop ? `troupe: ${a.message}` : `troupe: refused (${a.code}) ${a.message}`));
    return a.code === "invalid" ? 2 : 1;
  } finally {
    await nc.close();
  }
}

const FLAG_OF: Record<string, string> = { status: "--status", q: "--search", workerId: "--worker", limit: "--limit", reason: "--reason", dryRun: "--dry-run" };

/** `--status …`: the jobs come from the read models, each gets the single command, 8 at a time. */
async function bulk(action: BulkAction, v: Values & OptionValues<ReturnType<typeof bulkOptions>> & { reason?: string | undefined }): Promise<number> {
  const parsed = parseBulkRequest(action, {
    status: v.status!.split(",").map((s) => s.trim()), limit: v.limit, dryRun: v.dryRun,
    ...(v.search !== undefined ? { q: v.search } : {}), ...(v.worker !== undefined ? { workerId: v.worker } : {}),
    ...(v.reason !== undefined ? { reason: v.reason } : {}),
  });
  if (!parsed.ok) throw new UsageError(`${FLAG_OF[parsed.error.path] ?? parsed.error.path}: ${parsed.error.message}`);
  const req = parsed.value;
  const path = dbPathFor(v.dataDir, v.db);
  const rm = openReadModels(path);
  let ids: string[];
  let more: boolean;
  try {
    if (!rm.ready()) {
      console.error(`troupe ${action}: no read models at ${path} yet — start the projector (troupe projector), or give --db`);
      return 1;
    }
    ({ ids, more } = matchingJobIds(rm, req, req.limit));
  } finally {
    rm.close();
  }
  const what = `${req.status.join(" or ")} job${ids.length === 1 ? "" : "s"}`;
  const rest = more ? ` (more match: only the newest ${ids.length} are taken; run it again for the rest)` : "";
  if (req.dryRun) {
    for (const id of ids) console.log(id);
    console.error(`${ids.length} ${what} match${rest}; nothing sent (--dry-run)`);
    return 0;
  }
  if (ids.length === 0) {
    console.error(`no ${what} match; nothing sent`);
    return 0;
  }
  const rpc: AckName = action === "retry" ? "jobs.retry" : "jobs.cancel";
  const nc = await connect(rpc, v);
  let summary;
  try {
    summary = await runBulk(ids, (jobId) => ask(nc, rpc, { jobId, ...(req.reason ? { reason: req.reason } : {}) }, v));
  } finally {
    await nc.close();
  }
  for (const f of summary.refusals) console.error(terminalSafe(`  ${f.jobId}: refused (${f.code}) ${f.message}`));
  if (summary.refused > summary.refusals.length) console.error(`  … and ${summary.refused - summary.refusals.length} more refused`);
  console.log(terminalSafe(`${describeBulk(action, ids.length, summary)}${rest}`));
  return summary.done === ids.length ? 0 : 1;
}

/** One job id, or `--status` for a bulk action: exactly one of them. */
function target(positionals: string[], v: { status?: string | undefined; search?: string | undefined; worker?: string | undefined; dryRun: boolean }, argv: readonly string[]): string | null {
  const id = positionals[0];
  if (v.status !== undefined) {
    if (id !== undefined) throw new UsageError("give a job id or --status, not both");
    return null;
  }
  // --limit given at all, even at its default value.
  const limitGiven = argv.some((a) => a === "--limit" || a.startsWith("--limit="));
  if (v.search !== undefined || v.worker !== undefined || v.dryRun || limitGiven) {
    throw new UsageError("--search, --worker, --limit and --dry-run choose jobs for --status; give --status too");
  }
  if (id === undefined) throw new UsageError("give the job id (or --status for every job in a status)");
  return id;
}

/** The help of cancel and retry: the single command's exit codes, then the bulk form's. */
function bulkDetails(action: BulkAction, refusedWhen: string): string {
  const [done, button] = action === "retry" ? ["retried", "Retry all"] : ["cancelled", "Cancel all"];
  return [
    `Exit 0 when the master recorded it, 1 when it refused (${refusedWhen}) or did not answer, 2 on bad input.`,
    `With --status (${BULK_STATUSES[action].join(", ")}) every matching job of the read models is ${done}, as the dashboard's "${button}" does:`,
    `each one is refused or recorded by the master on its own; exit 0 when every one was ${done}.`,
  ].join("\n");
}

export const cancelCommand = defineCommand({
  name: "cancel",
  summary: "cancel a queued or running job (a running one is stopped on its worker), or every job in a status",
  args: "<jobId> | --status <status>",
  maxPositionals: 1,
  options: { ...baseOptions, ...reason, ...bulkOptions("cancel") },
  details: bulkDetails("cancel", "e.g. the job already ended: conflict"),
  run: ({ values: v, positionals }, argv) => {
    const id = target(positionals, v, argv);
    return id === null ? bulk("cancel", v) : send("jobs.cancel", { jobId: id, ...(v.reason ? { reason: v.reason } : {}) }, v);
  },
}) as CliCommand;

export const retryCommand = defineCommand({
  name: "retry",
  summary: "redrive a failed or dead job (a new attempt, queued again), or every job in a status",
  args: "<jobId> | --status <status>",
  maxPositionals: 1,
  options: { ...baseOptions, ...bulkOptions("retry") },
  details: bulkDetails("retry", "only failed and dead jobs can be retried"),
  run: ({ values: v, positionals }, argv) => {
    const id = target(positionals, v, argv);
    return id === null ? bulk("retry", v) : send("jobs.retry", { jobId: id }, v);
  },
}) as CliCommand;

export const drainCommand = defineCommand({
  name: "drain",
  summary: "drain a worker: it takes no new jobs and finishes the ones it runs (`troupe resume` undoes it)",
  args: "<workerId>",
  maxPositionals: 1,
  options: { ...baseOptions, ...reason },
  details: workerCommandDetails,
  run: ({ values: v, positionals }) => send("workers.drain", { workerId: workerIdOf(positionals), ...(v.reason ? { reason: v.reason } : {}) }, v),
}) as CliCommand;

export const resumeCommand = defineCommand({
  name: "resume",
  summary: "resume a drained worker: it takes jobs again (not one stopping on a signal)",
  args: "<workerId>",
  maxPositionals: 1,
  options: baseOptions,
  details: workerCommandDetails,
  run: ({ values: v, positionals }) => send("workers.resume", { workerId: workerIdOf(positionals) }, v),
}) as CliCommand;
