import type { FailedAttempt } from "../../../services/projector/src/read-models.ts";

/**
 * The Overview's "Top errors": the failed attempts of a recent window grouped by error code and a normalised message
 * (pure, so it is unit-tested without a server; the server groups, the page only renders).
 *
 * A failed attempt is one whose outcome is `failed` (`job_attempts`): a `job.failed` the job's fold accepted, which
 * is also what a worker's failure count holds. A retryable failure keeps that outcome when the master requeues the
 * job (the attempt ended failed; the next one is another row). An attempt requeued because its worker died or went
 * silent, or ended by a cancel or by the master's giving up, carries no error and is not counted here.
 */

/** Groups the Overview shows. */
export const TOP_ERRORS = 5;
/**
 * The newest failed attempts grouped at most (the total is still counted): a bounded read at each of the Overview's
 * reloads (every 5 s while events arrive), however bad the hour. 10,000 varied messages took ~50 ms to group on the
 * shared 2-core machine (identical ones cost a map lookup); 5,000 keeps a reload's share of it at ~25 ms.
 */
export const MAX_GROUPED = 5_000;
/** Characters of a normalised message kept as a group's key and label (the projector keeps 300 of the message). */
export const KEY_CHARS = 300;

/** A failed attempt as the read models give it (their type, not a copy). */
export type FailedAttemptRow = FailedAttempt;

/** One error: its failed attempts in the window. */
export interface ErrorGroup {
  /** The error's code (`timeout`, `step-failed`, …); null when the worker gave none. */
  code: string | null;
  /** The message with what varies between jobs replaced (normaliseError): the group's label. */
  message: string;
  /** Failed attempts in the group. */
  count: number;
  /** How many distinct workers they failed on. */
  workers: number;
  /** When the newest of them ended (ISO). */
  lastAt: string;
  /** The newest of them: its job, attempt and message as the worker wrote it (as the projector keeps it, ≤ 300 characters). */
  example: { jobId: string; attempt: number; message: string };
}

export interface TopErrors {
  windowMinutes: number;
  /** The start of the window's oldest minute (ISO). */
  from: string;
  /** When the read models were read (ISO): the panel says "as of". */
  asOf: string;
  /** Failed attempts in the window, all of them. */
  failedAttempts: number;
  /** How many of the newest were grouped (failedAttempts, unless more than MAX_GROUPED). */
  grouped: number;
  /** The largest groups, most attempts first. */
  groups: ErrorGroup[];
}

const URL_RE = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>()[\]{}]+/gi;
const UUID_RE = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
/** A word (letters, digits, underscore) with a digit in it: a number, an id, a hash, a generated selector. */
const WORD_WITH_DIGIT_RE = /[A-Za-z0-9_]*[0-9][A-Za-z0-9_]*/g;

/** Numbers become `<n>`, words with letters and digits `<id>`; a decimal is one number. */
function normaliseWords(s: string): string {
  return s
    .replace(UUID_RE, "<id>")
    .replace(/\b\d+(?:[.,]\d+)*\b/g, "<n>")
    // Chromium's error names (ERR_HTTP2_PING_FAILED, ERR_SSL_VERSION_OR_CIPHER_MISMATCH) are the error, not an id.
    .replace(WORD_WITH_DIGIT_RE, (w) => (/^\d+$/.test(w) ? "<n>" : /^ERR_[A-Z0-9_]+$/.test(w) ? w : "<id>"));
}

/**
 * An error message with what varies from job to job replaced, so that one cause makes one group: "timeout after
 * 30000 ms waiting for #btn-4f2a" and "timeout after 5000 ms waiting for #btn-77c1" both read "timeout after <n> ms
 * waiting for #btn-<id>". Deterministic and simple:
 * - whitespace (newlines too) collapses to one space;
 * - a URL keeps its scheme and host (a target that is down is the thing to see) and its path with the rules below;
 *   its query string and fragment go;
 * - a UUID, and any word (letters, digits, `_`) holding a digit, becomes `<id>`; a number alone `<n>` (so
 *   "HTTP 500" and "HTTP 404" group together: the code and the example say which);
 * - the result is cut to KEY_CHARS.
 */
export function normaliseError(message: string): string {
  const s = message.replace(/\s+/g, " ").trim();
  let out = "";
  let at = 0;
  for (const m of s.matchAll(URL_RE)) {
    out += normaliseWords(s.slice(at, m.index));
    // A sentence's full stop or comma after a URL is not part of it.
    const trail = /[.,;:!]+$/.exec(m[0])?.[0] ?? "";
    const url = m[0].slice(0, m[0].length - trail.length).replace(/[?#].*$/, "");
    const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(url)?.[0] ?? "";
    out += origin + normaliseWords(url.slice(origin.length)) + trail;
    at = m.index + m[0].length;
  }
  out += normaliseWords(s.slice(at));
  return cut(out, KEY_CHARS);
}

/** `s` cut to `chars` with "…", never between the halves of a surrogate pair. */
export function cut(s: string, chars: number): string {
  if (s.length <= chars) return s;
  const end = /[\uD800-\uDBFF]/.test(s.charAt(chars - 1)) ? chars - 1 : chars;
  return `${s.slice(0, end)}…`;
}

/**
 * The attempts grouped by code and normalised message, the `limit` largest first (then the most recent, then by
 * label: the same rows always give the same groups in the same order). `rows` newest first, as the read models
 * give them: a group's example and last time are its first row.
 */
export function groupErrors(rows: Iterable<FailedAttemptRow>, limit = TOP_ERRORS): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup & { workerIds: Set<string> }>();
  // One cause often repeats its message word for word: normalised once.
  const normalised = new Map<string, string>();
  for (const r of rows) {
    const raw = r.errorMessage ?? "";
    let message = normalised.get(raw);
    if (message === undefined) normalised.set(raw, (message = normaliseError(raw)));
    const key = `${r.errorCode ?? ""}\u0000${message}`;
    const g = groups.get(key);
    if (g) {
      g.count += 1;
      g.workerIds.add(r.workerId);
      // Newest first from the read models; a row out of order still gives the newest.
      if (r.endedAt > g.lastAt) {
        g.lastAt = r.endedAt;
        g.example = { jobId: r.jobId, attempt: r.attempt, message: r.errorMessage ?? "" };
      }
    } else {
      groups.set(key, {
        code: r.errorCode, message, count: 1, workers: 0, lastAt: r.endedAt,
        example: { jobId: r.jobId, attempt: r.attempt, message: r.errorMessage ?? "" }, workerIds: new Set([r.workerId]),
      });
    }
  }
  return [...groups.values()]
    .sort((a, b) => b.count - a.count || (a.lastAt < b.lastAt ? 1 : a.lastAt > b.lastAt ? -1 : 0) || ((a.code ?? "") + a.message < (b.code ?? "") + b.message ? -1 : 1))
    .slice(0, limit)
    .map(({ workerIds, ...g }) => ({ ...g, workers: workerIds.size }));
}

/** A group in one line, for a warning: `timeout: "timeout after <n> ms …" (45 attempts)`. */
export function errorLine(g: Pick<ErrorGroup, "code" | "message" | "count">, chars = 120): string {
  const m = cut(g.message, chars);
  return `${g.code ? `${g.code}: ` : ""}“${m}” (${g.count} attempt${g.count === 1 ? "" : "s"})`;
}
