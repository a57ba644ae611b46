import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { Attempt, AttemptToken, Epoch, Fingerprint, Id, JobSpec, Labels, SubmitProxy, Time } from "./payloads.ts";
import { ScenarioSchema } from "./scenario.ts";

/** Request bodies of the request-reply subjects, and their replies. */

const Obj = <P extends Record<string, TSchema>>(props: P, description: string) =>
  Type.Object(props, { additionalProperties: false, description });

/** What a client sends to `troupe.rpc.jobs.submit`: a JobSpec with optional fields defaulted by the master. */
export const SubmitJobSchema = Obj({
  url: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, pattern: "^https?://[^\\s]+$", description: "http(s) URL to open" })),
  scenario: Type.Optional(ScenarioSchema),
  priority: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, description: "1-10, higher runs first (default 5)" })),
  fingerprint: Type.Optional(Fingerprint),
  proxy: Type.Optional(SubmitProxy),
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, description: "default 3" })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 3_600_000, description: "hard timeout per attempt in ms (default 120000)" })),
  runAt: Type.Optional(Time),
  expiresAt: Type.Optional(Time),
  // A name, as workers report theirs (chromium, chrome): "\u0000" was taken and waited for ever. Only new
  // submissions are held to it; the events' JobSpec keeps the looser rule, so an older log folds as it did.
  browser: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9_.+-]+$", description: "browser name, e.g. chromium" })),
  workerLabels: Type.Optional(Labels("runs only on a worker that has every one of these labels")),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9_.:/-]+$" }), { maxItems: 20 })),
  idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
}, "submit a job");

export const CommandSchemas = {
  /** troupe.rpc.jobs.submit */
  "jobs.submit": SubmitJobSchema,
  /** troupe.rpc.jobs.cancel */
  "jobs.cancel": Obj({ jobId: Id, reason: Type.Optional(Type.String({ maxLength: 500 })) }, "cancel a queued or running job"),
  /** troupe.rpc.jobs.retry */
  "jobs.retry": Obj({ jobId: Id }, "redrive a dead or failed job"),
  /** troupe.rpc.workers.drain */
  "workers.drain": Obj({ workerId: Id, reason: Type.Optional(Type.String({ maxLength: 500 })) }, "drain a worker"),
  /** troupe.rpc.workers.resume */
  "workers.resume": Obj({ workerId: Id }, "let a drained worker take jobs again"),
  /** troupe.rpc.attempts.check (worker → leader): a worker whose link to NATS came back after a silence asks before it goes on. */
  "attempts.check": Obj({ jobId: Id, attempt: Attempt, workerId: Id }, "is this attempt still the worker's to run? ok: yes; conflict: no, stop it"),
  /** troupe.worker.<id>.assign (master → worker) */
  "worker.assign": Obj({ jobId: Id, attempt: Attempt, epoch: Epoch, spec: JobSpec, token: Type.Optional(AttemptToken) }, "run an attempt of a job"),
  /** troupe.worker.<id>.cancel (master → worker) */
  "worker.cancel": Obj({ jobId: Id, attempt: Attempt, reason: Type.Optional(Type.String({ maxLength: 500 })) }, "stop a running attempt"),
  /** troupe.worker.<id>.drain (master → worker) */
  "worker.drain": Obj({ reason: Type.Optional(Type.String({ maxLength: 500 })) }, "stop taking jobs, finish running ones"),
  /** troupe.worker.<id>.resume (master → worker) */
  "worker.resume": Obj({}, "take jobs again after a drain request (not after a shutdown signal)"),
} as const;

export type CommandName = keyof typeof CommandSchemas;
export const COMMAND_NAMES = Object.keys(CommandSchemas) as CommandName[];
export type Command<N extends CommandName> = Static<(typeof CommandSchemas)[N]>;
export type SubmitJob = Command<"jobs.submit">;

export const ErrorBody = Obj({
  code: Type.String({ maxLength: 64, description: "machine-readable, e.g. invalid, not-found, conflict, unavailable" }),
  message: Type.String({ maxLength: 4000 }),
  field: Type.Optional(Type.String({ maxLength: 300, description: "the offending field, e.g. scenario.steps[2].selectors" })),
}, "an error reply");
export type ErrorBody = Static<typeof ErrorBody>;

/** An ErrorBody within the contract's limits: a validation error may quote a key or value of any length. */
export function errorBody(code: string, message: string, field?: string): ErrorBody {
  const clip = (t: string, max: number) => (t.length > max ? `${t.slice(0, max - 1)}…` : t);
  return { code: clip(code, 64), message: clip(message, 4000), ...(field !== undefined ? { field: clip(field, 300) } : {}) };
}

export const ReplySchemas = {
  "jobs.submit": Type.Union([
    Obj({ ok: Type.Literal(true), jobId: Id, duplicate: Type.Optional(Type.Boolean()) }, "accepted"),
    Obj({ ok: Type.Literal(false), error: ErrorBody }, "refused"),
  ]),
  /** Reply to jobs.cancel, jobs.retry, workers.drain, workers.resume and attempts.check. */
  ack: Type.Union([
    Obj({ ok: Type.Literal(true) }, "done"),
    Obj({ ok: Type.Literal(false), error: ErrorBody }, "refused"),
  ]),
  "worker.assign": Type.Union([
    Obj({ accepted: Type.Literal(true) }, "the worker runs the attempt"),
    Obj({
      accepted: Type.Literal(false),
      reason: Type.Union(["full", "draining", "unsupported-browser", "labels", "invalid", "cpu", "memory", "duplicate"].map((r) => Type.Literal(r))),
      message: Type.Optional(Type.String({ maxLength: 4000 })),
      field: Type.Optional(Type.String({ maxLength: 300 })),
    }, "the worker refuses the attempt"),
  ]),
} as const;
export type SubmitReply = Static<(typeof ReplySchemas)["jobs.submit"]>;
export type AckReply = Static<(typeof ReplySchemas)["ack"]>;
export type AssignReply = Static<(typeof ReplySchemas)["worker.assign"]>;
export type RefuseReason = Extract<AssignReply, { accepted: false }>["reason"];
