import { MAX_EVENT_BYTES, type EventData, type LogEntry } from "@troupe/events";

/**
 * A job's final event must fit in MAX_EVENT_BYTES of JSON, or it is never stored and the job's outcome is lost
 * (the master then sees only a lapsed lease). What a page puts in it — console messages, step errors, titles —
 * is counted in characters by the schema but costs up to 6 bytes each in JSON (a control character is `\u0001`,
 * a CJK one 3 bytes of UTF-8), so the worker measures the bytes and shrinks the event in steps until it fits.
 * Pure: no I/O.
 */

export type CompletedData = Pick<EventData<"job.completed">, "result" | "metrics">;
export type FailedData = Omit<EventData<"job.failed">, "jobId" | "workerId" | "attempt" | "token">;

/** Room left for the envelope (id, type, time, source) and the attempt's ids and token, with a margin. */
const ENVELOPE_RESERVE = 2048;
export const FINAL_EVENT_BUDGET = MAX_EVENT_BYTES - ENVELOPE_RESERVE;
/** Logs get at most this many bytes of JSON of a final event at first … */
export const LOG_BUDGET_BYTES = 64_000;
const MAX_LOGS = 500;
/** The contract's caps on a final event's lists (events.ts): more step timings or screenshot names are refused as well. */
export const MAX_STEPS = 500;
export const MAX_SCREENSHOTS = 100;

export const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v));

/** Keeps the first log entries that fit `budget` bytes of JSON and says how many were dropped. */
export function limitLogs(logs: readonly LogEntry[], budget = LOG_BUDGET_BYTES): LogEntry[] {
  const out: LogEntry[] = [];
  let used = 0;
  for (const l of logs) {
    const size = jsonBytes(l) + 1;
    if (used + size > budget || out.length >= MAX_LOGS - 1) {
      out.push({ time: l.time, level: "warn", message: `${logs.length - out.length} more log entries dropped (event size limit)`, source: "worker" });
      return out;
    }
    used += size;
    out.push(l);
  }
  return out;
}

type Steps = NonNullable<FailedData["steps"]>;

/** Step errors and names cut to `chars` characters (a step error is up to 4000, repeated for every optional step). */
const cutSteps = (steps: Steps | undefined, chars: number): Steps | undefined =>
  steps?.map((s) => ({
    ...s,
    ...(s.name !== undefined ? { name: s.name.slice(0, chars) } : {}),
    ...(s.error !== undefined ? { error: s.error.length > chars ? `${s.error.slice(0, chars)}…` : s.error } : {}),
  }));

/** Steps without their errors and names: what ran, how long, and how it ended. */
const bareSteps = (steps: Steps | undefined): Steps | undefined => steps?.map(({ index, type, status, durationMs }) => ({ index, type, status, durationMs }));

/** Always leaves at least the note on what was dropped. */
const noteOnly = (logs: readonly LogEntry[]): LogEntry[] => limitLogs(logs, 0);

/**
 * The completed event as it fits: logs, then step errors, then fewer logs, then steps without errors. Null when
 * even that does not fit (extracted data and screenshot names are the result, never cut): the caller reports a
 * `result-too-large` failure instead.
 */
export function fitCompleted(given: CompletedData, budget = FINAL_EVENT_BUDGET): CompletedData | null {
  // The screenshot names are the result: more than the contract takes is a result too large. Step timings are
  // diagnostics: a job with a url and 500 scenario steps has 501, and the first 500 are kept.
  if (given.result.screenshots.length > MAX_SCREENSHOTS) return null;
  const d: CompletedData = given.result.steps && given.result.steps.length > MAX_STEPS ? { ...given, result: { ...given.result, steps: given.result.steps.slice(0, MAX_STEPS) } } : given;
  const withResult = (over: Partial<CompletedData["result"]>): CompletedData => ({ ...d, result: { ...d.result, ...over } });
  const tries: (() => CompletedData)[] = [
    () => withResult({ logs: limitLogs(d.result.logs) }),
    () => withResult({ logs: limitLogs(d.result.logs), ...stepsOf(cutSteps(d.result.steps, 300)) }),
    () => withResult({ logs: limitLogs(d.result.logs, 8_000), ...stepsOf(cutSteps(d.result.steps, 300)) }),
    () => withResult({ logs: noteOnly(d.result.logs), ...stepsOf(bareSteps(d.result.steps)) }),
  ];
  for (const t of tries) {
    const c = t();
    if (jsonBytes(c) <= budget) return c;
  }
  return null;
}

const stepsOf = (steps: Steps | undefined) => (steps ? { steps } : {});

/** The failed event as it fits; the last step keeps the error's code, its first 1000 characters, the step and the screenshots, which always fit. */
export function fitFailed(given: FailedData, budget = FINAL_EVENT_BUDGET): FailedData {
  // Diagnostics within the contract's caps: the first 500 step timings and 100 screenshot names.
  const d: FailedData = {
    ...given,
    ...(given.steps && given.steps.length > MAX_STEPS ? { steps: given.steps.slice(0, MAX_STEPS) } : {}),
    ...(given.screenshots && given.screenshots.length > MAX_SCREENSHOTS ? { screenshots: given.screenshots.slice(0, MAX_SCREENSHOTS) } : {}),
  };
  const logs = d.logs ?? [];
  const cutError = (chars: number) => ({ ...d.error, message: d.error.message.length > chars ? `${d.error.message.slice(0, chars)}…` : d.error.message });
  const tries: (() => FailedData)[] = [
    () => ({ ...d, logs: limitLogs(logs) }),
    () => ({ ...d, logs: limitLogs(logs), ...stepsOf(cutSteps(d.steps, 300)) }),
    () => ({ ...d, error: cutError(2000), logs: limitLogs(logs, 8_000), ...stepsOf(cutSteps(d.steps, 300)) }),
  ];
  for (const t of tries) {
    const f = t();
    if (jsonBytes(f) <= budget) return f;
  }
  return { ...d, error: cutError(1000), logs: noteOnly(logs), ...stepsOf(bareSteps(d.steps)) };
}
