import { bool, int, natsOptions, str } from "@troupe/events/node";

/**
 * Rebuild transaction size: bigger batches write a job or worker row that
 * changes many times in a stretch of the log once instead of once per batch.
 */
export const DEFAULT_REBUILD_BATCH = 20_000;

/** Options of `troupe projector` and `troupe replay` (flags or TROUPE_* variables). */
export const projectorOptions = {
  ...natsOptions,
  db: str("read-model database path (default <data dir>/readmodels.sqlite)", { env: "TROUPE_PROJECTOR_DB", metavar: "<file>" }),
  port: int("port of GET /metrics (Prometheus) and /healthz; 0 picks a free one", { env: "TROUPE_PROJECTOR_PORT", default: 3003, min: 0, max: 65535 }),
  host: str("address /metrics listens on", { env: "TROUPE_PROJECTOR_HOST", default: "127.0.0.1", metavar: "<addr>", pattern: /^[A-Za-z0-9.:-]{1,255}$/, patternHelp: "an IP address or host name" }),
  batch: int("most events folded in one SQLite transaction (live)", { env: "TROUPE_PROJECTOR_BATCH", default: 1000, min: 1, max: 20_000 }),
  rebuildBatch: int("most events folded in one SQLite transaction (rebuild)", { env: "TROUPE_REBUILD_BATCH", default: DEFAULT_REBUILD_BATCH, min: 1, max: 100_000 }),
  seriesRetentionHours: int("how long per-minute time series are kept", { env: "TROUPE_SERIES_RETENTION_HOURS", default: 24, min: 1, max: 24 * 366, metavar: "<hours>" }),
  durable: str("durable consumer name on each stream", { env: "TROUPE_PROJECTOR_DURABLE", default: "projector", pattern: /^[A-Za-z0-9_-]+$/, patternHelp: "a token of [A-Za-z0-9_-]" }),
} as const;

export const liveOptions = {
  ...projectorOptions,
  rebuild: bool("rebuild the database from the whole log first (same as troupe replay), then follow", { default: false }),
} as const;

// Only what a rebuild reads: it serves no /metrics and makes no durable consumer, so --port, --host, --batch
// and --durable were listed by `troupe replay --help` and then ignored.
const { port: _port, host: _host, batch: _batch, durable: _durable, ...rebuildOptions } = projectorOptions;

export const replayOptions = {
  ...rebuildOptions,
  until: str("build the state as of a TROUPE_EVENTS sequence or an ISO time (stop a live projector first, or use --db elsewhere)", { metavar: "<seq|time>" }),
} as const;
