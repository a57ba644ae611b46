/**
 * Trying again while NATS cannot answer: a server restarting, JetStream
 * starting, a cluster electing a stream's leader. Shared by the master's
 * followers and appends and the projector's consumers.
 */
import { setTimeout as delay } from "node:timers/promises";

/** An error that means the server cannot answer right now (no responders, a timeout, a lost connection, a full store), not a refusal. */
export function isNatsOutage(e: unknown): boolean {
  return /no responders|timeout|not enabled|unavailable|disconnect|closed/i.test((e as Error)?.message ?? "") || isStorageFull(e);
}

/**
 * An append that failed without a refusal (no ack within the time, a connection dropped or closed under it) may
 * have been stored all the same: the caller must not take it for one that was not.
 */
export function mayHaveBeenStored(e: unknown): boolean {
  return /timeout|disconnect|closed/i.test((e as Error)?.message ?? "");
}

/**
 * JetStream's store is full (its `max_file_store`, or the disk): every append is refused until space is freed, so it is
 * waited out like an outage (a master retrying at once logged 21,769 refused assignments in 10 s).
 */
export function isStorageFull(e: unknown): boolean {
  return /insufficient resources|no space left on device/i.test((e as Error)?.message ?? "");
}

/** What to do about a full store, for log lines. */
export const STORAGE_FULL_HINT =
  "JetStream's storage is full (its max_file_store, or the disk): free space; on nats-server 2.9.10 space freed by deleting single objects or a filtered purge comes back only with a full purge of that stream or a nats-server restart (docs/architecture.md)";

export interface RetryOptions<T = unknown> {
  /** Longest wait between tries; the first is `firstWaitMs` (250 ms) and each next one twice as long. */
  maxWaitMs: number;
  firstWaitMs?: number;
  /** Gives up (throws the last error) when the next wait would end past this; default never. */
  giveUpAfterMs?: number;
  /** Only errors this accepts are tried again; others are thrown at once. */
  retryIf?: (e: Error) => boolean;
  onRetry?: (e: Error, waitMs: number) => void;
  /** Checked before each try and after each failure: true ends the retrying with undefined. */
  stopped?: () => boolean;
  /** As `stopped`, and its abort also ends a wait between tries at once (a try under way runs to its end, unless `abandon`). */
  signal?: AbortSignal;
  /**
   * With `signal`: a try under way when it aborts is let go, and the retrying ends with undefined at once; what the try
   * resolves to later is handed here to be undone (e.g. a connection closed). Without it a signal waited for a request's
   * timeout: a master stopped while it made a consumer took up to 12 s, past `docker stop`'s 10 s grace.
   */
  abandon?: (late: T) => unknown;
}

/** What a try let go at an abort is reported as (never a value of the try's). */
const ABANDONED: unique symbol = Symbol("abandoned");

/** `tried`, or ABANDONED as soon as `signal` aborts; a value it resolves to after that goes to `abandon`. */
function unlessAborted<T>(tried: Promise<T>, signal: AbortSignal, abandon: (late: T) => unknown): Promise<T | typeof ABANDONED> {
  if (signal.aborted) {
    void tried.then(abandon).catch(() => undefined);
    return Promise.resolve(ABANDONED);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      resolve(ABANDONED);
      // Its error, if any, is no one's concern any more; its value is undone.
      void tried.then(abandon).catch(() => undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    tried.then(
      (v) => (signal.removeEventListener("abort", onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener("abort", onAbort), reject(e as Error)),
    );
  });
}

/** Runs `fn` until it resolves, waiting longer after each failure (see RetryOptions). */
export async function retryWithBackoff<T>(fn: () => Promise<T>, o: RetryOptions<T>): Promise<T | undefined> {
  const giveUpAt = Date.now() + (o.giveUpAfterMs ?? Number.POSITIVE_INFINITY);
  const stopped = () => (o.signal?.aborted ?? false) || (o.stopped?.() ?? false);
  for (let wait = o.firstWaitMs ?? 250; ; wait = Math.min(wait * 2, o.maxWaitMs)) {
    if (stopped()) return undefined;
    try {
      if (!o.signal || !o.abandon) return await fn();
      const r = await unlessAborted(fn(), o.signal, o.abandon);
      return r === ABANDONED ? undefined : r;
    } catch (e) {
      if (stopped()) return undefined;
      if (o.retryIf && !o.retryIf(e as Error)) throw e;
      if (Date.now() + wait > giveUpAt) throw e;
      o.onRetry?.(e as Error, wait);
      // An abort ends the wait at once (the rejection it makes is the abort, not an error to report).
      await delay(wait, undefined, o.signal ? { signal: o.signal } : {}).catch(() => undefined);
    }
  }
}

/** How long a start waits out "JetStream not enabled" (`startOutage`). */
export const JETSTREAM_NOT_ENABLED_WAIT_MS = 60_000;

/**
 * Which errors a service's start waits out (a `retryIf`): an outage, while the connection lives; "JetStream not
 * enabled" — also nats.js's answer when nothing answers `$JS.API.INFO` — only for JETSTREAM_NOT_ENABLED_WAIT_MS from the
 * first one: a server starting its JetStream says so for a moment, a server or account without JetStream for ever (an
 * error to see, not a wait). One filter per wait: it keeps when "not enabled" began.
 */
export function startOutage(nc: { isClosed(): boolean }): (e: Error) => boolean {
  let notEnabledSince: number | undefined;
  return (e) => {
    if (!isNatsOutage(e) || nc.isClosed()) return false;
    if (!/not enabled/i.test(e.message)) return true;
    notEnabledSince ??= Date.now();
    return Date.now() - notEnabledSince < JETSTREAM_NOT_ENABLED_WAIT_MS;
  };
}

/**
 * Runs `fn` until NATS answers it: an outage (a timeout, no responders, a dropped link; JetStream not enabled for up
 * to a minute: `startOutage`) is waited out with a backoff of 250 ms doubling to `maxWaitMs` (default 1 s), each wait
 * told to `onRetry`. A connection closed for good ends the wait with its error, as does any error that is not an
 * outage or that `fatal` picks out; `stopped` ends it with undefined. For a service's start: a master started while
 * the server was restarting or the machine loaded exited with a bare "timeout" (a chaos soak, 2026-11-30).
 */
export function untilNatsAnswers<T>(nc: { isClosed(): boolean }, fn: () => Promise<T>, o: { onRetry: (e: Error, waitMs: number) => void; maxWaitMs?: number; fatal?: (e: Error) => boolean; stopped?: () => boolean; signal: AbortSignal; abandon?: (late: T) => unknown }): Promise<T | undefined>;
export function untilNatsAnswers<T>(nc: { isClosed(): boolean }, fn: () => Promise<T>, o: { onRetry: (e: Error, waitMs: number) => void; maxWaitMs?: number; fatal?: (e: Error) => boolean; stopped: () => boolean; signal?: AbortSignal; abandon?: (late: T) => unknown }): Promise<T | undefined>;
export function untilNatsAnswers<T>(nc: { isClosed(): boolean }, fn: () => Promise<T>, o: { onRetry: (e: Error, waitMs: number) => void; maxWaitMs?: number; fatal?: (e: Error) => boolean }): Promise<T>;
export function untilNatsAnswers<T>(nc: { isClosed(): boolean }, fn: () => Promise<T>, o: { onRetry: (e: Error, waitMs: number) => void; maxWaitMs?: number; fatal?: (e: Error) => boolean; stopped?: () => boolean; signal?: AbortSignal; abandon?: (late: T) => unknown }): Promise<T | undefined> {
  const waitable = startOutage(nc);
  return retryWithBackoff(fn, {
    maxWaitMs: o.maxWaitMs ?? 1000,
    retryIf: (e) => waitable(e) && !o.fatal?.(e),
    onRetry: o.onRetry,
    ...(o.stopped ? { stopped: o.stopped } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.abandon ? { abandon: o.abandon } : {}),
  });
}

/** How many times a client asks the masters before it gives up on a command that timed out (`requestAgainOnTimeout`). */
export const RPC_TRIES = 3;

/**
 * A request to the masters' queue group, asked again (up to `tries`) when it times out: the group picks a
 * master at random, and one that is paused rather than dead (SIGSTOP, a frozen VM) keeps taking its share
 * until nats-server's ping check drops it, while the others answer. Only for commands that are safe to
 * repeat: a keyed submission, a cancel, a drain. Other errors (no responders, a closed connection) are
 * thrown at once.
 */
export async function requestAgainOnTimeout(
  nc: { request(subject: string, payload: string, o: { timeout: number }): Promise<{ data: Uint8Array }> },
  subject: string,
  payload: string,
  o: {
    timeoutMs: number;
    tries?: number;
    onRetry?: (nextTry: number, tries: number) => void;
    /**
     * How long to wait for a master to listen when none does ("no responders": nothing was recorded, so asking again
     * is always safe): a master restarting is gone for a few seconds, and a `troupe submit` in that gap failed at
     * once (a chaos soak). 0: throw at once. The error after the wait says how long it waited.
     */
    waitForResponderMs?: number;
    /** Called once, when the first "no responders" starts the wait. */
    onNoResponder?: () => void;
  },
): Promise<{ data: Uint8Array }> {
  const tries = o.tries ?? RPC_TRIES;
  // From the first "no responders", not from the first try: after a try that timed out (a master killed under it,
  // then restarting) the whole wait is still ahead (a review).
  let waitUntil: number | undefined;
  for (let attempt = 1; ; ) {
    try {
      return await nc.request(subject, payload, { timeout: o.timeoutMs });
    } catch (e) {
      if (isNoResponders(e) && (o.waitForResponderMs ?? 0) > 0) {
        if (waitUntil === undefined) {
          waitUntil = Date.now() + (o.waitForResponderMs ?? 0);
          o.onNoResponder?.();
        }
        const left = waitUntil - Date.now();
        if (left <= 0) throw new Error(`no responders: nobody listened on ${subject} for ${((o.waitForResponderMs ?? 0) / 1000).toFixed(1)} s`, { cause: e });
        await new Promise((r) => setTimeout(r, Math.min(NO_RESPONDER_POLL_MS, left)));
        continue;
      }
      if (attempt >= tries || !/timeout/i.test((e as Error).message)) throw e;
      attempt++;
      o.onRetry?.(attempt, tries);
    }
  }
}

/** How often a request nobody listens to is asked again while `waitForResponderMs` lasts. */
const NO_RESPONDER_POLL_MS = 250;

/** nats.js's answer to a request nobody is subscribed to (a 503 status). */
/** NATS answered a request with "no responders": nobody listens on its subject now. */
export function isNoResponders(e: unknown): boolean {
  return /no responders/i.test((e as Error)?.message ?? "");
}

/**
 * A cancel asked again after a timeout and refused because the job "is cancelled": the earlier try was only
 * slow, and it did cancel the job, which is the answer the caller asked for.
 */
export function isOwnEarlierCancel(name: string, askedAgain: boolean, error: { code: string; message: string }): boolean {
  return name === "jobs.cancel" && askedAgain && error.code === "conflict" && / is cancelled$/.test(error.message);
}
