import { missingLabels, scriptStepIndex, type AssignReply, type Command, type RefuseReason } from "@troupe/events";

/** The browsers this worker runs (a job's `browser` must be one of them, or unset). */
export const SUPPORTED_BROWSERS = ["chromium", "chrome"] as const;

export interface AdmissionState {
  draining: boolean;
  maxJobs: number;
  /** jobId → attempt of each running job. */
  running: ReadonlyMap<string, number>;
  /** Latest machine sample; null until the first one. */
  load: { cpuUsage: number; availableMemoryMb: number } | null;
  maxCpu: number;
  minFreeMemoryMb: number;
  allowScriptSteps: boolean;
  /** This worker's labels (a job's workerLabels must all be among them). */
  labels: readonly string[];
  /** Highest master epoch seen; an older one is a deposed master. */
  highestEpoch: number;
}

const refuse = (reason: RefuseReason, message: string, field?: string): AssignReply =>
  ({ accepted: false, reason, message, ...(field ? { field } : {}) });

/**
 * Decides whether to take an attempt (already schema-valid). Pure: the handler
 * supplies the state. Order: idempotent re-request, draining, invalid, duplicate,
 * browser, labels, slots, machine load.
 */
export function admit(cmd: Command<"worker.assign">, s: AdmissionState): AssignReply {
  const runningAttempt = s.running.get(cmd.jobId);
  // The master may retry a request whose reply it lost: the same attempt is accepted again.
  if (runningAttempt === cmd.attempt) return { accepted: true };
  if (s.draining) return refuse("draining", "the worker is draining and takes no new jobs");
  if (cmd.epoch < s.highestEpoch) return refuse("invalid", `stale master epoch ${cmd.epoch}; this worker has seen epoch ${s.highestEpoch}`, "epoch");
  if (!s.allowScriptSteps) {
    const i = scriptStepIndex(cmd.spec);
    if (i >= 0) return refuse("invalid", "waitForExpression step: page-JavaScript steps are disabled on this worker (TROUPE_ALLOW_SCRIPT_STEPS)", `spec.scenario.steps[${i}].type`);
  }
  if (runningAttempt !== undefined) return refuse("duplicate", `attempt ${runningAttempt} of job ${cmd.jobId} is still running here`);
  if (cmd.spec.browser && !(SUPPORTED_BROWSERS as readonly string[]).includes(cmd.spec.browser.toLowerCase())) {
    return refuse("unsupported-browser", `browser ${JSON.stringify(cmd.spec.browser)} is not available; this worker runs ${SUPPORTED_BROWSERS.join(", ")}`, "spec.browser");
  }
  const missing = missingLabels(s.labels, cmd.spec.workerLabels);
  if (missing.length) return refuse("labels", `the job wants label${missing.length > 1 ? "s" : ""} ${missing.join(", ")}; this worker has ${s.labels.length ? s.labels.join(", ") : "none"}`, "spec.workerLabels");
  if (s.running.size >= s.maxJobs) return refuse("full", `all ${s.maxJobs} job slots are busy`);
  // One decimal: 95.3 against 95 read "CPU usage 95% is above 95%".
  if (s.load && s.load.cpuUsage > s.maxCpu) return refuse("cpu", `CPU usage ${s.load.cpuUsage.toFixed(1)}% is above ${s.maxCpu}%`);
  if (s.load && s.load.availableMemoryMb < s.minFreeMemoryMb) return refuse("memory", `available memory ${Math.round(s.load.availableMemoryMb)} MiB is below ${s.minFreeMemoryMb} MiB`);
  return { accepted: true };
}
