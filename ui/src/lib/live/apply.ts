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
  /** Jobs the page shows (its filter): past MAX_TRACKED_JOBS, the oldest job it does not show goes first. */
  shows?: (job: JobView) => boolean;
}

/** A long-open list tab keeps at most this many jobs (the oldest the page does not show go first, then the oldest). */
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
      if (!current && m.jobs.size > MAX_TRACKED_JOBS) evictOne(m);
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
  // Nor a worker's `cancelled` failure: a worker stops an attempt for that only when the master says so, which it
  // does once the log took the attempt (a job.cancelled or a requeue before it), so the projector refuses it (cancelling
  // a running job added a failure on the live workers page until a reload: a dashboard attack).
  if (accepted && (ev.type === "job.completed" || ev.type === "job.failed")) {
    const w = m.workers.get(ev.data.workerId);
    const untokened = !current && w?.capabilities?.attemptTokens === true && ev.data.token === undefined;
    const refusedCancel = !current && ev.type === "job.failed" && ev.data.error.code === "cancelled";
    if (w && !untokened && !refusedCancel) {
      m.workers.set(w.id, countJobOutcome(w, ev));
      out.worker = w.id;
    }
  }
  return out;
}

/** Drops one job: the oldest held (Map order is submission order, seedModels) the page does not show, else the oldest.
 *  The first key went, which the newest-first seed made the newest row shown (a dashboard attack). */
function evictOne(m: LiveModels): void {
  let victim: string | undefined;
  for (const [id, j] of m.jobs) {
    victim ??= id;
    if (!m.shows || !m.shows(j)) {
      victim = id;
      break;
    }
  }
  if (victim !== undefined) m.jobs.delete(victim);
}

/** The fields a worker's job outcomes make (countJobOutcome): only ever added to, never taken back. */
const OUTCOME_FIELDS = ["jobsCompleted", "jobsFailed", "successRate", "averageJobDuration", "averageResponseTime", "durationSum", "durationCount", "responseTimeSum", "responseTimeCount"] as const;
const outcomes = (w: WorkerView) => w.jobsCompleted + w.jobsFailed;

/**
 * Seeds the models with server-rendered rows (pure). `merge` (a catch-up reload of the same page, not a new
 * one): what the page folded that the rows lack is kept, as the rows may be older than the page. The server
 * renders from SQLite, which lags the live feed while the projector catches up (a restart, a rebuild, a
 * paused process): replaced wholesale, jobs the page showed completed went back to running, and stayed so
 * after the projector caught up (a dashboard attack). So a held job newer than its row (its last event's
 * time) is kept, held jobs without a row are kept, and a worker keeps the outcome counts of whichever copy
 * counted more (they only grow). Jobs are held oldest first, so the oldest go first past MAX_TRACKED_JOBS.
 */
export function seedModels(m: LiveModels, workers: readonly WorkerView[] | undefined, jobs: readonly JobView[] | undefined, merge: boolean): void {
  if (workers) {
    const next = new Map<string, WorkerView>();
    for (const w of workers) {
      const held = merge ? m.workers.get(w.id) : undefined;
      if (!held || outcomes(held) <= outcomes(w)) next.set(w.id, w);
      else {
        const kept: WorkerView = { ...w };
        for (const f of OUTCOME_FIELDS) (kept as unknown as Record<string, number>)[f] = held[f];
        next.set(w.id, kept);
      }
    }
    if (merge) for (const [id, w] of m.workers) if (!next.has(id)) next.set(id, w);
    m.workers = next;
  }
  if (jobs) {
    const rows = new Map(jobs.map((j) => [j.id, j]));
    if (merge) {
      for (const [id, held] of m.jobs) {
        const row = rows.get(id);
        if (!row || held.updatedAt > row.updatedAt) rows.set(id, held);
      }
    }
    m.jobs = new Map([...rows.values()].sort((a, b) => (a.submittedAt === b.submittedAt ? (a.id < b.id ? -1 : 1) : a.submittedAt < b.submittedAt ? -1 : 1)).map((j) => [j.id, j]));
  }
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
