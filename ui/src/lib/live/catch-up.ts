/**
 * The catch-up's rule, pure (browser and server). A page's live subscription sees every event stored after the
 * moment it was flushed; everything stored before is in SQLite once the projector's checkpoints reach the streams'
 * last sequences read after that moment. So a catch-up reloads once the read models have reached those heads (or a
 * bounded wait has passed: then it reloads anyway, says the page may be behind, and checks again later).
 */

/** How long the server holds a catch-up check by default, and at most (`GET /api/catch-up?waitMs=`). */
export const CATCH_UP_WAIT_MS = 5000;
export const CATCH_UP_MAX_WAIT_MS = 10_000;

/** Checks again after a check that found the read models behind: 1 s, doubling, at most 30 s. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

/**
 * Events the read models have not folded yet: for each stream, its head minus the projector's checkpoint (a stream
 * the projector has no checkpoint for counts from 0; a checkpoint past the head counts nothing). 0: caught up.
 */
export function behindBy(heads: Readonly<Record<string, number>>, checkpoints: Readonly<Record<string, number>> | undefined): number {
  let behind = 0;
  for (const [stream, head] of Object.entries(heads)) behind += Math.max(0, head - (checkpoints?.[stream] ?? 0));
  return behind;
}

/** The wait before the next check after `failures` checks in a row that did not find the read models caught up. */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(Math.max(0, failures), 16));
}

/**
 * What a check found: caught up; behind, or not answered in a way that waiting may mend (`retry`: the page checks
 * again with a growing delay); or refused in a way no wait mends (`stop`: a 401 needs a new sign-in, another 4xx a
 * reload of the page). A refused check used to be retried up to every 30 s for ever, each time one more refused
 * request, the footer saying "could not check the read models: send the UI token as `Authorization: Bearer`".
 * `heads`: the streams' last sequences the server read, when it answered.
 */
export type CatchUpCheck =
  | { caughtUp: true; heads?: Record<string, number> }
  | { caughtUp: false; reason: string; retry: true; heads?: Record<string, number> }
  | { caughtUp: false; reason: string; retry: false; stop: "sign-in" | "reload"; status: number };

/**
 * Answers a later check may turn: 5xx (a UI server restarting behind a proxy answers 502/503/504), a request timeout,
 * too many requests; 0 is a request that got no answer (network, the page's own timeout).
 */
function transient(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** `v` as the streams' sequences: an object of whole numbers ≥ 0, else undefined. */
function sequences(v: unknown): Record<string, number> | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  for (const n of Object.values(v)) if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) return undefined;
  return v as Record<string, number>;
}

/**
 * Reads the answer of `GET /api/catch-up` (its status and parsed body; `undefined` when it was not JSON). A 401,
 * 403 or other 4xx stops the checks (`stop`); anything else but a well-formed success is a check that failed and is
 * tried again: the page reloads anyway and says why it may be behind.
 */
export function readCatchUpAnswer(status: number, body: unknown): CatchUpCheck {
  const b = body as { success?: unknown; caughtUp?: unknown; behind?: unknown; heads?: unknown; error?: { message?: unknown } } | null | undefined;
  const message = typeof b?.error?.message === "string" ? b.error.message : `HTTP ${status}`;
  if (status === 401) return { caughtUp: false, reason: "the dashboard no longer takes this page's sign-in (its token changed, or the login expired)", retry: false, stop: "sign-in", status };
  if (status >= 400 && !transient(status)) return { caughtUp: false, reason: `the dashboard refused the check (${status}: ${message})`, retry: false, stop: "reload", status };
  const heads = sequences(b?.heads);
  if (status !== 200 || typeof b !== "object" || b === null || b.success !== true || typeof b.caughtUp !== "boolean") {
    return { caughtUp: false, reason: `could not check the read models: ${message}`, retry: true };
  }
  const seen = heads ? { heads } : {};
  if (b.caughtUp) return { caughtUp: true, ...seen };
  const n = typeof b.behind === "number" && Number.isSafeInteger(b.behind) && b.behind > 0 ? b.behind : undefined;
  return { caughtUp: false, reason: n === undefined ? "the read models are behind the event log" : `the read models are ${n} ${n === 1 ? "event" : "events"} behind the event log`, retry: true, ...seen };
}

/**
 * Whether a page's data, read from the read models at `readAt` (the projector's checkpoints in the same snapshot:
 * a page load's `readAt`), already holds everything up to `heads`: then a catch-up whose heads were read after that
 * data was on screen (its views following the feed) has nothing to reload. A page without `readAt` (an error page,
 * one without read models) is never taken as holding anything.
 */
export function dataHolds(readAt: unknown, heads: Readonly<Record<string, number>>): boolean {
  const at = sequences(readAt);
  return at !== undefined && behindBy(heads, at) === 0;
}
