import type { TroupeEvent } from "./events.ts";

/** The key fields of an event as `k=v` pairs, for one-line displays (`troupe tail`, logs). */
export function describeEvent(e: TroupeEvent): string {
  const kv: [string, unknown][] = [];
  const d = e.data as Record<string, unknown>;
  if ("jobId" in d) kv.push(["job", d.jobId]);
  if ("workerId" in d) kv.push(["worker", d.workerId]);
  if ("attempt" in d) kv.push(["attempt", d.attempt]);
  switch (e.type) {
    case "job.submitted":
      kv.push(["priority", e.data.spec.priority], ["target", e.data.spec.url ?? `${e.data.spec.scenario?.steps.length ?? 0} steps`]);
      break;
    case "job.progress":
      kv.push(["progress", `${Math.round(e.data.progress)}%`]);
      // Numbered from 1, as every message and page does ("step 2 (assert)").
      if (e.data.currentStep) kv.push(["step", `${e.data.currentStep.index + 1}:${e.data.currentStep.type}`]);
      break;
    case "job.completed":
      kv.push(["duration", `${Math.round(e.data.metrics.totalDuration)}ms`], ["extracted", e.data.result.dataExtracted], ["screenshots", e.data.result.screenshots.length]);
      break;
    case "job.failed":
      kv.push(["retryable", e.data.error.retryable], ["error", truncate(e.data.error.message, 80)]);
      if (e.data.error.step) kv.push(["step", `${e.data.error.step.index + 1}:${e.data.error.step.type}`]);
      break;
    case "job.requeued":
      kv.push(["reason", e.data.reason], ["notBefore", e.data.notBefore]);
      break;
    case "job.dead":
      kv.push(["reason", e.data.reason]);
      break;
    case "job.cancelled":
      if (e.data.reason) kv.push(["reason", e.data.reason]);
      break;
    case "worker.registered":
      kv.push(["name", e.data.name], ["ip", e.data.ip], ["slots", e.data.capabilities.maxConcurrentJobs]);
      break;
    case "worker.heartbeat":
      kv.push(["status", e.data.status], ["jobs", `${e.data.currentJobs}/${e.data.maxConcurrentJobs}`], ["cpu", `${e.data.metrics.cpuUsage.toFixed(0)}%`], ["mem", `${Math.round(e.data.metrics.memoryUsage)}MiB`]);
      break;
    case "worker.lost":
      kv.push(["lastSeen", e.data.lastSeen], ["jobs", e.data.jobIds.length]);
      break;
    default:
      break;
  }
  return kv.map(([k, v]) => `${k}=${typeof v === "string" && /\s/.test(v) ? JSON.stringify(v) : String(v)}`).join(" ");
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
