import type { NatsConnection } from "@nats-io/nats-core";
import { decodeReply, subjectsFor, validateCommand } from "@troupe/events";
import { demoJob, pickKind } from "./scenarios.ts";

/**
 * Keeps submitting demo jobs through the same RPC the UI and CLI use, at
 * `perMinute` on average, until stopped. Each submission is validated with
 * the contract first; refusals and timeouts are logged, never fatal.
 */
export function startDemoJobs(nc: NatsConnection, o: { site: string; perMinute: number; prefix: string; log: (line: string) => void; workerLabels?: string[] }): () => void {
  const subject = subjectsFor(o.prefix).rpc("jobs.submit");
  let n = 0;
  let stopped = false;
  /** Before the first job is taken, "no responders" is the master still starting: said once, calmly. */
  let submittedOne = false;
  let toldWaiting = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    if (stopped) return;
    const kind = pickKind(Math.random());
    // The demo site listens on this machine's loopback: only workers that share it can run these jobs.
    const job = { ...demoJob(kind, o.site, n++), ...(o.workerLabels?.length ? { workerLabels: o.workerLabels } : {}) };
    const v = validateCommand("jobs.submit", job);
    if (!v.ok) {
      o.log(`demo job ${kind} is invalid (a bug): ${v.error.path}: ${v.error.message}`);
    } else {
      try {
        const m = await nc.request(subject, JSON.stringify(job), { timeout: 5000 });
        const r = decodeReply("jobs.submit", m.data);
        if (!r.ok) o.log(`master reply does not match the contract: ${r.error.message}`);
        else if (!r.value.ok) o.log(`demo job refused: ${r.value.error.message}`);
        else {
          submittedOne = true;
          o.log(`submitted ${kind} job ${r.value.jobId}`);
        }
      } catch (e) {
        const starting = !submittedOne && /no responders/i.test((e as Error).message);
        if (!starting) o.log(`cannot submit a demo job (${(e as Error).message}); retrying`);
        else if (!toldWaiting) o.log("waiting for the master to take jobs before the first demo job");
        toldWaiting ||= starting;
      }
    }
    // Exponential gaps (a Poisson process) look like real traffic.
    const meanMs = 60_000 / o.perMinute;
    timer = setTimeout(() => void tick(), Math.min(meanMs * 5, -Math.log(1 - Math.random()) * meanMs));
  };
  timer = setTimeout(() => void tick(), 500);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
