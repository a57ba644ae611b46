import { masterStatus } from "@troupe/events";
import { loadCredential } from "@troupe/events/node";
import type { LiveSettings } from "$lib/live/live.svelte.ts";
import { context } from "$lib/server/context.ts";
import { within } from "$lib/server/pages.ts";
import type { LayoutServerLoad } from "./$types";

/** Every page gets the read-only `live` credentials to follow NATS over WebSocket (hooks enforce the token first). */
export const load: LayoutServerLoad = async ({ locals, url, depends }) => {
  // Read again on every navigation and with the Overview's refresh, so the masters' status does not stay as the
  // first page found it (a lease is a KV message, which the browser's live user cannot follow).
  void url.pathname;
  depends("troupe:overview");
  const { cfg } = context();
  let live: LiveSettings | null = null;
  let liveError: string | null = null;
  if (locals.authenticated) try {
    const c = loadCredential("live", cfg.dataDir);
    live = { user: c.user, password: c.password, wsPort: cfg.wsPort, prefix: cfg.prefix, pingMs: cfg.livePingMs, ...(cfg.wsUrl ? { wsUrl: cfg.wsUrl } : {}) };
  } catch (e) {
    liveError = (e as Error).message;
  }
  const projectorReady = locals.authenticated ? context().reads().ready() : true;
  // Null when NATS cannot say in time: the page renders without the masters' status.
  const master = locals.authenticated ? await within(async () => masterStatus(await context().nats.masterLease(), Date.now()), LEASE_READ_MS) : null;
  // The read models' path is for signed-in eyes only (the login page's data showed it to anyone; a review).
  return { live, liveError, projectorReady, master, dbPath: locals.authenticated ? cfg.dbPath : "", suspectAfterMs: cfg.suspectAfterMs, retireAfterMs: cfg.retireAfterMs, loginEnabled: Boolean(cfg.token), serverNowMs: Date.now() };
};

/** How long a page waits for the lease before it renders without the masters' status. */
const LEASE_READ_MS = 1000;
