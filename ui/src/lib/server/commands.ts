import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/nats-core";
import {
  BULK_STOP_CODES, decodeCommand, decodeReply, newId, subjectsFor, type BulkAction, type BulkItemOutcome, type Command, type CommandName, type ErrorBody, type ReplyName,
} from "@troupe/events";
import { createLogger, isOwnEarlierCancel, requestAgainOnTimeout, RPC_TRIES } from "@troupe/events/node";
import type { UiConfig } from "./config.ts";
import { ApiError } from "./http.ts";
import type { UiNats } from "./nats.ts";

type RpcName = "jobs.submit" | "jobs.cancel" | "jobs.retry" | "workers.drain" | "workers.resume";

/** Validates a command body exactly as the master will, so a bad request never leaves the UI. */
export function validate<N extends RpcName>(name: N, body: string | Record<string, unknown>): Command<N> {
  const r = decodeCommand(name as CommandName, typeof body === "string" ? body : JSON.stringify(body)) as
    | { ok: true; value: Command<N> }
    | { ok: false; error: { code: string; path: string; message: string } };
  if (!r.ok) {
    const code = r.error.code === "too-large" ? "too-large" : "invalid";
    throw new ApiError(code, r.error.path ? `${r.error.path}: ${r.error.message}` : r.error.message, r.error.path || undefined);
  }
  return r.value;
}

function refused(error: ErrorBody): never {
  throw new ApiError(error.code, error.message, error.field);
}

const log = createLogger("ui");

/**
 * Sends a validated command to the masters and returns the reply (and whether it took more than one try),
 * or throws an ApiError. `again`: the command is safe to repeat, so a timeout asks again (another master may
 * answer: requestAgainOnTimeout).
 */
async function request<R extends ReplyName>(nats: UiNats, cfg: UiConfig, name: RpcName, cmd: unknown, reply: R, again = false, timedOut = "") {
  let retried = false;
  let nc;
  try {
    nc = await nats.connection();
  } catch (e) {
    throw new ApiError("unavailable", `NATS is not reachable: ${(e as Error).message}`);
  }
  const subject = subjectsFor(cfg.prefix).rpc(name);
  let m;
  try {
    m = await requestAgainOnTimeout(nc, subject, JSON.stringify(cmd), {
      timeoutMs: cfg.rpcTimeoutMs,
      tries: again ? RPC_TRIES : 1,
      // Nobody listening means nothing was recorded, so waiting is safe for every command: a master restarting is gone
      // for a few seconds, and a submit in that gap answered 503 at once (as `troupe submit` did before it waited).
      waitForResponderMs: cfg.rpcTimeoutMs,
      onNoResponder: () => log.info({ subject, waitMs: cfg.rpcTimeoutMs }, "no master listens; waiting for one to start"),
      onRetry: (next, tries) => {
        retried = true;
        log.warn({ subject, try: next, tries }, "no master answered in time; asking again");
      },
    });
  } catch (e) {
    const cause = e instanceof RequestError ? e.cause ?? e : e;
    if (cause instanceof NoRespondersError || /no responders/i.test((e as Error).message)) {
      // An earlier try that timed out may have been recorded all the same: say how to submit again without a duplicate.
      throw new ApiError("unavailable", `no master is answering ${subject} (none listened for ${(cfg.rpcTimeoutMs / 1000).toFixed(1)} s); start one with \`troupe master\`${retried ? timedOut : ""}`);
    }
    if (cause instanceof TimeoutError || /timeout/i.test((e as Error).message)) {
      throw new ApiError("timeout", `the master did not answer ${subject} within ${cfg.rpcTimeoutMs} ms${again ? ` (${RPC_TRIES} tries)` : ""}${timedOut}`);
    }
    throw new ApiError("unavailable", `request ${subject} failed: ${(e as Error).message}`);
  }
  const r = decodeReply(reply, m.data);
  if (!r.ok) throw new ApiError("bad-gateway", `the master's reply to ${subject} breaks the contract: ${r.error.path || "(body)"}: ${r.error.message}`, undefined, 502);
  return { reply: r.value, retried };
}

export async function submitJob(nats: UiNats, cfg: UiConfig, cmd: Command<"jobs.submit">): Promise<{ jobId: string; duplicate: boolean }> {
  // Always keyed: a request that times out may still have been recorded (a master paused, not dead), and
  // asking again with the same key cannot make a second job.
  const ownKey = cmd.idempotencyKey === undefined;
  const keyed = ownKey ? { ...cmd, idempotencyKey: `ui-${newId()}` } : cmd;
  const timedOut = `; the job may have been recorded all the same: to try again without a duplicate, send it with "idempotencyKey": ${JSON.stringify(keyed.idempotencyKey)}`;
  const { reply: r } = await request(nats, cfg, "jobs.submit", keyed, "jobs.submit", true, timedOut);
  // The master may not know whether the job was recorded (its append got no confirmation): give the key made up here.
  if (!r.ok) refused(r.error.code === "unavailable" && ownKey ? { ...r.error, message: `${r.error.message}; to try again without a duplicate, send it with "idempotencyKey": ${JSON.stringify(keyed.idempotencyKey)}` } : r.error);
  // A duplicate of our own key is our own first try, recorded by a master that answered late: a new job to the caller.
  return { jobId: r.jobId, duplicate: !ownKey && (r.duplicate ?? false) };
}

/** jobs.cancel, jobs.retry, workers.drain, workers.resume: all answer with an ack. */
export async function ack<N extends "jobs.cancel" | "jobs.retry" | "workers.drain" | "workers.resume">(nats: UiNats, cfg: UiConfig, name: N, cmd: Command<N>): Promise<void> {
  // A cancel, a drain or a resume asked again does nothing more (a cancel whose first try was only slow answers
  // `conflict: job … is cancelled` to the next one: success, below). A retry is not asked again: redriving is
  // not a no-op once the first try was recorded and the job failed once more.
  const { reply: r, retried } = await request(nats, cfg, name, cmd, "ack", name !== "jobs.retry");
  if (!r.ok && isOwnEarlierCancel(name, retried, r.error)) return;
  if (!r.ok) refused(r.error);
}

/** One job of a bulk action, as a single `POST /api/jobs/:id/<action>` would send it; a refusal is an outcome, not a throw. */
export async function bulkCommand(nats: UiNats, cfg: UiConfig, action: BulkAction, jobId: string, reason?: string): Promise<BulkItemOutcome> {
  try {
    if (action === "retry") await ack(nats, cfg, "jobs.retry", validate("jobs.retry", { jobId }));
    else await ack(nats, cfg, "jobs.cancel", validate("jobs.cancel", { jobId, ...(reason ? { reason } : {}) }));
    return { ok: true };
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    // No master, a silent one, or one that could not record it: the next jobs would fare the same.
    return { ok: false, code: e.code, message: e.message, stop: BULK_STOP_CODES.has(e.code) || e.status >= 500 };
  }
}
