import { JOB_STATUSES, type JobStatus } from "./job.ts";
import { WORKER_STATUSES, type WorkerStatusView } from "./worker.ts";

/**
 * Fleet-wide statistics for the dashboard's summary cards. Pure: the projector's
 * read side feeds it counts from SQLite, the browser may feed it live views.
 */
export interface FleetStats {
  workers: { total: number; byStatus: Record<WorkerStatusView, number>; capacity: number; runningJobs: number };
  jobs: { total: number; byStatus: Record<JobStatus, number> };
  /** Over all workers: completed ÷ (completed + failed) × 100; 0 with no finished jobs. */
  successRate: number;
  jobsCompleted: number;
  jobsFailed: number;
  /** Mean run time (ms) over all finished attempts that reported one; 0 without any. */
  averageJobDuration: number;
  averageResponseTime: number;
}

/** What `fleetStats` needs from each worker (a WorkerView satisfies it). */
export interface WorkerStatsInput {
  status: WorkerStatusView;
  maxJobs: number;
  currentJobs: number;
  jobsCompleted: number;
  jobsFailed: number;
  durationSum: number;
  durationCount: number;
  responseTimeSum: number;
  responseTimeCount: number;
}

const zeroes = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

/** Workers that count towards capacity: they can take or run jobs. */
const ACTIVE: readonly WorkerStatusView[] = ["online", "busy", "suspect", "draining"];

export function fleetStats(workers: Iterable<WorkerStatsInput>, jobsByStatus: Partial<Record<JobStatus, number>>): FleetStats {
  const byStatus = zeroes(WORKER_STATUSES);
  let total = 0, capacity = 0, running = 0, completed = 0, failed = 0, dSum = 0, dN = 0, rSum = 0, rN = 0;
  for (const w of workers) {
    total++;
    byStatus[w.status]++;
    if (ACTIVE.includes(w.status)) {
      capacity += w.maxJobs;
      running += w.currentJobs;
    }
    completed += w.jobsCompleted;
    failed += w.jobsFailed;
    dSum += w.durationSum;
    dN += w.durationCount;
    rSum += w.responseTimeSum;
    rN += w.responseTimeCount;
  }
  const jobs = zeroes(JOB_STATUSES);
  let jobTotal = 0;
  for (const s of JOB_STATUSES) {
    jobs[s] = jobsByStatus[s] ?? 0;
    jobTotal += jobs[s];
  }
  return {
    workers: { total, byStatus, capacity, runningJobs: running },
    jobs: { total: jobTotal, byStatus: jobs },
    successRate: completed + failed === 0 ? 0 : (completed / (completed + failed)) * 100,
    jobsCompleted: completed,
    jobsFailed: failed,
    averageJobDuration: dN === 0 ? 0 : dSum / dN,
    averageResponseTime: rN === 0 ? 0 : rSum / rN,
  };
}
