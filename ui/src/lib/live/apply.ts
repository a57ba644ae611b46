import { countJobOutcome, evolveJob, evolveWorker, notAfterPublished, type JobView, type TroupeEvent, type WorkerView } from "@troupe/events";

/**
 * The browser's copy of the read models, folded with the same reducers as the
 * projector. Plain Maps, mutated in place by `applyEvent`; the page's reactive
 * state is swapped once per animation frame (see live.svelte.ts).
 */
export interface LiveModels {
  workers: Map<string, WorkerView>;
  jobs: Map<string, JobView>;
  /** Add jobs first seen live (job.submitted) to `jobs`; pages that show one job say no. */
  trackNewJobs: boolean;
  /** Follow heartbeats/lifecycle of workers not in the map yet (a worker that starts after page load). */
  trackNewWorkers: boolean;
}

/** A long-open list tab keeps at most this many jobs (the oldest seen go first). */
export const MAX_TRACKED_JOBS = 2000;

export interface Applied {
  worker?: string;
  job?: string;
  /** Why the reducer refused the event (stale attempt, ...), when it did. */
  rejected?: string;
}

/**
 * Folds one decoded event into the models; returns what changed. `receivedMs`
 * (the server's time when the page got it) caps the event's time as the
 * projector caps it at the stream's publish time: a worker whose clock runs
 * ahead cannot keep itself "online" on this page after it stopped.
 */
export function applyEvent(m: LiveModels, event: TroupeEvent, receivedMs?: number): Applied {
  const e = receivedMs === undefined ? event : notAfterPublished(event, receivedMs);
  if (e.type.startsWith("worker.")) {
    const ev = e as Extract<TroupeEvent, { type: `worker.${string}` }>;
    const id = ev.data.workerId;
    const current = m.workers.get(id);
    if (!current && !m.trackNewWorkers) return {};
    m.workers.set(id, evolveWorker(current, ev));
    return { worker: id };
  }
  const ev = e as Extract<TroupeEvent, { type: `job.${string}` }>;
  const id = ev.data.jobId;
  const current = m.jobs.get(id);
  const out: Applied = {};
  let accepted = true;
  if (current || (ev.type === "job.submitted" && m.trackNewJobs)) {
    const r = evolveJob(current, ev);
    if (r.ok) {
      m.jobs.set(id, r.job);
      out.job = id;
      if (!current && m.jobs.size > MAX_TRACKED_JOBS) {
        const oldest = m.jobs.keys().next().value;
        if (oldest !== undefined) m.jobs.delete(oldest);
      }
    } else {
      accepted = false;
      out.rejected = r.reason;
    }
  }
  // A worker's success rate counts only outcomes the job reducer accepts; when
  // this page does not hold the job, the projector's fencing is trusted (the
  // catch-up reload corrects any difference), except for what it surely refuses:
  // an outcome without the attempt's token from a worker that echoes tokens (an
  // attack published 20 such completions for jobs that never existed, and the
  // page counted them until a reload).
  if (accepted && (ev.type === "job.completed" || ev.type === "job.failed")) {
    const w = m.workers.get(ev.data.workerId);
    const untokened = !current && w?.capabilities?.attemptTokens === true && ev.data.token === undefined;
    if (w && !untokened) {
      m.workers.set(w.id, countJobOutcome(w, ev));
      out.worker = w.id;
    }
  }
  return out;
}

/**
 * How far the server's clock is ahead of the browser's (negative: behind),
 * from the server's time in page data read at `browserNowMs`; 0 within
 * `slackMs`, which the page's load time alone can account for.
 */
export function clockOffset(serverNowMs: number, browserNowMs: number, slackMs: number): number {
  const d = serverNowMs - browserNowMs;
  return Math.abs(d) <= slackMs ? 0 : d;
}
