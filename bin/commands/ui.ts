import { isIP } from "node:net";
import { bool, defineCommand, halfCredentialError, int, natsOptions, natsTlsOptions, shutdownSignal, str, UsageError } from "@troupe/events/node";
import { dbPathFor } from "../../services/projector/src/db-file.ts";
import { openReadModels } from "../../services/projector/src/read-models.ts";
import { ensureUiBuild } from "../../ui/launch/build.ts";
import { serveUi } from "../../ui/launch/serve.ts";

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1";
  return false;
}

export const uiOptions = {
  ...natsOptions,
  host: str("listen address; anything but loopback needs --token", { env: "TROUPE_UI_HOST", default: "127.0.0.1", pattern: /^[A-Za-z0-9.:-]+$/, patternHelp: "an IP address or host name" }),
  port: int("listen port", { env: "TROUPE_UI_PORT", default: 3000, min: 0, max: 65535 }),
  token: str("login token: turns on a login page and `Authorization: Bearer` for the API", { env: "TROUPE_UI_TOKEN", metavar: "<token>", pattern: /^\S{16,}$/, patternHelp: "at least 16 characters without spaces" }),
  db: str("the projector's SQLite read models (default <data dir>/readmodels.sqlite)", { env: "TROUPE_PROJECTOR_DB", metavar: "<file>" }),
  wsPort: int("NATS WebSocket port browsers connect to", { env: "TROUPE_NATS_WS_PORT", default: 4223, min: 1, max: 65535 }),
  wsUrl: str("full NATS WebSocket URL for browsers (default ws://<page host>:<ws port>)", { env: "TROUPE_UI_NATS_WS_URL", metavar: "<url>", pattern: /^wss?:\/\/\S+$/, patternHelp: "ws://host:port or wss://host:port" }),
  suspectAfterMs: int("show a worker as suspect when silent for two of its heartbeat intervals, and never sooner than this (0 = no floor)", { env: "TROUPE_UI_SUSPECT_AFTER_MS", default: 0, min: 0, metavar: "<ms>" }),
  retireAfterHours: int("leave offline, lost and suspect workers not heard from for this long out of the lists and counts (0 = never; the API and the worker's own page keep them)", { env: "TROUPE_UI_RETIRE_AFTER_HOURS", default: 24, min: 0, max: 24 * 3650, metavar: "<hours>" }),
  rpcTimeoutMs: int("how long to wait for the master's reply (and, when none listens, for one to start)", { env: "TROUPE_UI_RPC_TIMEOUT_MS", default: 5000, min: 100, metavar: "<ms>" }),
  livePingMs: int("how often a dashboard tab pings NATS over its WebSocket; 3 unanswered pings in a row say \"reconnecting…\" (a hung server closes nothing)", { env: "TROUPE_UI_LIVE_PING_MS", default: 15_000, min: 1000, metavar: "<ms>" }),
  maxBodyBytes: int("largest API request body", { env: "TROUPE_UI_MAX_BODY_BYTES", default: 512 * 1024, min: 1024, metavar: "<bytes>" }),
  natsMonitorUrl: str("nats-server's monitoring URL, for the Overview's storage gauge (its limit is only there); `troupe up` sets it", { env: "TROUPE_NATS_MONITOR_URL", metavar: "<url>", pattern: /^https?:\/\/[^\s/]+\/?$/, patternHelp: "http://host:port" }),
  build: bool("build the dashboard when ui/build is missing or older than its sources", { env: "TROUPE_UI_BUILD", default: true }),
} as const;

export const command = defineCommand({
  name: "ui",
  summary: "Serve the dashboard and the REST API (SvelteKit, adapter-node) on 127.0.0.1:3000; builds ui/ first when needed.",
  options: uiOptions,
  details: `
The pages read the projector's SQLite read models and update live over NATS WebSocket
as the read-only "live" user; commands (submit, cancel, retry, drain) go to the master.
Binding a non-loopback address (--host 0.0.0.0) requires --token / TROUPE_UI_TOKEN.
  curl -s localhost:3000/api/workers | jq
  curl -s -XPOST localhost:3000/api/jobs -H 'content-type: application/json' -d '{"url":"https://example.com"}'`,
  async run({ values: v }) {
    if (!isLoopback(v.host) && !v.token) {
      throw new UsageError(`refusing to serve the dashboard on ${v.host} without a login: set TROUPE_UI_TOKEN (or --token), or bind 127.0.0.1`);
    }
    // Said at start: the dashboard otherwise served pages and failed only at the first command or live update (an attack).
    for (const role of ["ui", "live"] as const) {
      const half = halfCredentialError(role);
      if (half) throw new UsageError(half);
    }
    // Said at start too: a CA it cannot read failed every command and live update with a 503, and a --db that is no
    // SQLite file made every page a 500, while the dashboard said it was up (a review). A file not there yet is fine:
    // the pages say to start the projector.
    try {
      natsTlsOptions(v.natsUrl, v.natsCa || undefined);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const db = dbPathFor(v.dataDir, v.db);
    const rm = openReadModels(db);
    try {
      rm.ready();
    } catch (e) {
      if (/not a database|file is encrypted/i.test((e as Error).message)) throw new UsageError(`${v.db ? "--db" : "the read models"}: ${(e as Error).message} (the projector's SQLite file: troupe projector --db)`);
    } finally {
      rm.close();
    }
    if (v.build) await ensureUiBuild();
    // The app reads its settings from these (ui/src/lib/server/config.ts).
    Object.assign(process.env, {
      NATS_URL: v.natsUrl, TROUPE_NATS_CA: v.natsCa, TROUPE_DATA_DIR: v.dataDir, TROUPE_PREFIX: v.prefix,
      TROUPE_NATS_WS_PORT: String(v.wsPort), TROUPE_UI_SUSPECT_AFTER_MS: String(v.suspectAfterMs), TROUPE_UI_RETIRE_AFTER_HOURS: String(v.retireAfterHours),
      TROUPE_UI_RPC_TIMEOUT_MS: String(v.rpcTimeoutMs), TROUPE_UI_LIVE_PING_MS: String(v.livePingMs), TROUPE_UI_MAX_BODY_BYTES: String(v.maxBodyBytes), TROUPE_NATS_MONITOR_URL: v.natsMonitorUrl ?? "",
      ...(v.db ? { TROUPE_PROJECTOR_DB: v.db } : {}), ...(v.token ? { TROUPE_UI_TOKEN: v.token } : {}), ...(v.wsUrl ? { TROUPE_UI_NATS_WS_URL: v.wsUrl } : {}),
    });
    const ui = await serveUi(v.host, v.port);
    console.log(`troupe ui: dashboard at ${ui.url}${v.token ? " (login with the token)" : ""}`);
    await shutdownSignal();
    await ui.close();
    return 0;
  },
});
