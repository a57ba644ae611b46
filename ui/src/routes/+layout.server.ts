import { loadCredential } from "@troupe/events/node";
import type { LiveSettings } from "$lib/live/live.svelte.ts";
import { context } from "$lib/server/context.ts";
import type { LayoutServerLoad } from "./$types";

/** Every page gets the read-only `live` credentials to follow NATS over WebSocket (hooks enforce the token first). */
export const load: LayoutServerLoad = ({ locals }) => {
  const { cfg } = context();
  let live: LiveSettings | null = null;
  let liveError: string | null = null;
  if (locals.authenticated) try {
    const c = loadCredential("live", cfg.dataDir);
    live = { user: c.user, password: c.password, wsPort: cfg.wsPort, prefix: cfg.prefix, ...(cfg.wsUrl ? { wsUrl: cfg.wsUrl } : {}) };
  } catch (e) {
    liveError = (e as Error).message;
  }
  const projectorReady = locals.authenticated ? context().reads().ready() : true;
  return { live, liveError, projectorReady, dbPath: cfg.dbPath, suspectAfterMs: cfg.suspectAfterMs, retireAfterMs: cfg.retireAfterMs, loginEnabled: Boolean(cfg.token), serverNowMs: Date.now() };
};
