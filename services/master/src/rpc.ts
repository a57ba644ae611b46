import { createHash } from "node:crypto";
import type { Msg, Subscription } from "@nats-io/nats-core";
import { ATTEMPT_MAX, decodeCommand, errorBody, decodeReply, jobSpecFromSubmit, leftOut, newId, type AckReply, type ErrorBody, type SubmitReply } from "@troupe/events";
import { bypassListError, InvalidEventError, workerInboxPrefix, mayHaveBeenStored, SECRETS_KEY_VAR, sealSecret } from "@troupe/events/node";
import type { Master } from "./master.ts";
import { lookupJob } from "./state.ts";

/** The longest a stop waits for the RPC subscriptions to drain. */
const RPC_DRAIN_MS = 2000;

/**
 * The master's request-reply API. `jobs.submit` is served by every master
 * (queue group); cancel, retry, drain, resume and the attempt check decide
 * about (or answer from) the leader's state, so only the leader serves them
 * (it subscribes while it holds the lease).
 */

export const QUEUE_GROUP = "troupe-master";

/** Jobs submitted with an idempotency key get an id derived from it, so every master picks the same one. */
export function jobIdForKey(key: string): string {
  return `k${createHash("sha256").update(key).digest("base64url").slice(0, 32)}`;
}

const err = (code: string, message: string, field?: string): { ok: false; error: ErrorBody } => ({ ok: false, error: errorBody(code, message, field) });

function respond(m: Msg, body: SubmitReply | AckReply) {
  m.respond(JSON.stringify(body));
}

/** The append guard refused: something else was recorded on the job first (another command, a worker's event). */
const isGuardConflict = (e: unknown) => /wrong last sequence/i.test((e as Error)?.message ?? "");

/**
 * A command that lost the race for its job is a conflict about that job, not a master that cannot write: answered
 * `unavailable`, two cancels at once made a bulk run stop and report jobs as not done (found by an attack run).
 */
function changedMeanwhile(jobId: string, what: string): AckReply {
  return err("conflict", `job ${jobId} changed while the ${what} was being recorded (another command or event came first); look at it again`, "jobId");
}

export async function handleSubmit(master: Master, m: Msg): Promise<SubmitReply> {
  const cmd = decodeCommand("jobs.submit", m.data);
  if (!cmd.ok) return err(cmd.error.code === "too-large" ? "too-large" : "invalid", cmd.error.message, cmd.error.path);
  // The client's name goes into job.submitted as submittedBy: held to that field's rules here, so a long one is the client's error, not an append that fails.
  const client = m.headers?.get("Troupe-Client") || "rpc";
  if (client.length > 200 || /[\u0000-\u001f\u007f]/.test(client)) return err("invalid", "the Troupe-Client header must be at most 200 characters, without control characters", "headers.Troupe-Client");
  const key = cmd.value.idempotencyKey;
  // A keyed job's id is derived from its key, so the state itself says whether the key was used (no map of keys kept for ever); the append's subject guard below catches a submission the fold has not seen yet.
  const jobId = key !== undefined ? jobIdForKey(key) : newId("j");
  if (key !== undefined && lookupJob(master.state, jobId)) return { ok: true, jobId, duplicate: true };
  // A proxy password is sealed before anything is logged: the log is readable by the dashboard's read-only user and kept forever.
  const secretsKey = master.cfg.secretsKey;
  if (cmd.value.proxy?.password !== undefined && !secretsKey) {
    return err("invalid", `this master has no ${SECRETS_KEY_VAR} to seal the proxy password with (passwords are never logged in clear): run \`troupe nats\` once to add one to credentials.env, or set ${SECRETS_KEY_VAR}`, "proxy.password");
  }
  // Already expired by the clock that judges it (the NATS server's, as the master reads it): it would only be recorded to be declared dead.
  if (cmd.value.expiresAt !== undefined && Date.parse(cmd.value.expiresAt) <= master.serverNow()) {
    return err("invalid", `expiresAt ${cmd.value.expiresAt} is already past (the NATS server's clock reads ${new Date(master.serverNow()).toISOString()})`, "expiresAt");
  }
  // The worker applies the bypass list with Chromium's rules; one it cannot read is refused here, not at the worker.
  const badRule = bypassListError(cmd.value.proxy?.bypass);
  if (badRule) return err("invalid", badRule.message, `proxy.bypass[${badRule.index}]`);
  const spec = jobSpecFromSubmit(cmd.value, secretsKey && ((plain) => sealSecret(plain, secretsKey, jobId)));
  try {
    // With a key the subject is the same for every resubmission: the guard lets only the first in.
    const data = { jobId, spec, ...(key !== undefined ? { idempotencyKey: key } : {}), submittedBy: client };
    const subject = master.subjects.job(jobId, "submitted");
    const ack = await master.append("job.submitted", data, subject, key !== undefined ? `submit-${jobId}` : undefined);
    if (ack.duplicate) {
      // The message id follows from the key, and JetStream de-duplicates ids across the whole stream: any role that
      // appends job events (a worker credential) could have used it first. It is a repeat only if it is this job's submission.
      if (ack.stream === master.eventStream && (await master.eventSubjectAt(ack.seq)) === subject) return { ok: true, jobId, duplicate: true };
      master.log.warn({ jobId, seq: ack.seq }, "a keyed submission's message id was taken by another message in the log; appended under a fresh id");
      await master.append("job.submitted", data, subject, `submit-${jobId}-${newId("r")}`);
    }
  } catch (e) {
    if (key !== undefined && isGuardConflict(e)) return { ok: true, jobId, duplicate: true };
    // A command within its own limits can still make an event past the log's (the envelope, the sealed password,
    // the job id): the client's to shrink, not an outage to retry (it was answered `unavailable`).
    if (e instanceof InvalidEventError) {
      const code = e.error.code === "too-large" ? "too-large" : "invalid";
      return err(code, `the job does not fit the event log: ${e.error.message}${code === "too-large" ? " (make its scenario's texts or scripts smaller)" : ""}`, e.error.path || undefined);
    }
    master.log.error({ err: (e as Error).message, jobId }, "could not append job.submitted");
    // No ack is no proof: a master stopping under the append said "could not be recorded" of jobs that were in the
    // log and ran (a chaos soak); a client that believed it would submit again, or give up on a job that runs.
    if (mayHaveBeenStored(e)) {
      return err("unavailable", `the log did not confirm the job (${(e as Error).message}); it may have been recorded all the same, as job ${jobId}: ${key !== undefined ? "submit it again with the same idempotencyKey to find out (a key is never recorded twice)" : "look that job up before submitting again, or submit with an idempotencyKey, which is never recorded twice"}`);
    }
    return err("unavailable", `the job could not be recorded: ${(e as Error).message}`);
  }
  return { ok: true, jobId };
}

/**
 * The job as the state holds it; when that answer would be a refusal (`refused`: unknown, or in a state the command
 * does not apply to), as it holds it once the fold has read the log as far as it reached (Master.caughtUp): the
 * refusal may only be the fold being behind (a cancel right after its submit, a retry of a failure the dashboard
 * already showed).
 */
async function jobOnceCaughtUp(master: Master, jobId: string, refused: (job: ReturnType<typeof lookupJob>) => boolean): Promise<ReturnType<typeof lookupJob>> {
  const job = lookupJob(master.state, jobId);
  if (!refused(job)) return job;
  // Unreadable stream info leaves the answer as the state has it.
  await master.caughtUp().catch(() => {});
  return lookupJob(master.state, jobId);
}

export async function handleCancel(master: Master, m: Msg): Promise<AckReply> {
  const cmd = decodeCommand("jobs.cancel", m.data);
  if (!cmd.ok) return err("invalid", cmd.error.message, cmd.error.path);
  const epoch = master.epoch;
  if (!epoch) return err("unavailable", "this master is not the leader; try again");
  const ended = (j: ReturnType<typeof lookupJob>) => !j || j.status === "completed" || j.status === "cancelled" || j.status === "dead";
  const job = await jobOnceCaughtUp(master, cmd.value.jobId, ended);
  if (!job) return err("not-found", `no job ${cmd.value.jobId}`, "jobId");
  if (job.status === "completed" || job.status === "cancelled" || job.status === "dead") return err("conflict", `job ${job.id} is ${job.status}`, "jobId");
  const running = job.status === "assigned" || job.status === "running";
  try {
    await master.append("job.cancelled", {
      jobId: job.id, ...(cmd.value.reason ? { reason: cmd.value.reason } : {}),
      ...(running && job.workerId ? { attempt: job.attempt, workerId: job.workerId } : {}), epoch,
    }, master.subjects.job(job.id, "cancelled"));
  } catch (e) {
    if (isGuardConflict(e)) return changedMeanwhile(job.id, "cancellation");
    if (mayHaveBeenStored(e)) return err("unavailable", `the log did not confirm the cancellation of job ${job.id} (${(e as Error).message}); it may have been recorded all the same: ask again (a job already cancelled is answered as such)`);
    return err("unavailable", `the cancellation could not be recorded: ${(e as Error).message}`);
  }
  if (running && job.workerId) await master.cancelOnWorker(job.workerId, job.id, job.attempt, cmd.value.reason ?? "cancelled");
  return { ok: true };
}

export async function handleRetry(master: Master, m: Msg): Promise<AckReply> {
  const cmd = decodeCommand("jobs.retry", m.data);
  if (!cmd.ok) return err("invalid", cmd.error.message, cmd.error.path);
  const epoch = master.epoch;
  if (!epoch) return err("unavailable", "this master is not the leader; try again");
  const job = await jobOnceCaughtUp(master, cmd.value.jobId, (j) => !j || (j.status !== "failed" && j.status !== "dead"));
  if (!job) return err("not-found", `no job ${cmd.value.jobId}`, "jobId");
  if (job.status !== "failed" && job.status !== "dead") return err("conflict", `only a failed or dead job can be retried; job ${job.id} is ${job.status}`, "jobId");
  if (job.attempt >= ATTEMPT_MAX) return err("conflict", `job ${job.id} used attempt number ${job.attempt}, the last the contract allows; submit it again as a new job`, "jobId");
  try {
    await master.append("job.requeued", {
      jobId: job.id, attempt: job.attempt + 1, previousAttempt: job.attempt, ...(job.workerId ? { previousWorkerId: job.workerId } : {}),
      reason: "redrive", notBefore: new Date(master.serverNow()).toISOString(), epoch,
    }, master.subjects.job(job.id, "requeued"));
  } catch (e) {
    if (isGuardConflict(e)) return changedMeanwhile(job.id, "redrive");
    if (mayHaveBeenStored(e)) return err("unavailable", `the log did not confirm the redrive of job ${job.id} (${(e as Error).message}); it may have been recorded all the same: look at the job before asking again (a second redrive runs it once more)`);
    return err("unavailable", `the redrive could not be recorded: ${(e as Error).message}`);
  }
  return { ok: true };
}

export async function handleDrain(master: Master, m: Msg): Promise<AckReply> {
  const cmd = decodeCommand("workers.drain", m.data);
  if (!cmd.ok) return err("invalid", cmd.error.message, cmd.error.path);
  return askWorker(master, cmd.value.workerId, "drain", cmd.value.reason ? { reason: cmd.value.reason } : {});
}

export async function handleResume(master: Master, m: Msg): Promise<AckReply> {
  const cmd = decodeCommand("workers.resume", m.data);
  if (!cmd.ok) return err("invalid", cmd.error.message, cmd.error.path);
  return askWorker(master, cmd.value.workerId, "resume", {});
}

/** Passes a drain or resume to a worker the master knows, and its answer back. */
async function askWorker(master: Master, workerId: string, kind: "drain" | "resume", body: object): Promise<AckReply> {
  if (!master.state.workers.has(workerId)) await master.caughtUp().catch(() => {});
  const w = master.state.workers.get(workerId);
  if (!w) return err("not-found", `no worker ${workerId}`, "workerId");
  // Gone for good until it starts again: a lasting state, not an outage to retry (it was "unavailable: no responders").
  if (w.lifecycle === "offline" || w.lifecycle === "lost") {
    return err("conflict", `worker ${w.id} is ${w.lifecycle === "offline" ? "offline (it deregistered)" : "lost (no heartbeat)"}: there is no process to ${kind}`, "workerId");
  }
  try {
    const r = await master.request(master.subjects.workerCommand(w.id, kind), JSON.stringify(body));
    const d = decodeReply("ack", r.data);
    if (!d.ok) return err("unavailable", `worker ${w.id} answered with an invalid reply: ${d.error.message}`);
    return d.value;
  } catch (e) {
    // No responders: a worker of a release before resume existed has no such endpoint.
    return err("unavailable", `worker ${w.id} did not answer${kind === "resume" ? " (a worker older than 2026-11-29 cannot resume: restart it; or nats-server runs a nats.conf from before then, which does not let workers serve troupe.worker.*.resume: restart troupe nats)" : ""}: ${(e as Error).message}`);
  }
}

/**
 * A worker whose link to NATS came back after a silence (link-fence.ts) asks whether its held attempt is still its
 * own before it runs another step. Answered by the leader from the state once the fold has read the log as far as it
 * reached and the job has no decision of this master's on its way: `ok` goes on, `conflict` stops the attempt. The
 * worker used to wait a fixed 2 s for a cancel that a master folding heartbeats slower than that sent too late: the
 * held attempt went on beside its replacement (a loaded CI run). Only yes or no about the attempt named, and only
 * to the worker it names (docs/security.md).
 */
export async function handleCheckAttempt(master: Master, m: Msg): Promise<AckReply> {
  const cmd = decodeCommand("attempts.check", m.data);
  if (!cmd.ok) return err("invalid", cmd.error.message, cmd.error.path);
  const { jobId, attempt, workerId } = cmd.value;
  // Every worker takes its replies on its own inbox prefix (workerInboxPrefix), the only part of _INBOX a per-worker
  // user may read: asked from any other inbox, or about another worker, it is no worker asking about itself.
  if (!m.reply?.startsWith(`${workerInboxPrefix(workerId)}.`)) {
    return err("forbidden", `only worker ${workerId} may ask about its attempts, from its own inbox (${workerInboxPrefix(workerId)})`, "workerId");
  }
  const epoch = master.epoch;
  if (!epoch) return err("unavailable", "this master is not the leader; try again");
  // A leader still reading the log at its start holds part of the story: its yes could be wrong.
  if (!master.ready) return err("unavailable", "this master is still reading the log; try again");
  // Yes or no about the attempt named, nothing about where the job went (the master's log says that).
  const notOurs = (job: NonNullable<ReturnType<typeof lookupJob>>): AckReply =>
    err("conflict", `attempt ${attempt} of job ${jobId} is no longer this worker's (the job ${job.status === "assigned" || job.status === "running" ? "runs another attempt" : `is ${job.status}`}); stop it`, "attempt");
  // Already past that attempt, or settled: no later read can give it back, so "no" needs no wait (a master folding
  // late answers at once; the wait below is a read of the stream, which its lag makes slower still).
  const before = lookupJob(master.state, jobId);
  if (before && (before.attempt > attempt || attemptOver(before.status))) return notOurs(before);
  try {
    // Bounded waits: a fold lagging past them may not show a requeue of this master's yet, and a yes would be wrong.
    if (!(await master.settled(jobId))) return err("unavailable", "this master's fold is behind the log; try again");
  } catch (e) {
    return err("unavailable", `the log could not be read to answer (${(e as Error).message}); try again`);
  }
  // Deposed meanwhile: the new leader may have decided about the job already.
  if (master.epoch !== epoch) return err("unavailable", "this master stopped leading while it looked; try again");
  const job = lookupJob(master.state, jobId);
  if (!job) return err("not-found", `no job ${jobId}`, "jobId");
  const runs = (job.status === "assigned" || job.status === "running") && job.workerId === workerId && job.attempt === attempt;
  return runs ? { ok: true } : notOurs(job);
}

/** A job in one of these states runs no attempt (a failed one: the attempt that failed is over too). */
const attemptOver = (status: string) => status === "completed" || status === "failed" || status === "cancelled" || status === "dead";

type Handler = (master: Master, m: Msg) => Promise<SubmitReply | AckReply>;

/**
 * A callback subscription, not an async iterator: every request in a socket
 * read is handled in the same turn, so their appends leave in one write.
 */
function serve(master: Master, subject: string, h: Handler): Subscription {
  return master.nc.subscribe(subject, {
    queue: QUEUE_GROUP,
    callback: (e, m) => {
      if (e) {
        master.log.error({ err: e.message, subject }, "request subscription failed");
        return;
      }
      // An answer goes out with the master's permissions, on whatever subject the request names: a worker (which may
      // publish attempts.check) naming `$JS.API.STREAM.PURGE.TROUPE_EVENTS` as its reply had the leader purge the log
      // (a review). Every client asks with a nats.js inbox; anything else is dropped, unanswered and not acted on.
      if (!m.reply?.startsWith("_INBOX.")) {
        master.counters.droppedRequests++;
        const n = master.logLimits.droppedRequests.take();
        if (n !== undefined) master.log.warn({ subject, reply: m.reply?.slice(0, 200) ?? null, ...leftOut(n) }, "request dropped: its reply subject is not an _INBOX one (the master answers only on inboxes)");
        return;
      }
      h(master, m)
        .then((r) => respond(m, r))
        .catch((e2: unknown) => {
          master.log.error({ err: e2, subject }, "request handler failed");
          respond(m, err("internal", (e2 as Error).message));
        });
    },
  });
}

/** Serves submit always, and the leader-only commands while this master leads. */
export function serveRpc(master: Master): { stop(): Promise<void> } {
  const s = master.subjects;
  const submit = serve(master, s.rpc("jobs.submit"), handleSubmit);
  let leaderSubs: Subscription[] = [];
  master.onLeaderChange((leader) => {
    for (const sub of leaderSubs) sub.unsubscribe();
    leaderSubs = leader
      ? [serve(master, s.rpc("jobs.cancel"), handleCancel), serve(master, s.rpc("jobs.retry"), handleRetry), serve(master, s.rpc("workers.drain"), handleDrain), serve(master, s.rpc("workers.resume"), handleResume), serve(master, s.rpc("attempts.check"), handleCheckAttempt)]
      : [];
  });
  return {
    async stop() {
      // Requests being handled finish; bounded, because a drain's flush waits for a NATS that may be gone.
      const subs = [submit, ...leaderSubs];
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(subs.map((sub) => sub.drain().catch((e) => master.log.warn({ err: (e as Error).message }, "could not drain a subscription")))),
        new Promise((r) => (timer = setTimeout(r, RPC_DRAIN_MS))),
      ]);
      clearTimeout(timer);
    },
  };
}
