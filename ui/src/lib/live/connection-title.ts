import type { LiveStatus } from "./live.svelte.ts";

/**
 * The live indicator's tooltip: where the page connects and, when it is not live, why. A browser's WebSocket error
 * carries no message, so an offline page showed an empty tooltip (a session's note); a stale error from a past
 * reconnect showed beside "live".
 */
export function connectionTitle(status: LiveStatus, url: string | undefined, lastError: string | undefined): string {
  const where = url ? `the NATS WebSocket at ${url}` : "the NATS WebSocket";
  if (status === "live") return `Live: ${where}, as the read-only live user`;
  const why = lastError?.trim() ? `: ${lastError.trim()}` : "";
  // The page's live credentials came with it: new ones (NATS restarted with others) need a reload.
  const reload = /authori[sz]ation|authentication/i.test(lastError ?? "") ? "; reload the page if NATS's credentials changed" : "";
  if (status === "offline") return `Offline: could not connect to ${where}${why || " (the browser gives no reason: is nats-server's websocket port reachable from this browser?)"}; trying again every 2 s${reload}`;
  if (status === "reconnecting") return `Reconnecting to ${where}${why}`;
  return `Connecting to ${where}`;
}
