import { resolve } from "node:path";

/**
 * The UI server's settings. `troupe ui` validates its flags and environment
 * with the shared option parser and hands the normalised values over in these
 * variables, so the SvelteKit server reads them once, already checked.
 */
export interface UiConfig {
  dataDir: string;
  natsUrl: string;
  /** CA file of the NATS server's TLS certificate; empty: none. */
  natsCa: string;
  prefix: string;
  /** The projector's SQLite read models. */
  dbPath: string;
  /** Login token; when set every page and API call needs it. */
  token?: string;
  /** NATS WebSocket URL for browsers; empty: ws://<page host>:<wsPort>. */
  wsUrl?: string;
  wsPort: number;
  /** A worker is shown as suspect past this age of its last heartbeat. */
  suspectAfterMs: number;
  /** Offline, lost and suspect workers not heard from for this long leave the lists (0 = never). */
  retireAfterMs: number;
  /** Largest request body accepted by the API. */
  maxBodyBytes: number;
  /** How long to wait for the master's reply to an RPC. */
  rpcTimeoutMs: number;
  /** How often a tab pings NATS; 3 unanswered in a row mark the connection stale. */
  livePingMs: number;
  /** nats-server's monitoring URL (`/jsz`: the store's limit); empty: not asked. */
  natsMonitorUrl: string;
}

function num(env: Record<string, string | undefined>, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: expected a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

function whole(env: Record<string, string | undefined>, name: string, def: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name}: expected a whole number >= 0, got ${JSON.stringify(raw)}`);
  return n;
}

export function readConfig(env: Record<string, string | undefined> = process.env): UiConfig {
  const dataDir = resolve(env.TROUPE_DATA_DIR || ".troupe");
  return {
    dataDir,
    natsUrl: env.NATS_URL || "nats://127.0.0.1:4222",
    natsCa: env.TROUPE_NATS_CA || "",
    prefix: env.TROUPE_PREFIX || "troupe",
    dbPath: resolve(env.TROUPE_PROJECTOR_DB || `${dataDir}/readmodels.sqlite`),
    ...(env.TROUPE_UI_TOKEN ? { token: env.TROUPE_UI_TOKEN } : {}),
    ...(env.TROUPE_UI_NATS_WS_URL ? { wsUrl: env.TROUPE_UI_NATS_WS_URL } : {}),
    wsPort: num(env, "TROUPE_NATS_WS_PORT", 4223),
    suspectAfterMs: whole(env, "TROUPE_UI_SUSPECT_AFTER_MS", 0),
    retireAfterMs: whole(env, "TROUPE_UI_RETIRE_AFTER_HOURS", 24) * 3600_000,
    maxBodyBytes: num(env, "TROUPE_UI_MAX_BODY_BYTES", 512 * 1024),
    rpcTimeoutMs: num(env, "TROUPE_UI_RPC_TIMEOUT_MS", 5000),
    livePingMs: num(env, "TROUPE_UI_LIVE_PING_MS", 15_000),
    natsMonitorUrl: (env.TROUPE_NATS_MONITOR_URL ?? "").replace(/\/+$/, ""),
  };
}
