import { hostname, networkInterfaces, totalmem } from "node:os";
import { assertValidId, parseLabels, slugWorkerName } from "@troupe/events";
import { bool, int, MAX_HEARTBEAT_MS, MAX_WORKER_JOBS, MIN_HEARTBEAT_MS, natsOptions, str, UsageError, type OptionValues } from "@troupe/events/node";
import { createTargetGuard } from "./ssrf.ts";

/** `troupe worker` options: a flag each, and the TROUPE_* variable in brackets. */
export const workerOptions = {
  ...natsOptions,
  name: str("worker name shown in the dashboard", { env: "TROUPE_WORKER_NAME", default: `Worker Node ${hostname()}`, metavar: "<name>" }),
  id: str("worker id (default: slug of the name, \"Worker Node Demo 01\" → wn-demo-01)", { env: "TROUPE_WORKER_ID", metavar: "<id>" }),
  type: str("worker type", { env: "TROUPE_WORKER_TYPE", default: "puppeteer", pattern: /^[A-Za-z0-9_.-]{1,64}$/, patternHelp: "1-64 characters of [A-Za-z0-9_.-]" }),
  ip: str("IP address announced at registration (default: first non-internal IPv4)", { env: "TROUPE_WORKER_IP", metavar: "<ip>", pattern: /^[A-Za-z0-9.:-]{1,64}$/, patternHelp: "an IP address or host name of at most 64 characters" }),
  host: str("address the /status HTTP server binds to", { env: "TROUPE_WORKER_HOST", default: "0.0.0.0", metavar: "<addr>", pattern: /^[A-Za-z0-9.:-]{1,255}$/, patternHelp: "an IP address or host name" }),
  port: int("/status HTTP port (default 3002; when it is taken, the next free one; a port given here must be free; 0 = any)", { env: "TROUPE_WORKER_PORT", min: 0, max: 65535, metavar: "<port>" }),
  maxJobs: int("jobs run at the same time", { env: "TROUPE_MAX_JOBS", default: 2, min: 1, max: MAX_WORKER_JOBS }),
  memoryMb: int("memory announced in MiB (2^20 bytes; default: detected total)", { env: "TROUPE_WORKER_MEMORY_MB", min: 0, metavar: "<MiB>" }),
  heartbeatMs: int("heartbeat interval", { env: "TROUPE_HEARTBEAT_MS", default: 30_000, min: MIN_HEARTBEAT_MS, max: MAX_HEARTBEAT_MS, metavar: "<ms>" }),
  chromiumPath: str("Chromium executable", { env: "TROUPE_CHROMIUM_PATH", default: "/usr/bin/chromium", metavar: "<path>" }),
  recycleAfter: int("browser contexts a browser serves before it is replaced", { env: "TROUPE_RECYCLE_AFTER", default: 50, min: 1, max: 100_000 }),
  jobLease: int("the job lease when a master's assignment does not name its own (masters before 2026-11-30; a current master sends its lease with every assignment and the attempt follows that one): a running attempt reports progress every third of the lease, or every 5 s when that is sooner, and once NATS has acknowledged nothing of this worker's for 5/6 of the shorter of the lease and three heartbeats, it waits before its next step until the link is back and the master could stop it", { env: "TROUPE_JOB_LEASE_MS", default: 30_000, min: 100, metavar: "<ms>" }),
  attemptCheck: int("how long an attempt held after a silence asks the leading master whether it is still this worker's (asked again while none leads, as in a failover: keep it above the masters' TROUPE_LEADER_LEASE_MS); then it goes on", { env: "TROUPE_ATTEMPT_CHECK_MS", default: 30_000, min: 500, max: 600_000, metavar: "<ms>" }),
  stepTimeoutMs: int("default timeout of one step (a scenario's `timeout` overrides it)", { env: "TROUPE_STEP_TIMEOUT_MS", default: 30_000, min: 1, max: 600_000, metavar: "<ms>" }),
  drainGraceMs: int("on shutdown/drain, how long running jobs may finish before they fail as retryable", { env: "TROUPE_DRAIN_GRACE_MS", default: 60_000, min: 0, max: 3_600_000, metavar: "<ms>" }),
  maxCpu: int("refuse new jobs while CPU usage (averaged over 3 samples) is above this % (100 = never)", { env: "TROUPE_MAX_CPU", default: 95, min: 1, max: 100, metavar: "<%>" }),
  minFreeMemoryMb: int("refuse new jobs while available memory is below this many MiB", { env: "TROUPE_MIN_FREE_MEMORY_MB", default: 256, min: 0, metavar: "<MiB>" }),
  allowPrivateTargets: bool("allow targets on loopback/private/link-local/metadata addresses (SSRF guard off)", { env: "TROUPE_ALLOW_PRIVATE_TARGETS", default: false }),
  allowedTargets: str("comma-separated hosts or CIDRs allowed even when private, e.g. intranet.local,10.1.0.0/16", { env: "TROUPE_ALLOWED_TARGETS", default: "", metavar: "<list>" }),
  allowScriptSteps: bool("allow steps that run page JavaScript (waitForExpression)", { env: "TROUPE_ALLOW_SCRIPT_STEPS", default: false }),
  webrtcUdp: bool("let pages' WebRTC send UDP outside the job's proxy and the SSRF guard (off: WebRTC reveals no address and sends no UDP; it works through a TURN server over TCP)", { env: "TROUPE_WEBRTC_UDP", default: false }),
  failureScreenshots: bool("when an attempt fails while its page can still show something, take a screenshot of the viewport (003-failed.png for step 3, listed in job.failed), giving the page 3 s; off: the failure's URL and title are still logged", { env: "TROUPE_FAILURE_SCREENSHOTS", default: true }),
  labels: str("labels jobs can ask for (a job's workerLabels must all be here), comma-separated, e.g. region=eu,residential", { env: "TROUPE_WORKER_LABELS", default: "", metavar: "<list>" }),
} as const;

export type WorkerOptionValues = OptionValues<typeof workerOptions>;

export const DEFAULT_STATUS_PORT = 3002;

/** Everything the worker runs with, derived and checked once at start. */
export interface WorkerConfig {
  natsUrl: string;
  /** CA file of the NATS server's TLS certificate; empty: none. */
  natsCa: string;
  dataDir: string;
  prefix: string;
  name: string;
  workerId: string;
  type: string;
  ip: string;
  host: string;
  /** Port to try; `scanPorts` means the next free one is taken when it is busy. */
  port: number;
  scanPorts: boolean;
  maxJobs: number;
  memoryMb: number;
  heartbeatMs: number;
  jobLeaseMs: number;
  attemptCheckMs: number;
  chromiumPath: string;
  recycleAfter: number;
  stepTimeoutMs: number;
  drainGraceMs: number;
  maxCpu: number;
  minFreeMemoryMb: number;
  allowPrivateTargets: boolean;
  allowedTargets: string[];
  allowScriptSteps: boolean;
  webrtcUdp: boolean;
  failureScreenshots: boolean;
  labels: string[];
}

/** First non-internal IPv4 address, else loopback. */
export function detectIp(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

/** Turns parsed options into a config; a bad combination is a UsageError naming the option. */
export function resolveConfig(v: WorkerOptionValues, detected = { ip: detectIp, memoryMb: () => Math.round(totalmem() / 1024 / 1024) }): WorkerConfig {
  const name = v.name.trim();
  if (!name || name.length > 200) throw new UsageError(`--name [TROUPE_WORKER_NAME]: expected 1-200 characters, got ${JSON.stringify(v.name)}`);
  let workerId: string;
  try {
    workerId = assertValidId(v.id ?? slugWorkerName(name), v.id ? "--id [TROUPE_WORKER_ID]" : `worker id derived from the name ${JSON.stringify(name)}`);
  } catch (e) {
    throw new UsageError((e as Error).message + (v.id ? "" : "; set --id [TROUPE_WORKER_ID]"));
  }
  const allowedTargets = v.allowedTargets.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  try {
    createTargetGuard({ allowPrivate: false, allowed: allowedTargets });
  } catch (e) {
    throw new UsageError(`--allowed-targets [TROUPE_ALLOWED_TARGETS]: ${(e as Error).message}`);
  }
  let labels: string[];
  try {
    labels = parseLabels(v.labels);
    // Commas alone (",,") meant labels and gave none, silently (a walkthrough); an empty value is still "no labels".
    if (labels.length === 0 && v.labels.trim() !== "") throw new Error(`no label in ${JSON.stringify(v.labels)}: labels are comma-separated, e.g. region=eu,gpu (empty for none)`);
  } catch (e) {
    throw new UsageError(`--labels [TROUPE_WORKER_LABELS]: ${(e as Error).message}`);
  }
  return {
    natsUrl: v.natsUrl,
    natsCa: v.natsCa,
    dataDir: v.dataDir,
    prefix: v.prefix,
    name,
    workerId,
    type: v.type,
    ip: v.ip ?? detected.ip(),
    host: v.host,
    port: v.port ?? DEFAULT_STATUS_PORT,
    scanPorts: v.port === undefined,
    maxJobs: v.maxJobs,
    memoryMb: v.memoryMb ?? detected.memoryMb(),
    heartbeatMs: v.heartbeatMs,
    jobLeaseMs: v.jobLease,
    attemptCheckMs: v.attemptCheck,
    chromiumPath: v.chromiumPath,
    recycleAfter: v.recycleAfter,
    stepTimeoutMs: v.stepTimeoutMs,
    drainGraceMs: v.drainGraceMs,
    maxCpu: v.maxCpu,
    minFreeMemoryMb: v.minFreeMemoryMb,
    allowPrivateTargets: v.allowPrivateTargets,
    allowedTargets,
    allowScriptSteps: v.allowScriptSteps,
    webrtcUdp: v.webrtcUdp,
    failureScreenshots: v.failureScreenshots,
    labels,
  };
}

/** The start-up banner: name, id, type, IP, max jobs, memory (the seed's console output). */
export function describeConfig(c: WorkerConfig): string {
  const rows: [string, string][] = [
    ["Name", c.name],
    ["ID", c.workerId],
    ["Type", c.type],
    ["IP", c.ip],
    ["Max jobs", String(c.maxJobs)],
    ["Memory", `${c.memoryMb} MiB`],
    ["NATS", c.natsCa ? `${c.natsUrl} (TLS, CA ${c.natsCa})` : c.natsUrl],
  ];
  rows.push(["Heartbeat", `${c.heartbeatMs / 1000} s`]);
  if (c.allowPrivateTargets) rows.push(["SSRF guard", "off (private targets allowed)"]);
  else if (c.allowedTargets.length) rows.push(["SSRF allow", c.allowedTargets.join(", ")]);
  if (c.allowScriptSteps) rows.push(["Script steps", "allowed"]);
  if (c.webrtcUdp) rows.push(["WebRTC UDP", "allowed (outside the job's proxy and the SSRF guard)"]);
  if (!c.failureScreenshots) rows.push(["Screenshots", "none at failures"]);
  if (c.labels.length) rows.push(["Labels", c.labels.join(", ")]);
  return [`🎭 Troupe worker`, ...rows.map(([k, val]) => `   ${`${k}:`.padEnd(13)}${val}`)].join("\n");
}
