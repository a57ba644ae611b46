import { bool, int, loadSecretsKey, MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS, natsOptions, str, streamOptions, type OptionValues } from "@troupe/events/node";
import type { MasterConfig } from "./master.ts";

/** `troupe master` options: flags or TROUPE_* variables; every default works on a laptop. */
export const masterOptions = {
  ...natsOptions,
  ...streamOptions,
  id: str("master id (the lease holder name); default master-<pid>-<random>", { env: "TROUPE_MASTER_ID", pattern: /^[A-Za-z0-9_-]{1,64}$/, patternHelp: "1-64 characters of [A-Za-z0-9_-]" }),
  port: int("HTTP port of GET /metrics (0 = off)", { env: "TROUPE_MASTER_PORT", default: 3001, min: 0, max: 65535 }),
  host: str("HTTP bind address", { env: "TROUPE_MASTER_HOST", default: "127.0.0.1", metavar: "<addr>", pattern: /^[A-Za-z0-9.:-]{1,255}$/, patternHelp: "an IP address or host name" }),
  heartbeatInterval: int("workers' heartbeat interval: suspect after 2 missed, lost after 3", { env: "TROUPE_HEARTBEAT_MS", default: 30_000, min: MIN_HEARTBEAT_MS, max: MAX_HEARTBEAT_MS, metavar: "<ms>", aliases: ["--heartbeat-ms"] }),
  jobLease: int("a running job's lease, renewed by its progress events", { env: "TROUPE_JOB_LEASE_MS", default: 30_000, min: 100, metavar: "<ms>" }),
  backoff: int("first retry delay; doubles per attempt", { env: "TROUPE_RETRY_BACKOFF_MS", default: 2_000, min: 0, metavar: "<ms>" }),
  maxBackoff: int("longest retry delay", { env: "TROUPE_RETRY_MAX_BACKOFF_MS", default: 300_000, min: 0, metavar: "<ms>" }),
  leaderLease: int("leader lease in the KV bucket; a standby takes over when it lapses", { env: "TROUPE_LEADER_LEASE_MS", default: 10_000, min: 300, metavar: "<ms>" }),
  assignTimeout: int("how long a worker has to accept an assignment", { env: "TROUPE_ASSIGN_TIMEOUT_MS", default: 3_000, min: 50, metavar: "<ms>" }),
  tick: int("how often liveness, leases, delays and expiry are checked", { env: "TROUPE_MASTER_TICK_MS", default: 500, min: 10, metavar: "<ms>" }),
  maxInflight: int("assignment requests in flight at once", { env: "TROUPE_MASTER_MAX_INFLIGHT", default: 256, min: 1, max: 100_000 }),
  requireAttemptTokens: bool("assign jobs only to workers that take attempt tokens (every worker of this release); turn on once no older worker is left: their attempts' events can be forged by any worker credential", { env: "TROUPE_REQUIRE_ATTEMPT_TOKENS", default: false }),
  snapshotEvery: int("the leader writes a state snapshot every this many events, and never more often than one per as many events as it holds jobs and workers (0 = no snapshots written or read)", { env: "TROUPE_MASTER_SNAPSHOT_EVERY", default: 10_000, min: 0, max: 1_000_000_000, metavar: "<events>" }),
} as const;

export type MasterOptionValues = OptionValues<typeof masterOptions>;

export function masterConfig(v: MasterOptionValues, defaultId: () => string, env: Record<string, string | undefined> = process.env): MasterConfig {
  const secretsKey = loadSecretsKey(v.dataDir, env);
  return {
    id: v.id ?? defaultId(),
    prefix: v.prefix,
    heartbeatIntervalMs: v.heartbeatInterval,
    leaseMs: v.jobLease,
    backoffMs: v.backoff,
    maxBackoffMs: Math.max(v.maxBackoff, v.backoff),
    leaderLeaseMs: v.leaderLease,
    assignTimeoutMs: v.assignTimeout,
    tickMs: v.tick,
    maxInflight: v.maxInflight,
    snapshotEvery: v.snapshotEvery,
    ...(v.requireAttemptTokens ? { requireAttemptTokens: true } : {}),
    ...(secretsKey ? { secretsKey } : {}),
  };
}
