import { jetstreamManager, RetentionPolicy, StorageType, DiscardPolicy, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { Objm } from "@nats-io/obj";
import { subjectsFor } from "../subjects.ts";
import { isNatsOutage, retryWithBackoff } from "./retry.ts";

export interface StoreNames {
  events: string;
  heartbeats: string;
  artifacts: string;
  /** The stream behind the artifact object store (@nats-io/obj names it OBJ_<bucket>). */
  artifactsStream: string;
  masterKv: string;
  /** Object store of the master's state snapshots (docs/master.md, Snapshots). */
  masterSnapshots: string;
  /** The stream behind it (the master purges older snapshots from it). */
  masterSnapshotsStream: string;
}

/** Stream, bucket and object-store names for a prefix (`troupe` → TROUPE_EVENTS, troupe-artifacts, ...). */
export function storeNames(prefix = "troupe"): StoreNames {
  const up = prefix.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
  return {
    events: `${up}_EVENTS`, heartbeats: `${up}_HEARTBEATS`, artifacts: `${prefix}-artifacts`, artifactsStream: `OBJ_${prefix}-artifacts`,
    masterKv: `${prefix}-master`, masterSnapshots: `${prefix}-master-snapshots`, masterSnapshotsStream: `OBJ_${prefix}-master-snapshots`,
  };
}

export interface InitOptions {
  prefix?: string;
  /** Ends the wait for a cluster's peers (between tries at once); initStores then throws InitAborted. */
  signal?: AbortSignal;
  /**
   * Replicas of every stream and store. Absent = leave existing ones as they are (1 for new ones): a master
   * started without TROUPE_REPLICAS cut a cluster's R3 log back to one replica, and its first stopped member
   * was then an outage (a walkthrough).
   */
  replicas?: number;
  /** Heartbeat retention. Absent = leave the stream's as it is (7 days for a new one). */
  heartbeatMaxAgeMs?: number;
  /**
   * Make the artifact store append-only (no rollup, purge or delete): a worker credential can then no
   * longer wipe it with a `Nats-Rollup: all` metadata publish. Workers older than attempt tokens store
   * screenshots with @nats-io/obj's put, which needs rollups: turn it on once none is left. Never
   * turned off by init (absent = leave the store as it is).
   */
  artifactsAppendOnly?: boolean;
  /**
   * How long screenshots are kept: nats-server removes older ones (0 = forever). Absent = leave the store
   * as it is, so a master started without the setting never undoes what `troupe init` set.
   */
  artifactMaxAgeMs?: number;
  /**
   * Size cap of the screenshot store in bytes (0 = none). Past it nats-server drops the oldest messages
   * first (discard old), so a worker's upload never fails for room and the store never grows into the
   * disk the event log needs. Absent = leave the store as it is.
   */
  artifactMaxBytes?: number;
  /**
   * How long to wait for a cluster's JetStream to see enough servers for the replicas asked for (a member
   * still starting: "no suitable peers for placement"); default 60 s. `onWaitForPeers` is told before each new try.
   */
  waitForPeersMs?: number;
  onWaitForPeers?: (e: Error, waitMs: number) => void;
}

/** The smallest size cap accepted: a few full-page screenshots (a cap below one would drop it while it is written). */
export const MIN_ARTIFACT_MAX_BYTES = 64 * 1024 * 1024;

const NS_PER_MS = 1_000_000;
export const EVENTS_DUPLICATE_WINDOW_MS = 2 * 60_000;

/**
 * Pull settings of the long-lived followers (the master's, the projector's live consumer): idle pulls
 * expire after 2 s with a 1 s heartbeat (nats.js defaults: 30 s and 15 s), so pulls lost in a
 * nats-server restart, or a consumer gone with a cluster member, are noticed in ~2 s instead of ~30 s.
 * Costs one small request per 2 s while idle.
 */
export const FOLLOW_PULL = { expires: 2000, idle_heartbeat: 1000 } as const;

/**
 * How long a consumer create may take before it is tried again: nats-server 2.9.10 keeps placing new
 * R1 consumers on a cluster member that died (until it comes back), and such a create is never
 * answered; with the client's 5 s API timeout, remaking a consumer after a member's death took up to
 * ~17 s (30–65 % of creates lost, measured on a three-member test cluster, 2026-11-29).
 */
export const CONSUMER_CREATE_TIMEOUT_MS = 1500;

/** The longest a consumer create is given once shorter ones timed out (`ConsumerCreateTimeout`). */
export const CONSUMER_CREATE_MAX_TIMEOUT_MS = 12_000;

/**
 * The timeout for a reader's next consumer create. Over a link slower than 1.5 s every create timed out on the
 * client while the server made it: a master never finished its start, a rebuild gave up (a start-up soak,
 * 2026-11-30). Two ways out, for two kinds of reader:
 * - `answeredIn(ms)`: three times the last answer the reader got from JetStream, at least CONSUMER_CREATE_TIMEOUT_MS
 *   and at most CONSUMER_CREATE_MAX_TIMEOUT_MS: a slow link shows in every answer, while a create lost on a dead
 *   cluster member (the case the 1.5 s is for) leaves the answers fast, so it is still tried again soon;
 * - with `escalate`, also doubled after each create that timed out (a link that turned slow after the last answer),
 *   for a reader that never gives up (the master's followers); a reader with a time limit (a rebuild's, 60 s) keeps
 *   its tries many.
 */
export class ConsumerCreateTimeout {
  ms = CONSUMER_CREATE_TIMEOUT_MS;
  constructor(private readonly o: { escalate?: boolean } = {}) {}
  /** A JetStream request took `ms` to be answered. */
  answeredIn(ms: number): void {
    this.ms = Math.min(Math.max(CONSUMER_CREATE_TIMEOUT_MS, Math.round(ms * 3)), CONSUMER_CREATE_MAX_TIMEOUT_MS);
  }
  /** A create failed with `e`: with `escalate`, a timeout makes the next wait longer. */
  failed(e: unknown): void {
    if (this.o.escalate && /timeout/i.test((e as Error)?.message ?? "")) this.ms = Math.min(this.ms * 2, CONSUMER_CREATE_MAX_TIMEOUT_MS);
  }
}

export const DEFAULT_HEARTBEAT_MAX_AGE_MS = 7 * 24 * 3600_000;

export function desiredStreams(o: InitOptions = {}): StreamConfig[] {
  const s = subjectsFor(o.prefix);
  const n = storeNames(o.prefix);
  const replicas = o.replicas ?? 1;
  const base = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: replicas,
    duplicate_window: EVENTS_DUPLICATE_WINDOW_MS * NS_PER_MS,
    max_msgs: -1,
    max_bytes: -1,
    max_msg_size: -1,
    max_msgs_per_subject: -1,
  };
  return [
    {
      ...base,
      name: n.events,
      description: "Troupe events: the source of truth, kept forever",
      subjects: [s.allEvents],
      max_age: 0,
      // The log is the source of truth: no deleting single messages, and no purge, which would empty it for good (a
      // worker could once aim the master's answer at this stream's purge API; docs/security.md). nats-server never
      // takes deny_purge back: starting over means deleting the stream (`troupe init` makes it again).
      deny_delete: true,
      deny_purge: true,
      allow_direct: false,
    } as StreamConfig,
    {
      ...base,
      name: n.heartbeats,
      description: "Troupe worker heartbeats: telemetry, bounded window",
      subjects: [s.allHeartbeats],
      max_age: (o.heartbeatMaxAgeMs ?? DEFAULT_HEARTBEAT_MAX_AGE_MS) * NS_PER_MS,
      deny_delete: false,
      // A worker reads back its own last heartbeat (its credential allows only that subject) for the server's
      // stamp: its events are dated on the server's clock when its own is off (services/worker/src/clock-sample.ts).
      allow_direct: true,
    } as StreamConfig,
  ];
}

export interface InitReport {
  streams: { name: string; action: "created" | "updated" | "unchanged" }[];
  artifacts: string;
  /** With artifactsAppendOnly: whether the store was made append-only now or already was. */
  artifactsAppendOnly?: "updated" | "unchanged";
  /** With artifactMaxAgeMs or artifactMaxBytes: whether the store's retention was changed now. */
  artifactsRetention?: "updated" | "unchanged";
  masterKv: string;
  masterSnapshots: string;
  /** Settings that work but weaken something (printed by init, logged by the master). */
  warnings: string[];
}

/** nats-server refused the screenshot store's retention (e.g. a cap larger than its JetStream storage). */
export class ArtifactRetentionError extends Error {
  override name = "ArtifactRetentionError";
}

async function ensureStream(jsm: JetStreamManager, want: StreamConfig, leave: ReadonlySet<keyof StreamConfig> = new Set(), warnings: string[] = []): Promise<"created" | "updated" | "unchanged"> {
  let current: StreamConfig | null = null;
  try {
    current = (await jsm.streams.info(want.name)).config;
  } catch (e) {
    if (!/stream not found/i.test((e as Error).message)) throw e;
  }
  if (!current) {
    await jsm.streams.add(want);
    return "created";
  }
  if (current.storage !== want.storage) {
    throw new Error(`stream ${want.name} uses ${current.storage} storage, expected ${want.storage}; storage cannot be changed in place (back up and recreate the stream)`);
  }
  const keys = (["subjects", "max_age", "duplicate_window", "num_replicas", "deny_delete", "deny_purge", "allow_direct", "description"] as const).filter((k) => !leave.has(k));
  const differing = keys.filter((k) => JSON.stringify(current[k] ?? null) !== JSON.stringify(want[k] ?? null));
  if (differing.length === 0) return "unchanged";
  try {
    await jsm.streams.update(want.name, { ...current, ...Object.fromEntries(keys.map((k) => [k, want[k]])) });
  } catch (e) {
    // deny_purge alone, refused (roll-ups an operator allowed on the stream need the purge permission): a hardening
    // added to existing logs on 2026-12-01, which must not stop every upgraded master from starting (a review).
    // An outage still throws: the caller waits for NATS and tries again.
    if (differing.length !== 1 || differing[0] !== "deny_purge" || isNatsOutage(e)) throw e;
    warnings.push(`stream ${want.name} still allows purges: nats-server refused deny_purge (${(e as Error).message}); a credential with the JetStream API can empty the log (docs/security.md)`);
    return "unchanged";
  }
  return "updated";
}

/** The object store's stream settings for a retention (only what is given changes). */
export function artifactRetentionConfig(maxAgeMs: number | undefined, maxBytes: number | undefined): Partial<StreamConfig> {
  for (const [what, v] of [["artifact max age", maxAgeMs], ["artifact max bytes", maxBytes]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new Error(`${what} must be a whole number >= 0, got ${v}`);
  }
  if (maxBytes !== undefined && maxBytes > 0 && maxBytes < MIN_ARTIFACT_MAX_BYTES) {
    throw new Error(`artifact max bytes must be 0 (no cap) or at least ${MIN_ARTIFACT_MAX_BYTES} (64 MB), got ${maxBytes}`);
  }
  if (maxAgeMs !== undefined && maxAgeMs > 0 && maxAgeMs < 1000) throw new Error(`artifact max age must be 0 (forever) or at least 1000 ms, got ${maxAgeMs}`);
  return {
    ...(maxAgeMs !== undefined ? { max_age: maxAgeMs * NS_PER_MS } : {}),
    // @nats-io/obj creates the store with discard new: with a cap, uploads would then fail once it is full.
    ...(maxBytes !== undefined ? { max_bytes: maxBytes > 0 ? maxBytes : -1, discard: maxBytes > 0 ? DiscardPolicy.Old : DiscardPolicy.New } : {}),
  };
}

async function ensureArtifactRetention(jsm: JetStreamManager, stream: string, maxAgeMs: number | undefined, maxBytes: number | undefined): Promise<"updated" | "unchanged"> {
  const want = artifactRetentionConfig(maxAgeMs, maxBytes);
  const c = (await jsm.streams.info(stream)).config;
  // nats-server refuses a de-duplication window longer than the max age (the store's default is 2 min).
  if (want.max_age && c.duplicate_window && c.duplicate_window > want.max_age) want.duplicate_window = want.max_age;
  const same = (Object.keys(want) as (keyof StreamConfig)[]).every((k) => c[k] === want[k]);
  if (same) return "unchanged";
  try {
    await jsm.streams.update(stream, { ...c, ...want });
  } catch (e) {
    const asked = [maxAgeMs !== undefined ? `max age ${maxAgeMs / 3600_000} h (--artifact-retention-hours, TROUPE_ARTIFACT_RETENTION_HOURS)` : "", maxBytes !== undefined ? `size cap ${Math.round(maxBytes / 1048576)} MB (--artifact-max-mb, TROUPE_ARTIFACT_MAX_MB)` : ""].filter(Boolean).join(" and ");
    const hint = /insufficient (storage )?resources/i.test((e as Error).message) ? "; the cap is more than nats-server's JetStream storage (max_file_store, or the disk) can reserve" : "";
    throw new ArtifactRetentionError(`nats-server refused the screenshot store's ${asked}: ${(e as Error).message}${hint}`, { cause: e });
  }
  return "updated";
}

/**
 * Creates or updates the streams, the artifact object store, the master KV
 * bucket and the master snapshot object store. Idempotent: running it again changes nothing. In a cluster whose
 * members are still starting, it waits (up to `waitForPeersMs`) until JetStream can place the replicas.
 */
export async function initStores(nc: NatsConnection, o: InitOptions = {}): Promise<InitReport> {
  const r = await retryWithBackoff(() => initStoresOnce(nc, o), {
    maxWaitMs: 2000,
    giveUpAfterMs: o.waitForPeersMs ?? 60_000,
    // In a cluster also a timeout or "temporarily unavailable": members that start one after another elect
    // JetStream's meta leader only once a majority runs, and until then its API does not answer (a fresh-clone
    // run: init exited 1 on "timeout" with two of three members up). A lone server that does not answer is an error.
    retryIf: (e) => /no suitable peers/i.test(e.message) || (!!nc.info?.cluster && /timeout|temporarily unavailable/i.test(e.message)),
    ...(o.onWaitForPeers ? { onRetry: o.onWaitForPeers } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    // A check under way is let go at the signal: what it made is what `init` makes anyway.
    abandon: () => undefined,
  });
  if (r === undefined) throw new InitAborted();
  return r;
}

/** initStores' `signal` ended its wait for a cluster's peers. */
export class InitAborted extends Error {
  constructor() {
    super("stopped while waiting for the cluster's servers to place the streams' replicas");
    this.name = "InitAborted";
  }
}

async function initStoresOnce(nc: NatsConnection, o: InitOptions): Promise<InitReport> {
  // nats-server 2.9 takes an update to R3 on a server outside a cluster, then refuses to load those streams at its
  // next start: the whole stack lost its log until a plain init (an attack). Creating one is refused; so is this.
  if (o.replicas !== undefined && o.replicas > 1 && !nc.info?.cluster) {
    throw new Error(`${o.replicas} replicas need a nats-server cluster, and ${nc.info?.server_name ?? "this server"} is not in one (nats-server would not load such streams after a restart): leave TROUPE_REPLICAS unset or 1, or join the servers in a cluster (README, "Run NATS as a three-member cluster")`);
  }
  const jsm = await jetstreamManager(nc);
  const report: InitReport = { streams: [], artifacts: "", masterKv: "", masterSnapshots: "", warnings: [] };
  const n = storeNames(o.prefix);
  for (const want of desiredStreams(o)) {
    // What was not asked for is not compared, so it is left as it is.
    const leave = new Set<keyof StreamConfig>([...(o.replicas === undefined ? ["num_replicas" as const] : []), ...(o.heartbeatMaxAgeMs === undefined && want.name === n.heartbeats ? ["max_age" as const] : []), ...(want.name === n.heartbeats ? ["deny_purge" as const] : [])]);
    report.streams.push({ name: want.name, action: await ensureStream(jsm, want, leave, report.warnings) });
  }
  await new Objm(nc).create(n.artifacts, { replicas: o.replicas ?? 1, storage: StorageType.File, description: "Troupe job artifacts (screenshots)" });
  report.artifacts = n.artifacts;
  if (o.artifactsAppendOnly) {
    const name = n.artifactsStream;
    const c = (await jsm.streams.info(name)).config;
    const done = c.allow_rollup_hdrs === false && c.deny_purge === true && c.deny_delete === true;
    if (!done) await jsm.streams.update(name, { ...c, allow_rollup_hdrs: false, deny_purge: true, deny_delete: true });
    report.artifactsAppendOnly = done ? "unchanged" : "updated";
  }
  await new Kvm(nc).create(n.masterKv, { replicas: o.replicas ?? 1, history: 5, storage: StorageType.File, description: "Troupe master leader lease" });
  report.masterKv = n.masterKv;
  // One object (the latest snapshot) replaced in place: the store keeps only the newest version of a name.
  await new Objm(nc).create(n.masterSnapshots, { replicas: o.replicas ?? 1, storage: StorageType.File, description: "Troupe master state snapshots" });
  report.masterSnapshots = n.masterSnapshots;
  // The stores' create leaves an existing store's replicas as they were: R3 asked for, they stayed at 1.
  if (o.replicas !== undefined) {
    for (const name of [n.artifactsStream, `KV_${n.masterKv}`, n.masterSnapshotsStream]) {
      const c = (await jsm.streams.info(name)).config;
      if (c.num_replicas !== o.replicas) await jsm.streams.update(name, { ...c, num_replicas: o.replicas });
    }
  }
  // Last, so a retention nats-server refuses leaves everything else in place (the master goes on without it).
  if (o.artifactMaxAgeMs !== undefined || o.artifactMaxBytes !== undefined) {
    report.artifactsRetention = await ensureArtifactRetention(jsm, n.artifactsStream, o.artifactMaxAgeMs, o.artifactMaxBytes);
  }
  const art = (await jsm.streams.info(n.artifactsStream)).config;
  if (art.deny_purge && art.max_bytes > 0) {
    report.warnings.push(`the screenshot store ${n.artifacts} is append-only but capped at ${Math.round(art.max_bytes / 1048576)} MB: any worker credential can push every screenshot out by writing junk chunks; a max age alone cannot be hurried that way (docs/security.md)`);
  }
  return report;
}
