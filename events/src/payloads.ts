import { Type, type Static } from "@sinclair/typebox";
import { ID_MAX_LENGTH, ID_PATTERN } from "./ids.ts";
import { LABEL_PATTERN, LABELS_MAX } from "./labels.ts";
import { ScenarioSchema } from "./scenario.ts";

/** Shapes shared by events and commands. Units are in the field descriptions. */

export const Id = Type.String({ pattern: ID_PATTERN, minLength: 1, maxLength: ID_MAX_LENGTH, description: "token of [A-Za-z0-9_-]" });
export const Time = Type.String({ format: "date-time", maxLength: 40, description: "ISO-8601 time" });
/** Highest attempt number the contract allows; refusals and redrives use numbers too, so the master turns a job dead rather than go past it. */
export const ATTEMPT_MAX = 1000;
export const Attempt = Type.Integer({ minimum: 1, maximum: ATTEMPT_MAX, description: "attempt number, a fencing token" });
export const Epoch = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: "leader epoch (KV revision of the master lease) the decision was made in" });
/** Every number has a bound: no measured quantity comes near this one (31 years in ms, a petabyte in MB), and sums and averages of such numbers stay finite. */
export const QUANTITY_MAX = 1e12;
/** A measured, non-negative quantity (a duration, a size, a rate), bounded by QUANTITY_MAX. */
export const Quantity = (description?: string) => Type.Number({ minimum: 0, maximum: QUANTITY_MAX, ...(description ? { description } : {}) });
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Percent = Type.Number({ minimum: 0, maximum: 100 });
const NonNeg = Quantity();

export const BrowserInfo = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64, description: "e.g. chromium" }),
  version: Type.String({ maxLength: 64 }),
}, { additionalProperties: false });

/** What operators match jobs to workers by: a region, a network, a proxy pool (`region=eu`, `residential`). Compared exactly. */
export const Label = Type.String({ minLength: 1, maxLength: 64, pattern: LABEL_PATTERN.source, description: "1-64 characters of [A-Za-z0-9_.:=/-], e.g. region=eu" });
export const Labels = (description: string) => Type.Array(Label, { maxItems: LABELS_MAX, description });

/**
 * A secret per attempt: the master sends it with the assignment to that worker only, the worker's
 * events for the attempt carry it, and `job.assigned` records only its SHA-256, so a worker
 * credential that cannot read the log cannot report on an attempt it was not given (docs/security.md).
 */
export const AttemptToken = Type.String({ pattern: "^[A-Za-z0-9_-]{22,64}$", description: "the attempt's token from worker.assign" });
export const AttemptTokenHash = Type.String({ pattern: "^[0-9a-f]{64}$", description: "SHA-256 (hex) of the attempt's token" });

export const Capabilities = Type.Object({
  maxConcurrentJobs: Type.Integer({ minimum: 1, maximum: 1000 }),
  memory: Type.Integer({ minimum: 0, maximum: QUANTITY_MAX, description: "total memory in MiB (2^20 bytes)" }),
  cpu: Type.Integer({ minimum: 1, maximum: 1_000_000, description: "CPU cores" }),
  supportedBrowsers: Type.Array(BrowserInfo, { maxItems: 16 }),
  labels: Type.Optional(Labels("the worker's labels (TROUPE_WORKER_LABELS); a job's workerLabels must all be among them")),
  attemptTokens: Type.Optional(Type.Boolean({ description: "the worker echoes an assignment's token in its events for that attempt" })),
  scriptSteps: Type.Optional(Type.Literal(true, { description: "the worker runs page-JavaScript steps (waitForExpression) because TROUPE_ALLOW_SCRIPT_STEPS is on; sent only when true" })),
}, { additionalProperties: false });

export const Fingerprint = Type.Object({
  userAgent: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
  userAgentMetadata: Type.Optional(Type.Object({
    brands: Type.Optional(Type.Array(Type.Object({ brand: Type.String({ maxLength: 100 }), version: Type.String({ maxLength: 50 }) }, { additionalProperties: false }), { maxItems: 10 })),
    fullVersionList: Type.Optional(Type.Array(Type.Object({ brand: Type.String({ maxLength: 100 }), version: Type.String({ maxLength: 50 }) }, { additionalProperties: false }), { maxItems: 10 })),
    fullVersion: Type.Optional(Type.String({ maxLength: 50 })),
    platform: Type.String({ maxLength: 50 }),
    platformVersion: Type.String({ maxLength: 50 }),
    architecture: Type.String({ maxLength: 50 }),
    model: Type.String({ maxLength: 100 }),
    mobile: Type.Boolean(),
    bitness: Type.Optional(Type.String({ maxLength: 10 })),
    wow64: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false, description: "client hints (Sec-CH-UA-*) that match the user agent" })),
  viewport: Type.Optional(Type.Object({
    width: Type.Integer({ minimum: 1, maximum: 10000 }),
    height: Type.Integer({ minimum: 1, maximum: 10000 }),
    deviceScaleFactor: Type.Optional(Type.Number({ minimum: 0.1, maximum: 10 })),
    isMobile: Type.Optional(Type.Boolean()),
    hasTouch: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false })),
  screen: Type.Optional(Type.Object({
    width: Type.Integer({ minimum: 1, maximum: 10000 }),
    height: Type.Integer({ minimum: 1, maximum: 10000 }),
  }, { additionalProperties: false })),
  locale: Type.Optional(Type.String({ pattern: "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", maxLength: 35, description: "BCP 47 tag, e.g. de-DE" })),
  timezone: Type.Optional(Type.String({ pattern: "^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", maxLength: 64, description: "IANA zone, e.g. Europe/Berlin" })),
  geolocation: Type.Optional(Type.Object({
    latitude: Type.Number({ minimum: -90, maximum: 90 }),
    longitude: Type.Number({ minimum: -180, maximum: 180 }),
    accuracy: Type.Optional(Type.Number({ minimum: 0, maximum: 1e7 })),
  }, { additionalProperties: false })),
}, { additionalProperties: false });

const ProxyServer = Type.String({ pattern: "^(https?|socks4|socks5)://[^\\s/]+$", maxLength: 300, description: "scheme://host:port" });
const ProxyBypass = Type.Array(Type.String({ maxLength: 200 }), { maxItems: 50 });

/** A job's proxy as the log keeps it: the password only sealed (events/src/node/secrets.ts), never in clear. */
// No control characters: a proxy login travels in request headers.
const ProxyUsername = Type.String({ maxLength: 200, pattern: "^[^\\u0000-\\u001f\\u007f]*$", description: "no control characters" });

export const Proxy = Type.Object({
  server: ProxyServer,
  username: Type.Optional(ProxyUsername),
  sealedPassword: Type.Optional(Type.String({ pattern: "^v1\\.[A-Za-z0-9_-]{16}\\.[A-Za-z0-9_-]{22,600}$", description: "the password sealed by the master with TROUPE_SECRETS_KEY; only workers open it" })),
  bypass: Type.Optional(ProxyBypass),
}, { additionalProperties: false });

/** A proxy as a client submits it: the password in clear (the master seals it before anything is logged). */
export const SubmitProxy = Type.Object({
  server: ProxyServer,
  username: Type.Optional(ProxyUsername),
  // RFC 7617: no control characters in Basic credentials (a CR/LF one could only fail at the proxy, much later).
  password: Type.Optional(Type.String({ maxLength: 200, pattern: "^[^\\u0000-\\u001f\\u007f]*$", description: "no control characters" })),
  bypass: Type.Optional(ProxyBypass),
}, { additionalProperties: false });

export const PRIORITY_MIN = 1;
export const PRIORITY_MAX = 10;
export const DEFAULT_PRIORITY = 5;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_JOB_TIMEOUT_MS = 120_000;

/** A job as submitted (defaults applied). */
export const JobSpec = Type.Object({
  url: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, pattern: "^https?://[^\\s]+$", description: "http(s) URL to open" })),
  scenario: Type.Optional(ScenarioSchema),
  priority: Type.Integer({ minimum: PRIORITY_MIN, maximum: PRIORITY_MAX, description: "1-10, higher runs first" }),
  fingerprint: Type.Optional(Fingerprint),
  proxy: Type.Optional(Proxy),
  maxAttempts: Type.Integer({ minimum: 1, maximum: 20 }),
  timeoutMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, description: "hard timeout of one attempt in ms" }),
  runAt: Type.Optional(Time),
  expiresAt: Type.Optional(Time),
  browser: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "browser name, e.g. chromium" })),
  workerLabels: Type.Optional(Labels("runs only on a worker that has every one of these labels")),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 64, pattern: "^[A-Za-z0-9_.:/-]+$" }), { maxItems: 20 })),
}, { additionalProperties: false });

export const LogEntry = Type.Object({
  time: Time,
  level: Type.Union([Type.Literal("debug"), Type.Literal("info"), Type.Literal("warn"), Type.Literal("error")]),
  message: Type.String({ maxLength: 4000 }),
  source: Type.Optional(Type.Union([Type.Literal("worker"), Type.Literal("console"), Type.Literal("page")])),
}, { additionalProperties: false });

export const StepRef = Type.Object({
  index: Count,
  type: Type.String({ maxLength: 64 }),
  name: Type.Optional(Type.String({ maxLength: 200 })),
}, { additionalProperties: false });

export const StepTiming = Type.Object({
  index: Count,
  type: Type.String({ maxLength: 64 }),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  status: Type.Union([Type.Literal("ok"), Type.Literal("failed"), Type.Literal("skipped")]),
  durationMs: NonNeg,
  error: Type.Optional(Type.String({ maxLength: 4000 })),
}, { additionalProperties: false });

export const WorkerStatus = Type.Union([Type.Literal("online"), Type.Literal("busy"), Type.Literal("draining")]);

export const HeartbeatMetrics = Type.Object({
  memoryUsage: NonNeg,
  memoryTotal: Type.Optional(NonNeg),
  cpuUsage: Percent,
  diskUsage: Percent,
  networkUsage: Quantity("Mbps, rx+tx"),
  jobsCompleted: Count,
  jobsFailed: Count,
  averageResponseTime: Quantity("ms"),
  openContexts: Type.Optional(Count),
}, { additionalProperties: false, description: "memoryUsage and memoryTotal in MiB (2^20 bytes), cpuUsage and diskUsage in %" });

export const JobError = Type.Object({
  message: Type.String({ maxLength: 8000 }),
  code: Type.Optional(Type.String({ maxLength: 64, description: "e.g. timeout, cancelled, step-failed, browser-crashed, navigation, ssrf, drained" })),
  step: Type.Optional(StepRef),
  retryable: Type.Boolean(),
}, { additionalProperties: false });

export const RequeueReason = Type.Union([
  Type.Literal("lease-expired"),
  Type.Literal("worker-lost"),
  Type.Literal("worker-refused"),
  Type.Literal("failed-retryable"),
  Type.Literal("redrive"),
]);

export type JobSpec = Static<typeof JobSpec>;
export type Fingerprint = Static<typeof Fingerprint>;
export type Proxy = Static<typeof Proxy>;
export type SubmitProxy = Static<typeof SubmitProxy>;
export type Capabilities = Static<typeof Capabilities>;
export type BrowserInfo = Static<typeof BrowserInfo>;
export type LogEntry = Static<typeof LogEntry>;
export type StepRef = Static<typeof StepRef>;
export type StepTiming = Static<typeof StepTiming>;
export type HeartbeatMetrics = Static<typeof HeartbeatMetrics>;
export type JobError = Static<typeof JobError>;
export type RequeueReason = Static<typeof RequeueReason>;
export type WorkerStatus = Static<typeof WorkerStatus>;
