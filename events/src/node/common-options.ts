import { int, str, UsageError } from "./options.ts";
import { MIN_ARTIFACT_MAX_BYTES } from "./streams.ts";

/** Options every command that talks to NATS shares. */
/** The longest heartbeat interval a worker takes (TROUPE_HEARTBEAT_MS); `up` and the master hold to it too. */
export const MAX_HEARTBEAT_MS = 3_600_000;
/** The shortest: the same everywhere, as the README asks the variable to be set alike (the master took 50, the worker 100). */
export const MIN_HEARTBEAT_MS = 100;
/** The most jobs one worker runs at once (TROUPE_MAX_JOBS); `up`'s local workers took at most 100, a worker 1000. */
export const MAX_WORKER_JOBS = 1000;

export const natsOptions = {
  natsUrl: str("NATS server URL(s), comma-separated", { env: "NATS_URL", default: "nats://127.0.0.1:4222", metavar: "<url>", pattern: /^(nats|tls):\/\/[^\s,]+(,\s*(nats|tls):\/\/[^\s,]+)*$/i, patternHelp: "nats://host:port or tls://host:port, comma-separated" }),
  natsCa: str("CA certificate (PEM file) the NATS server's TLS certificate is signed with; set, the connection must be TLS", { env: "TROUPE_NATS_CA", default: "", metavar: "<file>" }),
  dataDir: str("data directory (NATS store, credentials.env, SQLite)", { env: "TROUPE_DATA_DIR", default: ".troupe", metavar: "<dir>" }),
  prefix: str("subject prefix", { env: "TROUPE_PREFIX", default: "troupe", pattern: /^[A-Za-z0-9_-]+$/, patternHelp: "a token of [A-Za-z0-9_-]" }),
} as const;

/** `troupe nats` and `troupe up`: JetStream's storage limit. No default: nats-server then takes 75 % of the disk's free space at start. */
export const natsStoreOptions = {
  maxStoreMb: int("JetStream's storage limit (nats.conf's max_file_store); keep it below what the disk can hold: a store that reaches it refuses appends until space is freed, a disk that fills hangs nats-server 2.9.10's JetStream until a restart (default: 75 % of the disk's free space at start)", { env: "TROUPE_NATS_MAX_STORE_MB", min: 64, max: 1_000_000_000, metavar: "<MB>" }),
} as const;

/** The bytes for startNatsServer's `maxStoreBytes`, or nothing when unset. */
export function maxStoreFrom(v: { maxStoreMb?: number | undefined }): { maxStoreBytes?: number } {
  return v.maxStoreMb !== undefined ? { maxStoreBytes: v.maxStoreMb * 1024 * 1024 } : {};
}

/** Options of `troupe init` (also applied by the master at start). */
export const streamOptions = {
  // No defaults either: a master started without them must not undo what `troupe init` set (it cut an R3 log to R1).
  replicas: int("replicas of the streams and stores (3 in a cluster; unset leaves existing ones as they are, 1 for new ones)", { env: "TROUPE_REPLICAS", min: 1, max: 5 }),
  heartbeatMaxAgeHours: int("how long heartbeats are kept (unset leaves the stream as it is, 168 for a new one)", { env: "TROUPE_HEARTBEAT_RETENTION_HOURS", min: 1, max: 24 * 3650, metavar: "<hours>" }),
  // No defaults: unset leaves the store as it is (screenshots are kept until an operator says otherwise).
  artifactRetentionHours: int("how long screenshots are kept (0 = forever; unset leaves the store as it is)", { env: "TROUPE_ARTIFACT_RETENTION_HOURS", min: 0, max: 24 * 3650, metavar: "<hours>" }),
  artifactMaxMb: int("size cap of the screenshot store in MB; past it the oldest go first (0 = no cap, at least 64 otherwise; unset leaves the store as it is)", { env: "TROUPE_ARTIFACT_MAX_MB", min: 0, max: 1024 * 1024 * 1024, metavar: "<MB>" }),
} as const;

/** initStores' artifact retention options from the values of streamOptions (only what was set). */
export function artifactRetentionFrom(v: { artifactRetentionHours?: number | undefined; artifactMaxMb?: number | undefined }): { artifactMaxAgeMs?: number; artifactMaxBytes?: number } {
  const minMb = MIN_ARTIFACT_MAX_BYTES / 1048576;
  if (v.artifactMaxMb !== undefined && v.artifactMaxMb > 0 && v.artifactMaxMb < minMb) throw new UsageError(`--artifact-max-mb (TROUPE_ARTIFACT_MAX_MB) must be 0 (no cap) or at least ${minMb}, got ${v.artifactMaxMb}`);
  return {
    ...(v.artifactRetentionHours !== undefined ? { artifactMaxAgeMs: v.artifactRetentionHours * 3600_000 } : {}),
    ...(v.artifactMaxMb !== undefined ? { artifactMaxBytes: v.artifactMaxMb * 1024 * 1024 } : {}),
  };
}
