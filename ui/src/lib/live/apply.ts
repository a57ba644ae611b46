import { countJobOutcome, evolveJob, evolveWorker, isoAfter, minuteOf, notAfterPublished, scenarioLabel, type JobStatus, type JobView, type TroupeEvent, type WorkerView } from "@troupe/events";
import { labelOnlyScenario } from "../jobs.ts";
import { addRecent, mergeRecent, type RecentBuckets } from "../recent.ts";

/**
 * The browser's copy of the read models, folded with the same reducers as the
 * projector. Plain Maps, mutated in place by `applyEvent`; the page's reactive
 * state is swapped once per animation frame (see live.svelte.ts).
 */
export interface LiveModels {
  workers: Map<string, WorkerView>;
  /**
   * Each worker's finished attempts per minute of the recent window (ui/src/lib/recent.ts), counted with its
   * all-time counts: seeded from the server's read of `worker_series`, then one more per outcome folded, in the
   * minute the projector files it under (the event's time, capped as the projector caps it). Minutes that left the
   * window are dropped as outcomes come; the figure itself is summed at the page's clock, so it rolls off with no
   * event.
   */
  recent: Map<string, RecentBuckets>;
  jobs: Map<string, JobView>;
  /** Add jobs first seen live (job.submitted) to `jobs`; pages that show one job say no. */
  trackNewJobs: boolean;
  /** Follow heartbeats/lifecycle of workers not in the map yet (a worker that starts after page load). */
  trackNewWorkers: boolean;
  /**
   * Keep only what a list row shows: a finished job's result, logs, steps and metrics and the scenario are dropped
   * (a list tab kept up to 2,000 jobs with their results: 166 KB a job with large extractions, in a soak).
   */
  summariesOnly?: boolean;
  /** The jobs on screen (the page's rows): past MAX_TRACKED_JOBS they go last (evictOne). */
  onScreen?: ReadonlySet<string>;
}

/** A job view without what only its own page shows (LiveModels.summariesOnly); the reducer needs none of it. */
export function rowOnly(j: JobView): JobView {
  if (j.result === undefined && j.logs === undefined && j.steps === undefined && j.metrics === undefined && j.screenshots === undefined && j.spec.scenario === undefined) return j;
  const { result: _r, logs: _l, steps: _s, metrics: _m, screenshots: _sh, ...row } = j;
  // Of the scenario, only what names the job in its row (title, first navigate step).
  const { scenario: _sc, ...spec } = j.spec;
  const named = labelOnlyScenario(scenarioLabel(j.spec));
  return { ...row, spec: named ? { ...spec, scenario: named } : spec };
}

/** A long-open list tab keeps at most this many jobs (evictOne says which go first). */
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
      m.jobs.set(id, m.summariesOnly ? rowOnly(r.job) : r.job);
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
      m.recent.set(w.id, addRecent(m.recent.get(w.id), minuteOf(e.time), ev.type === "job.completed" ? "completed" : "failed", receivedMs ?? Date.parse(e.time)));
      out.worker = w.id;
    }
  }
  return out;
}

/**
 * Drops one job, oldest first (Map order is submission order, seedModels): a settled one not on screen, else one
 * under way not on screen, else the oldest. The first key went, which the newest-first seed made the newest row
 * shown (2,000 new submissions emptied a dead-jobs list: a dashboard attack); and jobs under way are what a
 * `completed` list waits for (a review).
 */
function evictOne(m: LiveModels): void {
  let underWay: string | undefined;
  let first: string | undefined;
  for (const [id, j] of m.jobs) {
    first ??= id;
    if (m.onScreen?.has(id)) continue;
    if (!isUnderWay(j.status, j.error?.retryable)) {
      m.jobs.delete(id);
      return;
    }
    underWay ??= id;
  }
  const victim = underWay ?? first;
  if (victim !== undefined) m.jobs.delete(victim);
}

const isUnderWay = (s: JobStatus, retryable: boolean | undefined) => s === "queued" || s === "requeued" || s === "assigned" || s === "running" || (s === "failed" && retryable === true);

/**
 * How far a job has come (pure): attempt, then stage, then progress. Every way back to waiting (a requeue, a
 * redrive) takes a new attempt, so a later state never ranks lower. Event times do not order it: a job's events come
 * from the master and its worker, on two clocks, and the page and the projector cap future times differently (a
 * review).
 */
export function jobRank(j: Pick<JobView, "attempt" | "status" | "progress">): [number, number, number] {
  const stage = j.status === "queued" || j.status === "requeued" ? 0 : j.status === "assigned" ? 1 : j.status === "running" ? 2 : 3;
  return [j.attempt, stage, j.progress];
}

function rankedAbove(a: JobView, b: JobView): boolean {
  const x = jobRank(a);
  const y = jobRank(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! > y[i]!;
  return false;
}

/** The fields a worker's job outcomes make (countJobOutcome): only ever added to, never taken back. */
const OUTCOME_FIELDS = ["jobsCompleted", "jobsFailed", "successRate", "averageJobDuration", "averageResponseTime", "durationSum", "durationCount", "responseTimeSum", "responseTimeCount"] as const;
const outcomes = (w: WorkerView) => w.jobsCompleted + w.jobsFailed;

/**
 * Seeds the models with server-rendered rows (pure). `merge` (a catch-up reload of the same page, not a new
 * one): what the page folded that the rows lack is kept, as the rows may be older than the page. The server
 * renders from SQLite, which lags the live feed while the projector catches up (a restart, a rebuild, a
 * paused process): replaced wholesale, jobs the page showed completed went back to running, and stayed so
 * after the projector caught up (a dashboard attack). So a held job further along than its row (jobRank) is
 * kept, held jobs without a row are kept, and a held worker whose row has not seen the latest event of it the
 * page folded is kept, with the larger outcome counts of the two (they only grow); a row that has seen it is
 * taken whole, which corrects what the page counted and the projector refused. Jobs are held oldest first. A
 * worker's recent buckets (`recent`) follow its row: taken with a row taken whole, else merged minute by minute.
 */
export function seedModels(
  m: LiveModels, workers: readonly WorkerView[] | undefined, jobs: readonly JobView[] | undefined, merge: boolean,
  /** The workers' buckets of the recent window, read with the rows (a worker without any: none). */
  recent?: ReadonlyMap<string, RecentBuckets>,
): void {
  if (workers) {
    const next = new Map<string, WorkerView>();
    const nextRecent = new Map<string, RecentBuckets>();
    for (const w of workers) {
      const held = merge ? m.workers.get(w.id) : undefined;
      const rowBehind = held?.lastEventAt !== undefined && (w.lastEventAt === undefined || isoAfter(w.lastEventAt, held.lastEventAt));
      const rowRecent = recent?.get(w.id);
      if (!held || !rowBehind) {
        next.set(w.id, w);
        if (rowRecent) nextRecent.set(w.id, rowRecent);
        continue;
      }
      // The row has not seen everything the page folded: per minute, the larger counts of the two (mergeRecent).
      nextRecent.set(w.id, mergeRecent(m.recent.get(w.id), rowRecent));
      if (outcomes(w) <= outcomes(held)) next.set(w.id, held);
      else {
        // Each copy lacks something (the page missed events while away, the row the latest ones): the larger counts.
        const kept: WorkerView = { ...held };
        for (const f of OUTCOME_FIELDS) (kept as unknown as Record<string, number>)[f] = w[f];
        next.set(w.id, kept);
      }
    }
    if (merge) {
      for (const [id, w] of m.workers) {
        if (next.has(id)) continue;
        next.set(id, w);
        const held = m.recent.get(id);
        if (held) nextRecent.set(id, held);
      }
    }
    m.workers = next;
    m.recent = nextRecent;
  }
  if (jobs) {
    const rows = new Map(jobs.map((j) => [j.id, j]));
    if (merge) {
      for (const [id, held] of m.jobs) {
        const row = rows.get(id);
        if (!row || rankedAbove(held, row)) rows.set(id, held);
      }
    }
    m.jobs = new Map([...rows.values()].sort((a, b) => (a.submittedAt === b.submittedAt ? (a.id < b.id ? -1 : 1) : a.submittedAt < b.submittedAt ? -1 : 1)).map((j) => [j.id, j]));
    // A merge may hold more than the bound (rows plus what the page kept).
    while (m.jobs.size > MAX_TRACKED_JOBS) evictOne(m);
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
