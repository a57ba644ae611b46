import type { JobStatus, JobView } from "./job.ts";
import type { WorkerStatusView } from "./worker.ts";

/** Shapes the read side (projector SQLite → UI server → browser) returns besides the views themselves. */

/** A job row in a list: the view without its heavy parts (result, logs, steps, spec). */
export interface JobSummary {
  id: string;
  status: JobStatus;
  priority: number;
  url?: string;
  tags: string[];
  workerId?: string;
  attempt: number;
  progress: number;
  currentStep?: JobView["currentStep"];
  submittedAt: string;
  startedAt?: string;
  finishedAt?: string;
  duration?: number;
  error?: JobView["error"];
  /** While an attempt is live: its token's hash, so a page that starts from a list row checks tokens as the master does. */
  tokenHash?: string;
  updatedAt: string;
  /** A scenario job's title and the URL its first navigate step opens: lists showed only "(scenario)". */
  scenario?: ScenarioLabel;
}

/** What names a scenario job in a list. */
export interface ScenarioLabel {
  title?: string;
  url?: string;
}

/** A job spec's scenario title and first navigate step's URL; undefined without a scenario (or with neither). */
export function scenarioLabel(spec: { scenario?: { title?: string; steps: readonly { type: string; url?: unknown }[] } | undefined }): ScenarioLabel | undefined {
  if (!spec.scenario) return undefined;
  const nav = spec.scenario.steps.find((st) => st.type === "navigate" && typeof st.url === "string");
  const l: ScenarioLabel = {};
  if (spec.scenario.title) l.title = spec.scenario.title;
  if (nav) l.url = nav.url as string;
  return l.title !== undefined || l.url !== undefined ? l : undefined;
}

export function jobSummary(j: JobView): JobSummary {
  const s: JobSummary = {
    id: j.id, status: j.status, priority: j.priority, tags: j.tags, attempt: j.attempt, progress: j.progress,
    submittedAt: j.submittedAt, updatedAt: j.updatedAt,
  };
  if (j.url !== undefined) s.url = j.url;
  if (j.workerId !== undefined) s.workerId = j.workerId;
  if (j.currentStep !== undefined) s.currentStep = j.currentStep;
  if (j.startedAt !== undefined) s.startedAt = j.startedAt;
  if (j.finishedAt !== undefined) s.finishedAt = j.finishedAt;
  if (j.duration !== undefined) s.duration = j.duration;
  if (j.error !== undefined) s.error = j.error;
  if (j.tokenHash !== undefined && (j.status === "assigned" || j.status === "running")) s.tokenHash = j.tokenHash;
  const label = scenarioLabel(j.spec);
  if (label) s.scenario = label;
  return s;
}

export interface WorkerFilter {
  /** One status or several; `suspect` is derived at read time. */
  status?: WorkerStatusView | readonly WorkerStatusView[];
  /** Substring of id, name or ip. */
  q?: string;
}

export interface JobListQuery {
  status?: JobStatus | readonly JobStatus[];
  /** Part of the id, url or a tag (plain text: `%` and `_` are not wildcards). */
  q?: string;
  workerId?: string;
  /** 1–500, default 50. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** Newest first (by submittedAt, then id). */
export interface JobPage {
  jobs: JobSummary[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** The projector's own health, as the dashboard shows it. */
export interface ProjectorStatus {
  /** Mode of the process that wrote the file: live fold or a rebuild. */
  mode: "live" | "rebuild";
  /** Wall-clock time (ISO) of the last committed batch. */
  updatedAt: string;
  /** Last batch: event published → row committed, ms (max of the batch). */
  lagMs: number;
  /** p99 of lag over the recent window (ms). */
  lagP99Ms: number;
  /** Events applied and skipped since the process started. */
  applied: number;
  skipped: number;
  /** Last applied stream sequence per stream. */
  checkpoints: Record<string, number>;
}
