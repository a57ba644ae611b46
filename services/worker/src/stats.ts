/** Running totals of the jobs this process ran: heartbeat metrics and /status. */
export class JobStats {
  completed = 0;
  failed = 0;
  private durationSum = 0;
  private responseSum = 0;
  private responseCount = 0;

  record(o: { ok: boolean; durationMs: number; responseTimeMs?: number }): void {
    if (o.ok) this.completed++;
    else this.failed++;
    this.durationSum += o.durationMs;
    if (o.responseTimeMs !== undefined) {
      this.responseSum += o.responseTimeMs;
      this.responseCount++;
    }
  }

  get total(): number {
    return this.completed + this.failed;
  }
  /** % of finished jobs that completed; 100 before the first one (nothing failed). */
  get successRate(): number {
    return this.total === 0 ? 100 : round1((this.completed / this.total) * 100);
  }
  get averageJobDuration(): number {
    return this.total === 0 ? 0 : round1(this.durationSum / this.total);
  }
  get averageResponseTime(): number {
    return this.responseCount === 0 ? 0 : round1(this.responseSum / this.responseCount);
  }
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** "2h 15m" like the seed's /status; "45s" under a minute, days when long. */
export function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}
