/**
 * The projector's figures: lag (event published → row committed), applied and
 * skipped counts, checkpoints. Rendered as Prometheus text at GET /metrics.
 */

const LAG_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const RECENT = 4096;

export class ProjectorMetrics {
  applied = 0;
  skipped = 0;
  duplicates = 0;
  /** Jumps in a consumer's delivery sequence (a delivery lost in a failover); each made the consumers again. */
  deliveryGaps = 0;
  lastLagMs = 0;
  private readonly skippedBy = new Map<string, number>();
  private readonly checkpoints = new Map<string, number>();
  private readonly lagCounts = new Array<number>(LAG_BUCKETS_S.length).fill(0);
  private lagCount = 0;
  private lagSumS = 0;
  /** Ring of recent lags (ms) for the p99 the dashboard shows. */
  private readonly recent = new Float64Array(RECENT);
  private recentN = 0;

  observeLag(ms: number): void {
    const s = ms / 1000;
    for (let i = 0; i < LAG_BUCKETS_S.length; i++) if (s <= (LAG_BUCKETS_S[i] as number)) (this.lagCounts[i] as number)++, (i = LAG_BUCKETS_S.length);
    this.lagCount++;
    this.lagSumS += s;
    this.recent[this.recentN++ % RECENT] = ms;
    this.lastLagMs = ms;
  }

  /** p-th percentile of the recent lags (ms), 0 without any. */
  recentLag(p: number): number {
    const n = Math.min(this.recentN, RECENT);
    if (n === 0) return 0;
    const sorted = Array.from(this.recent.subarray(0, n)).sort((a, b) => a - b);
    return sorted[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)] as number;
  }

  skip(reason: string): void {
    this.skipped++;
    this.skippedBy.set(reason, (this.skippedBy.get(reason) ?? 0) + 1);
  }

  checkpoint(stream: string, seq: number): void {
    this.checkpoints.set(stream, seq);
  }

  render(): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    metric("troupe_projector_events_applied_total", "counter", "Events folded into the read models.", [`troupe_projector_events_applied_total ${this.applied}`]);
    metric("troupe_projector_events_skipped_total", "counter", "Events skipped (invalid, unknown or rejected by fencing), by reason.",
      [...this.skippedBy].map(([r, n]) => `troupe_projector_events_skipped_total{reason="${r}"} ${n}`));
    metric("troupe_projector_events_duplicate_total", "counter", "Redelivered events at or below the checkpoint (no-ops).", [`troupe_projector_events_duplicate_total ${this.duplicates}`]);
    metric("troupe_projector_delivery_gaps_total", "counter", "Jumps in a consumer's delivery sequence (a delivery lost in a cluster failover); each made the consumers again from the checkpoints.", [`troupe_projector_delivery_gaps_total ${this.deliveryGaps}`]);
    metric("troupe_projector_checkpoint_sequence", "gauge", "Last applied stream sequence.",
      [...this.checkpoints].map(([s, n]) => `troupe_projector_checkpoint_sequence{stream="${s}"} ${n}`));
    metric("troupe_projector_lag_seconds_last", "gauge", "Lag of the last applied event: published to row committed.", [`troupe_projector_lag_seconds_last ${this.lastLagMs / 1000}`]);
    metric("troupe_projector_lag_p99_seconds", "gauge", `p99 lag over the last ${RECENT} events.`, [`troupe_projector_lag_p99_seconds ${this.recentLag(99) / 1000}`]);
    let cum = 0;
    const lines = LAG_BUCKETS_S.map((b, i) => `troupe_projector_lag_seconds_bucket{le="${b}"} ${(cum += this.lagCounts[i] as number)}`);
    lines.push(`troupe_projector_lag_seconds_bucket{le="+Inf"} ${this.lagCount}`, `troupe_projector_lag_seconds_sum ${this.lagSumS}`, `troupe_projector_lag_seconds_count ${this.lagCount}`);
    metric("troupe_projector_lag_seconds", "histogram", "Lag per event: published to row committed.", lines);
    return `${out.join("\n")}\n`;
  }
}
