import type { EgressNote } from "./egress-notes.ts";
import type { Step, StepRef, StepTiming } from "@troupe/events";
import { runStep, StepError, type StepEnv } from "./steps.ts";

export interface ScenarioProgress {
  progress: number;
  currentStep: StepRef;
  stepsDone: number;
  stepsTotal: number;
}

export interface ScenarioResult {
  data: Record<string, unknown>;
  dataExtracted: number;
  screenshots: string[];
  steps: StepTiming[];
  responseTime?: number;
}

/** A failed step, with everything run so far (timings, screenshots) for the job.failed event. */
export class ScenarioFailure extends Error {
  constructor(message: string, readonly step: StepRef, readonly code: string, readonly retryable: boolean, readonly partial: ScenarioResult) {
    super(message);
  }
}

export interface ScenarioOptions {
  defaultTimeoutMs: number;
  /** When the attempt's hard timeout fires (Date.now() scale): a step on the default timeout ends STEP_DEADLINE_MARGIN_MS before it. */
  deadlineMs?: number;
  onProgress(p: ScenarioProgress): void;
  /** Step log lines (optional failures). */
  log(level: "info" | "warn", message: string): void;
  /** While a step runs, progress is repeated this often (renews the job lease). */
  progressEveryMs?: number;
  /** Awaited before each step; may hold the scenario (a worker cut off from NATS) or end it by throwing. */
  beforeStep?(index: number): Promise<void>;
}

export const ref = (step: Step, index: number): StepRef => ({ index, type: step.type, ...(step.name ? { name: step.name } : {}) });

/** Puppeteer timeouts and network errors may pass on a retry; other failures say so themselves. */
export function classify(e: unknown): { code: string; retryable: boolean; message: string } {
  if (e instanceof StepError) return { code: e.code, retryable: e.retryable, message: e.message };
  const err = e as Error;
  const message = err?.message ?? String(e);
  if (err?.name === "TimeoutError" || /timeout|timed out/i.test(message)) return { code: "timeout", retryable: true, message };
  if (/net::ERR_/.test(message)) return { code: "navigation", retryable: true, message };
  if (/Target closed|Session closed|Protocol error|detached/i.test(message)) return { code: "browser", retryable: true, message };
  return { code: "step-failed", retryable: false, message };
}

/** A step's own timeout ends this long before the attempt's hard timeout, so the step's error is the one reported. */
const STEP_DEADLINE_MARGIN_MS = 1000;
const MIN_STEP_TIMEOUT_MS = 100;

/**
 * How long a step may take: its own `timeout`, else the worker's default, but
 * a `wait` without one gets at least its own length (a 60 s wait used to fail
 * at the 30 s default). The job's hard timeout bounds everything anyway.
 */
export function stepTimeoutMs(step: Step, defaultMs: number): number {
  if (step.timeout !== undefined) return step.timeout;
  return step.type === "wait" ? Math.max(defaultMs, step.ms) : defaultMs;
}

/** The page ended on Chromium's error page: refused by the guard (ssrf) or a failed load (navigation, retryable). */
export function errorPageFailure(why: EgressNote | undefined): StepError {
  if (why?.kind === "refused") return new StepError(`the page went to a refused target: ${why.why}`, "ssrf", false);
  return new StepError(`the page went to an address that did not load (it shows Chromium's error page)${why ? `: ${why.target}: ${why.why}` : ""}`, "navigation", true);
}

/** Runs the steps in order; an optional step's failure is logged and the scenario goes on. */
export async function executeScenario(steps: readonly Step[], env: StepEnv, o: ScenarioOptions): Promise<ScenarioResult> {
  const result: ScenarioResult = { data: {}, dataExtracted: 0, screenshots: [], steps: [] };
  const total = steps.length;
  const every = o.progressEveryMs ?? 5000;
  for (let i = 0; i < total; i++) {
    const step = steps[i] as Step;
    const current = ref(step, i);
    const mark = env.egress?.seq ?? 0;
    let started = Date.now();
    const tick = setInterval(() => o.onProgress({ progress: (i / total) * 100, currentStep: current, stepsDone: i, stepsTotal: total }), every);
    let stop = false;
    try {
      if (o.beforeStep) {
        // Progress goes on ticking meanwhile (the job's lease); the hold is not the step's time.
        await o.beforeStep(i);
        started = Date.now();
      }
      const own = stepTimeoutMs(step, o.defaultTimeoutMs);
      // Only the default: a timeout the step names, or a wait's own length, is what was asked for, and the hard timeout stops it.
      const capped = o.deadlineMs !== undefined && step.timeout === undefined && step.type !== "wait";
      const timeout = capped ? Math.min(own, Math.max(MIN_STEP_TIMEOUT_MS, o.deadlineMs! - STEP_DEADLINE_MARGIN_MS - Date.now())) : own;
      const out = await withDeadline(runStep(step, i, env, timeout), timeout + 1000, step.type);
      // The page went on its own (a script, a meta refresh) to where it could not load: what the next steps read is
      // Chromium's error page, and a job "completed" with its text would mislead. The step that left it there fails.
      const landed = env.page.isClosed() ? "" : env.page.url();
      // Explained only by what the egress proxy said during this step about the document that failed.
      if (landed.startsWith("chrome-error://") || env.egress?.onFailurePage) throw errorPageFailure(env.egress?.explain(mark));
      if (out.data) Object.assign(result.data, out.data);
      result.dataExtracted += out.extracted ?? 0;
      if (out.screenshot) result.screenshots.push(out.screenshot);
      if (out.responseTime !== undefined && result.responseTime === undefined) result.responseTime = out.responseTime;
      result.steps.push({ ...current, status: "ok", durationMs: Date.now() - started });
      stop = out.stop === true;
    } catch (e) {
      if (env.signal.aborted) throw env.signal.reason;
      const c = classify(e);
      // Numbered from 1, as the dashboard and `submit --wait` show steps (the event's step.index stays 0-based).
      const message = `step ${i + 1} (${step.type}${step.name ? ` "${step.name}"` : ""}): ${c.message}`.slice(0, 4000);
      if (!step.optional) {
        result.steps.push({ ...current, status: "failed", durationMs: Date.now() - started, error: c.message.slice(0, 4000) });
        throw new ScenarioFailure(message, current, c.code, c.retryable, result);
      }
      result.steps.push({ ...current, status: "skipped", durationMs: Date.now() - started, error: c.message.slice(0, 4000) });
      o.log("warn", `optional ${message}`);
    } finally {
      clearInterval(tick);
    }
    o.onProgress({ progress: ((i + 1) / total) * 100, currentStep: current, stepsDone: i + 1, stepsTotal: total });
    if (stop) break;
  }
  return result;
}

/** A backstop for steps whose own timeout does not cover every wait. */
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  const timer = new Promise<never>((_, rej) => {
    t = setTimeout(() => rej(new StepError(`${what} step did not finish within ${ms} ms`, "timeout", true)), ms);
  });
  return Promise.race([p, timer]).finally(() => clearTimeout(t));
}
