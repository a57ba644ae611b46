import { Type, type Static, type TSchema } from "@sinclair/typebox";
import {
  ATTEMPT_MAX, Attempt, AttemptToken, AttemptTokenHash, Capabilities, Epoch, HeartbeatMetrics, Id, JobError, JobSpec, LogEntry, Quantity, RequeueReason,
  StepRef, StepTiming, Time, WorkerStatus,
} from "./payloads.ts";

/**
 * Every event type: its `data` schema, the subject it travels on and who may
 * produce it. `v` is the schema version of `data`; consumers reject versions
 * newer than they know.
 */

const Obj = <P extends Record<string, TSchema>>(props: P, description: string) =>
  Type.Object(props, { additionalProperties: false, description });

const workerEvent = { workerId: Id };
const jobEvent = { jobId: Id };
/** Fields every job event a worker emits carries. */
const workerJobEvent = { jobId: Id, workerId: Id, attempt: Attempt, token: Type.Optional(AttemptToken) };

export const EventDataSchemas = {
  "worker.registered": Obj({
    ...workerEvent,
    instanceId: Id,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    type: Type.String({ minLength: 1, maxLength: 64, description: "e.g. puppeteer" }),
    ip: Type.String({ maxLength: 64 }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: "status HTTP port" }),
    version: Type.String({ maxLength: 64, description: "worker software version" }),
    capabilities: Capabilities,
  }, "a worker process started and joined the pool"),
  "worker.draining": Obj({ ...workerEvent, instanceId: Id, reason: Type.Optional(Type.String({ maxLength: 500 })) },
    "the worker takes no new jobs and finishes the ones it runs"),
  "worker.deregistered": Obj({ ...workerEvent, instanceId: Id, reason: Type.Optional(Type.String({ maxLength: 500 })) },
    "the worker left the pool cleanly"),
  "worker.lost": Obj({
    ...workerEvent,
    instanceId: Type.Optional(Id),
    lastSeen: Time,
    epoch: Epoch,
    jobIds: Type.Array(Id, { maxItems: 1000, description: "jobs it held, which the master requeues" }),
  }, "the master saw no heartbeat for the liveness window"),
  "worker.heartbeat": Obj({
    ...workerEvent,
    instanceId: Id,
    status: WorkerStatus,
    currentJobs: Type.Integer({ minimum: 0, maximum: 1000 }),
    maxConcurrentJobs: Type.Integer({ minimum: 1, maximum: 1000, description: "as capabilities.maxConcurrentJobs" }),
    jobIds: Type.Array(Id, { maxItems: 1000 }),
    heartbeatMs: Type.Optional(Type.Integer({ minimum: 50, maximum: 86_400_000, description: "the worker's heartbeat interval: its next heartbeat comes within this (the master and the UI judge its silence by it)" })),
    metrics: HeartbeatMetrics,
    performance: Obj({
      successRate: Type.Number({ minimum: 0, maximum: 100 }),
      averageJobDuration: Quantity("ms"),
    }, "the worker's own view; the projector computes its own from job events"),
  }, "telemetry every heartbeat interval"),

  "job.submitted": Obj({
    ...jobEvent,
    spec: JobSpec,
    idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    submittedBy: Type.Optional(Type.String({ maxLength: 200 })),
  }, "a job entered the queue"),
  "job.assigned": Obj({ ...jobEvent, workerId: Id, attempt: Attempt, epoch: Epoch, tokenHash: Type.Optional(AttemptTokenHash) },
    "the master handed an attempt to a worker that accepted it"),
  "job.started": Obj({ ...workerJobEvent }, "the worker began running the attempt"),
  "job.progress": Obj({
    ...workerJobEvent,
    progress: Type.Number({ minimum: 0, maximum: 100 }),
    currentStep: Type.Optional(StepRef),
    stepsDone: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    stepsTotal: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    metrics: Type.Optional(Obj({
      elapsedMs: Quantity(),
      memoryUsed: Type.Optional(Quantity("MiB")),
    }, "progress metrics")),
  }, "step progress; also renews the job's lease"),
  "job.completed": Obj({
    ...workerJobEvent,
    result: Obj({
      success: Type.Literal(true),
      // Keys are extract field names, checked where the scenario is submitted; not here, so a log written before that check folds the same.
      data: Type.Record(Type.String(), Type.Unknown(), { description: "extracted fields by name" }),
      dataExtracted: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
      screenshots: Type.Array(Type.String({ maxLength: 300, description: "object name in troupe-artifacts" }), { maxItems: 100 }),
      logs: Type.Array(LogEntry, { maxItems: 500 }),
      steps: Type.Optional(Type.Array(StepTiming, { maxItems: 500 })),
      finalUrl: Type.Optional(Type.String({ maxLength: 4096 })),
    }, "the job's result"),
    metrics: Obj({
      totalDuration: Quantity("ms"),
      responseTime: Quantity("ms of the main navigation"),
      memoryUsed: Quantity("MiB"),
    }, "run metrics"),
  }, "the attempt finished successfully"),
  "job.failed": Obj({
    ...workerJobEvent,
    error: JobError,
    logs: Type.Optional(Type.Array(LogEntry, { maxItems: 500 })),
    steps: Type.Optional(Type.Array(StepTiming, { maxItems: 500 })),
    screenshots: Type.Optional(Type.Array(Type.String({ maxLength: 300 }), { maxItems: 100 })),
    metrics: Type.Optional(Obj({
      totalDuration: Quantity("ms"),
      responseTime: Type.Optional(Quantity("ms")),
      memoryUsed: Type.Optional(Quantity("MiB")),
    }, "run metrics")),
  }, "the attempt failed"),
  "job.requeued": Obj({
    ...jobEvent,
    attempt: Attempt,
    previousAttempt: Type.Optional(Type.Integer({ minimum: 0, maximum: ATTEMPT_MAX })),
    previousWorkerId: Type.Optional(Id),
    reason: RequeueReason,
    notBefore: Time,
    epoch: Epoch,
  }, "the job goes back to the queue as a new attempt"),
  "job.cancelled": Obj({
    ...jobEvent,
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    attempt: Type.Optional(Type.Integer({ minimum: 0, maximum: ATTEMPT_MAX })),
    workerId: Type.Optional(Id),
    epoch: Epoch,
  }, "the job was cancelled"),
  "job.dead": Obj({
    ...jobEvent,
    reason: Type.String({ maxLength: 500 }),
    attempts: Type.Integer({ minimum: 0, maximum: ATTEMPT_MAX }),
    lastError: Type.Optional(JobError),
    epoch: Epoch,
  }, "the job gave up: attempts spent or expired"),
} as const;

export type EventType = keyof typeof EventDataSchemas;
export const EVENT_TYPES = Object.keys(EventDataSchemas) as EventType[];
export type EventData<T extends EventType> = Static<(typeof EventDataSchemas)[T]>;

/** Current schema version of each event's `data`. */
export const EVENT_VERSION = 1;

export type Role = "master" | "worker";
/** Who produces each event (DESIGN.md, Subjects) — also the NATS publish permissions. */
export const EVENT_PRODUCER: Record<EventType, Role> = {
  "worker.registered": "worker",
  "worker.draining": "worker",
  "worker.deregistered": "worker",
  "worker.heartbeat": "worker",
  "worker.lost": "master",
  "job.submitted": "master",
  "job.assigned": "master",
  "job.requeued": "master",
  "job.cancelled": "master",
  "job.dead": "master",
  "job.started": "worker",
  "job.progress": "worker",
  "job.completed": "worker",
  "job.failed": "worker",
};

/** The envelope of every event (DESIGN.md, Event envelope). */
export interface EventEnvelope<T extends EventType = EventType> {
  id: string;
  type: T;
  v: number;
  time: string;
  source: string;
  data: EventData<T>;
}

/** A discriminated union of all events: `switch (e.type)` narrows `e.data`. */
export type TroupeEvent = { [T in EventType]: EventEnvelope<T> }[EventType];
export type EventOf<T extends EventType> = Extract<TroupeEvent, { type: T }>;

export const EnvelopeSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9_.:-]+$", description: "unique; also the Nats-Msg-Id" }),
  type: Type.Union(EVENT_TYPES.map((t) => Type.Literal(t))),
  v: Type.Integer({ minimum: 1 }),
  time: Time,
  source: Type.String({ minLength: 1, maxLength: 200, description: "producer id (worker id, master id, ...)" }),
  data: Type.Object({}, { additionalProperties: true }),
}, { additionalProperties: false });
