import { attemptOutcome, attemptRecordOf, jobSummary, type AttemptRecord, type JobStatus, type JobSummary, type JobView, type ScenarioLabel, type WorkerJob } from "@troupe/events";

/**
 * A list row as a JobView the shared reducer can fold: lists carry summaries
 * (no spec, history or epoch), and `evolveJob` only needs the fencing fields
 * (status, attempt, workerId) from them. Epoch 0 accepts any master decision;
 * the projector already fenced epochs for the rows it wrote.
 */
export function viewFromSummary(s: JobSummary): JobView {
  // The scenario's label goes back into the spec it came from, so the row made from this view again keeps it.
  const scenario = labelOnlyScenario(s.scenario);
  return { ...s, spec: { priority: s.priority, maxAttempts: 1, timeoutMs: 1000, ...(scenario ? { scenario } : {}) }, epoch: 0, history: [] } as JobView;
}

/**
 * A scenario cut down to what names it in a list (its title, its first navigate step): what list pages keep of a
 * job's scenario (a list tab held 2,000 whole ones), from which `scenarioLabel` gives the same label back.
 */
export function labelOnlyScenario(l: ScenarioLabel | undefined): JobView["spec"]["scenario"] {
  if (!l) return undefined;
  return { ...(l.title !== undefined ? { title: l.title } : {}), steps: l.url !== undefined ? [{ type: "navigate", url: l.url }] : [] };
}

const summaries = new WeakMap<JobView, JobSummary>();

/**
 * `jobSummary(j)`, the same object for the same view. Views are values (a change makes a new one), so a job that did
 * not change keeps its row object and the table does not redo it: a list page rebuilt all 2,000 tracked jobs' rows
 * on every frame with events, ~340 KiB of garbage a frame (a soak saw its tab grow ~100 MB/h until a GC).
 */
export function summaryOf(j: JobView): JobSummary {
  let s = summaries.get(j);
  if (s === undefined) summaries.set(j, (s = jobSummary(j)));
  return s;
}

/** Jobs for a list page: newest first, only those matching the status filter; a job that did not change keeps its row (summaryOf). */
export function listRows(jobs: Iterable<JobView>, status: JobStatus | "" | undefined, limit: number, workerId?: string): JobSummary[] {
  const picked: JobView[] = [];
  for (const j of jobs) if ((!status || j.status === status) && (!workerId || j.workerId === workerId)) picked.push(j);
  // The models hold jobs oldest first, so this is mostly one descending run, which the sort takes in linear time.
  picked.sort((a, b) => (a.submittedAt === b.submittedAt ? (a.id < b.id ? 1 : -1) : a.submittedAt < b.submittedAt ? 1 : -1));
  const n = Math.min(limit, picked.length);
  const rows = new Array<JobSummary>(n);
  for (let i = 0; i < n; i++) rows[i] = summaryOf(picked[i]!);
  return rows;
}

/** A question asked in the page (ConfirmBar): in bold, what it does, and the label of the button that keeps things. */
export interface Question {
  title: string;
  effect: string;
  keep: string;
}

/**
 * The question the job page asks before a single Cancel, as "Cancel all" asks before its run (it acted on one
 * click, an audit). It names the job and where it is; a cancel is for good (only failed and dead jobs are retried).
 * Asked in the page, it follows the job live (its status and progress) while it is open.
 */
export function cancelQuestion(j: { id: string; status: JobStatus; progress: number }): Question {
  const where = j.status === "running" ? `running, ${Math.round(j.progress)} %` : j.status;
  return { title: `Cancel job ${j.id} (${where})?`, effect: "A cancelled job cannot be retried.", keep: `Keep it ${j.status}` };
}

/** The question the Jobs page's "Retry all" / "Cancel all" asks once its dry run counted `matched` jobs (1 or more). */
export function bulkQuestion(a: "retry" | "cancel", o: { status: JobStatus; q?: string; matched: number; more: boolean }): Question & { confirm: string; notes: string[] } {
  const jobs = (n: number) => `${n} job${n === 1 ? "" : "s"}`;
  const verb = a === "retry" ? "Retry" : "Cancel";
  const them = o.matched === 1 ? "it" : "them";
  const notes: string[] = [];
  if (o.more) notes.push(`Only the newest ${o.matched} are taken; run it again for the rest.`);
  // Exactly the jobs counted (those of them that still match): not ones that arrive while the question is open.
  notes.push(`Exactly the ${jobs(o.matched)} counted here: any that turns ${o.status} while this is open is left alone, any no longer ${o.status} by then is skipped, and any the master refuses is listed.`);
  return {
    title: `${verb} ${o.matched} ${o.status} job${o.matched === 1 ? "" : "s"}${o.q ? ` matching “${o.q}”` : ""}?`,
    effect: a === "retry" ? "Each gets a new attempt, queued." : "A cancelled job cannot be retried; a running one is stopped on its worker.",
    notes,
    confirm: `${verb} ${jobs(o.matched)}`,
    keep: `Keep ${them} ${o.status}`,
  };
}

/** What a progress bar shows for a job: `stopped` greys it out. */
export interface ProgressShown {
  /** Width of the bar, 0–100. */
  value: number;
  stopped: boolean;
  /** "40 %", or "stopped at 40 %". */
  text: string;
}

/**
 * A job that ended without completing (failed, cancelled, dead) keeps the progress it reached — how far it got
 * is a fact of its attempt — but shows it stopped: greyed, "stopped at 40 %". It looked like a job still at 40 %
 * under way (an audit). A completed job is at 100 %; a waiting one at 0 % (a requeue starts the attempt over).
 */
export function progressShown(j: { status: JobStatus; progress: number }): ProgressShown {
  const value = Math.min(100, Math.max(0, j.progress));
  const stopped = j.status === "failed" || j.status === "cancelled" || j.status === "dead";
  return { value, stopped, text: `${stopped ? "stopped at " : ""}${Math.round(value)} %` };
}

/** How many jobs a worker's page lists. */
export const RECENT_JOBS = 20;

/** A row of a worker's "Recent jobs": the job as it is now and its latest attempt on this worker. */
export interface WorkerJobRow {
  job: JobSummary;
  here: AttemptRecord;
}

/** A worker page's server row as a view the live fold continues: its attempts are the history `evolveJob` closes. */
export function viewFromWorkerJob(r: WorkerJob): JobView {
  return { ...viewFromSummary(r.job), history: r.attempts.map(attemptRecordOf) };
}

/**
 * What a worker's page seeds: its rows, and the jobs under way it follows to see one assigned here later. A job in
 * both is taken as a row (with its attempts): the later of two views of one id wins the seed, and the summary of
 * the jobs under way has no history, which took the row off the page.
 */
export function workerPageJobs(rows: readonly WorkerJob[], active: readonly JobSummary[]): JobView[] {
  const ids = new Set(rows.map((r) => r.job.id));
  return [...active.filter((s) => !ids.has(s.id)).map(viewFromSummary), ...rows.map(viewFromWorkerJob)];
}

/**
 * How many of `jobs` are under way on `workerId` by the event log (assigned or running there): what a drain would
 * stop, as the Drain confirmation says it. The worker's own `currentJobs` comes with its heartbeats, up to an
 * interval late; the Overview's busy slots count the log's too.
 */
export function jobsUnderWayOn(jobs: Iterable<Pick<JobView, "workerId" | "status">>, workerId: string): number {
  let n = 0;
  for (const j of jobs) if (j.workerId === workerId && (j.status === "assigned" || j.status === "running")) n++;
  return n;
}

/** A view's row on a worker's page (or none: no attempt there), the same object while the view is (as summaryOf). */
const workerRows = new WeakMap<JobView, { workerId: string; row: WorkerJobRow | undefined }>();

/**
 * The jobs that had an attempt on `workerId`, newest of those attempts first (then by job id, as the read models
 * order them), at most `limit`: a job moved to another worker stays, with what happened to it here.
 */
export function workerJobRows(jobs: Iterable<JobView>, workerId: string, limit: number): WorkerJobRow[] {
  const rows: WorkerJobRow[] = [];
  for (const j of jobs) {
    const held = workerRows.get(j);
    if (held !== undefined && held.workerId === workerId) {
      if (held.row) rows.push(held.row);
      continue;
    }
    let here: AttemptRecord | undefined;
    for (const a of j.history) if (a.workerId === workerId && (!here || a.attempt > here.attempt)) here = a;
    const row = here ? { job: summaryOf(j), here } : undefined;
    workerRows.set(j, { workerId, row });
    if (row) rows.push(row);
  }
  rows.sort((a, b) => (a.here.assignedAt === b.here.assignedAt ? (a.job.id === b.job.id ? 0 : a.job.id < b.job.id ? 1 : -1) : a.here.assignedAt < b.here.assignedAt ? 1 : -1));
  return rows.slice(0, limit);
}

const REQUEUE_TEXT: Record<string, string> = {
  "worker-lost": "lost (the worker stopped answering)",
  "lease-expired": "lost (no sign of life within the lease)",
  "worker-refused": "refused or not answered by the worker",
};

/** What an attempt came to, in words: "running", "failed", "lost (the worker stopped answering)", … */
export function attemptText(a: AttemptRecord): string {
  const o = attemptOutcome(a);
  return o === "requeued" ? REQUEUE_TEXT[a.requeueReason ?? ""] ?? `requeued${a.requeueReason ? ` (${a.requeueReason})` : ""}` : o;
}

/** An attempt's state as one word for a badge's colour: lost for a requeue the worker caused, else the outcome. */
export function attemptBadge(a: AttemptRecord): string {
  const o = attemptOutcome(a);
  return o === "requeued" && (a.requeueReason === "worker-lost" || a.requeueReason === "lease-expired") ? "lost" : o;
}

/** Where a job is now, seen from an earlier attempt's worker (`later`). */
export interface LaterState {
  status: JobStatus;
  /** The worker it is on, when another one. */
  workerId?: string;
  attempt: number;
}

/**
 * Where the job is now, seen from the worker of `here`: null while that attempt is the job's current one (its
 * outcome says it all) unless the job went dead after it, else the job's status, the other worker it is on and its
 * attempt.
 */
export function later(job: JobSummary, here: AttemptRecord): LaterState | null {
  if (job.attempt === here.attempt && (job.workerId === undefined || job.workerId === here.workerId)) {
    // Its last attempt failed here and the master gave up: "–" read as still under way (a UX walkthrough).
    return job.status === "dead" ? { status: "dead", attempt: job.attempt } : null;
  }
  const s: LaterState = { status: job.status, attempt: job.attempt };
  if (job.workerId !== undefined && job.workerId !== here.workerId) s.workerId = job.workerId;
  return s;
}

/** `later` in words: "completed on w-2, attempt 2", "requeued, attempt 3"; "" for the current attempt. */
export function laterText(job: JobSummary, here: AttemptRecord): string {
  const l = later(job, here);
  return l ? `${l.status}${l.workerId !== undefined ? ` on ${l.workerId}` : ""}, attempt ${l.attempt}` : "";
}
