import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/nats-core";
import { decodeCommand, decodeReply, subjectsFor, type Command, type CommandName, type ErrorBody, type ReplyName } from "@troupe/events";
import type { UiConfig } from "./config.ts";
import { ApiError } from "./http.ts";
import type { UiNats } from "./nats.ts";

type RpcName = "jobs.submit" | "jobs.cancel" | "jobs.retry" | "workers.drain";

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

/** Sends a validated command to the master and returns its reply, or throws an ApiError. */
async function request<R extends ReplyName>(nats: UiNats, cfg: UiConfig, name: RpcName, cmd: unknown, reply: R) {
  let nc;
  try {
    nc = await nats.connection();
  } catch (e) {
    throw new ApiError("unavailable", `NATS is not reachable: ${(e as Error).message}`);
  }
  const subject = subjectsFor(cfg.prefix).rpc(name);
  let m;
  try {
    m = await nc.request(subject, JSON.stringify(cmd), { timeout: cfg.rpcTimeoutMs });
  } catch (e) {
    const cause = e instanceof RequestError ? e.cause ?? e : e;
    if (cause instanceof NoRespondersError || /no responders/i.test((e as Error).message)) {
      throw new ApiError("unavailable", `no master is answering ${subject}; start one with \`troupe master\``);
    }
    if (cause instanceof TimeoutError || /timeout/i.test((e as Error).message)) {
      throw new ApiError("timeout", `the master did not answer ${subject} within ${cfg.rpcTimeoutMs} ms`);
    }
    throw new ApiError("unavailable", `request ${subject} failed: ${(e as Error).message}`);
  }
  const r = decodeReply(reply, m.data);
  if (!r.ok) throw new ApiError("bad-gateway", `the master's reply to ${subject} breaks the contract: ${r.error.path || "(body)"}: ${r.error.message}`, undefined, 502);
  return r.value;
}

export async function submitJob(nats: UiNats, cfg: UiConfig, cmd: Command<"jobs.submit">): Promise<{ jobId: string; duplicate: boolean }> {
  const r = await request(nats, cfg, "jobs.submit", cmd, "jobs.submit");
  if (!r.ok) refused(r.error);
  return { jobId: r.jobId, duplicate: r.duplicate ?? false };
}

/** jobs.cancel, jobs.retry, workers.drain: all answer with an ack. */
export async function ack<N extends "jobs.cancel" | "jobs.retry" | "workers.drain">(nats: UiNats, cfg: UiConfig, name: N, cmd: Command<N>): Promise<void> {
  const r = await request(nats, cfg, name, cmd, "ack");
  if (!r.ok) refused(r.error);
}
