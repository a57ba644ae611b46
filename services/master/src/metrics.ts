import { JOB_STATUSES, PRIORITY_MAX, PRIORITY_MIN } from "@troupe/events";
import { presenceOf, type LivenessConfig, type Presence } from "./scheduler.ts";
import type { MasterState } from "./state.ts";

/** Counters the master keeps beside its state, and their Prometheus text rendering. */

const BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Histogram {
  readonly counts = new Array<number>(BUCKETS_S.length).fill(0);
  sum = 0;
  count = 0;
  observe(seconds: number) {
    this.sum += seconds;
    this.count++;
    const i = BUCKETS_S.findIndex((b) => seconds <= b);
    if (i >= 0) (this.counts[i] as number)++;
  }
}

export interface Counters {
  assignmentLatency: Histogram;
  assignments: number;
  refusals: number;
  assignTimeouts: number;
  guardConflicts: number;
  invalidMessages: number;
  /** Requests dropped unanswered: their reply subject was not an _INBOX one (rpc.ts). */
  droppedRequests: number;
  /** Assignments whose append got no ack, found in the log by reading back, and asked of their worker then. */
  lateAssignments: number;
  /** Appends of this master's decisions the log refused (guard conflicts, no log to write to). */
  appendFailures: number;
  /** Ticks that found this process had not run for a while (its windows counted again from then). */
  stalls: number;
  /** TROUPE_EVENTS messages folded before the master caught up at start (all of them without a snapshot). */
  startReplayedEvents: number;
  /** appliedSeq of the snapshot the start loaded; 0 when it replayed the whole log. */
  startSnapshotSeq: number;
  /** appliedSeq of the latest snapshot this master loaded or wrote. */
  snapshotSeq: number;
  snapshotsWritten: number;
}

export const newCounters = (): Counters => ({
  assignmentLatency: new Histogram(), assignments: 0, refusals: 0, assignTimeouts: 0, guardConflicts: 0, invalidMessages: 0, droppedRequests: 0, stalls: 0, appendFailures: 0, lateAssignments: 0, startReplayedEvents: 0, startSnapshotSeq: 0, snapshotSeq: 0, snapshotsWritten: 0,
});

const PRESENCES: Presence[] = ["online", "busy", "draining", "suspect", "lost", "offline"];

/**
 * `nowMs` and `seeingSinceMs` are the master's own decision time and evidence window (`presenceOf`): a worker is
 * counted suspect or lost only when the master would judge it so. Judged at the raw clock, a scrape after the
 * master's own stall (or while its fold lagged) counted heartbeating workers as suspect.
 */
export function renderMetrics(s: MasterState, c: Counters, o: { leader: boolean; epoch: number; nowMs: number; seeingSinceMs?: number; liveness: LivenessConfig; lagMs: number; heartbeats: number; delayed?: number }): string {
  const out: string[] = [];
  const gauge = (name: string, help: string, type = "gauge") => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

  const depth = new Map<number, number>();
  const byState = new Map<string, number>(JOB_STATUSES.map((st) => [st, 0]));
  for (const j of s.finished.values()) byState.set(j.status, (byState.get(j.status) ?? 0) + 1);
  for (const j of s.jobs.values()) {
    byState.set(j.status, (byState.get(j.status) ?? 0) + 1);
    if ((j.status === "queued" || j.status === "requeued") && !s.needSpec.has(j.id)) depth.set(j.priority, (depth.get(j.priority) ?? 0) + 1);
  }
  gauge("troupe_master_queue_depth", "jobs waiting for a worker, by priority");
  for (let p = PRIORITY_MAX; p >= PRIORITY_MIN; p--) out.push(`troupe_master_queue_depth{priority="${p}"} ${depth.get(p) ?? 0}`);
  if (o.delayed !== undefined) {
    gauge("troupe_master_delayed_jobs", "waiting jobs whose runAt has not come yet (held by the leader)");
    out.push(`troupe_master_delayed_jobs ${o.delayed}`);
  }
  gauge("troupe_master_jobs", "jobs by state");
  for (const [st, n] of byState) out.push(`troupe_master_jobs{state="${st}"} ${n}`);

  const workers = new Map<Presence, number>(PRESENCES.map((p) => [p, 0]));
  for (const w of s.workers.values()) {
    const p = presenceOf(w, o.nowMs, o.liveness, o.seeingSinceMs);
    workers.set(p, (workers.get(p) ?? 0) + 1);
  }
  gauge("troupe_master_workers", "workers by status");
  for (const [p, n] of workers) out.push(`troupe_master_workers{status="${p}"} ${n}`);

  const h = c.assignmentLatency;
  gauge("troupe_master_assignment_latency_seconds", "time from a job becoming assignable to its job.assigned", "histogram");
  let cum = 0;
  BUCKETS_S.forEach((b, i) => {
    cum += h.counts[i] as number;
    out.push(`troupe_master_assignment_latency_seconds_bucket{le="${b}"} ${cum}`);
  });
  out.push(`troupe_master_assignment_latency_seconds_bucket{le="+Inf"} ${h.count}`, `troupe_master_assignment_latency_seconds_sum ${h.sum}`, `troupe_master_assignment_latency_seconds_count ${h.count}`);

  gauge("troupe_master_rejected_events_total", "job events rejected by fencing (never folded), by reason", "counter");
  for (const [r, n] of s.rejected) out.push(`troupe_master_rejected_events_total{reason="${r}"} ${n}`);
  gauge("troupe_master_invalid_messages_total", "messages that failed validation and were skipped", "counter");
  out.push(`troupe_master_invalid_messages_total ${c.invalidMessages}`);
  gauge("troupe_master_dropped_requests_total", "requests dropped unanswered because their reply subject was not an _INBOX one", "counter");
  out.push(`troupe_master_dropped_requests_total ${c.droppedRequests}`);
  gauge("troupe_master_append_failures_total", "appends of this master's events the log refused (guard conflicts included)", "counter");
  out.push(`troupe_master_append_failures_total ${c.appendFailures}`);
  gauge("troupe_master_late_assignments_total", "assignments whose append got no ack but were in the log when read back; their worker was asked then", "counter");
  out.push(`troupe_master_late_assignments_total ${c.lateAssignments}`);
  gauge("troupe_master_stalls_total", "times this process had not run for a while (long GC, CPU starvation, a paused VM); liveness windows and leases counted again from then", "counter");
  out.push(`troupe_master_stalls_total ${c.stalls}`);
  gauge("troupe_master_assignments_total", "assignments this master appended", "counter");
  out.push(`troupe_master_assignments_total ${c.assignments}`);
  gauge("troupe_master_assign_refusals_total", "assignments a worker refused or did not answer", "counter");
  out.push(`troupe_master_assign_refusals_total ${c.refusals + c.assignTimeouts}`);
  gauge("troupe_master_guard_conflicts_total", "appends refused by the expected-last-subject-sequence guard", "counter");
  out.push(`troupe_master_guard_conflicts_total ${c.guardConflicts}`);
  gauge("troupe_master_leader", "1 when this master holds the leader lease");
  out.push(`troupe_master_leader ${o.leader ? 1 : 0}`);
  gauge("troupe_master_epoch", "epoch of the lease this master holds (0 when standing by)");
  out.push(`troupe_master_epoch ${o.epoch}`);
  gauge("troupe_master_applied_sequence", "last TROUPE_EVENTS sequence folded");
  out.push(`troupe_master_applied_sequence ${s.appliedSeq}`);
  gauge("troupe_master_start_replayed_events", "TROUPE_EVENTS messages folded at start before catching up (the whole log without a snapshot)");
  out.push(`troupe_master_start_replayed_events ${c.startReplayedEvents}`);
  gauge("troupe_master_start_snapshot_sequence", "applied sequence of the snapshot loaded at start (0 = the whole log was replayed)");
  out.push(`troupe_master_start_snapshot_sequence ${c.startSnapshotSeq}`);
  gauge("troupe_master_snapshot_sequence", "applied sequence of the latest snapshot this master loaded or wrote (0 = none)");
  out.push(`troupe_master_snapshot_sequence ${c.snapshotSeq}`);
  gauge("troupe_master_snapshots_written_total", "state snapshots this master wrote", "counter");
  out.push(`troupe_master_snapshots_written_total ${c.snapshotsWritten}`);
  gauge("troupe_master_heartbeat_lag_seconds", "age of the last heartbeat processed when it was processed");
  out.push(`troupe_master_heartbeat_lag_seconds ${o.lagMs / 1000}`);
  gauge("troupe_master_heartbeats_total", "heartbeats folded", "counter");
  out.push(`troupe_master_heartbeats_total ${o.heartbeats}`);
  return `${out.join("\n")}\n`;
}
