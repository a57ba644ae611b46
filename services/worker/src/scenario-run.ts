import type { EgressNote } from "./egress-notes.ts";
import { validateTargets, type Step, type StepRef, type StepTiming } from "@troupe/events";
import type { Page } from "puppeteer-core";
import type { NavigationWatch } from "./navigation-watch.ts";
import { mainFrameId, puppeteerSession } from "./page-targets.ts";
import { contextGone, runStep, StepError, withinMs, type StepEnv, type StepOutcome } from "./steps.ts";
import { PROGRESS_EVERY_MS } from "./lease-cadence.ts";

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
  /** The step under way and when it started: what an attempt ended from outside (its hard timeout) was doing. */
  running?: { step: StepRef; startedAt: number };
}

/**
 * What an attempt ended from outside (hard timeout, cancel, crash) had done: the steps so far and the one under way,
 * failed with `why`. A copy: the scenario may still be settling the step it was in.
 */
export function endedPartial(live: ScenarioResult, why: string): ScenarioResult {
  const { running, ...done } = live;
  const steps = [...live.steps];
  if (running) steps.push({ ...running.step, status: "failed", durationMs: Date.now() - running.startedAt, error: why.slice(0, 4000) });
  return { ...done, data: { ...live.data }, screenshots: [...live.screenshots], steps, ...(running ? { running } : {}) };
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
  /** Filled as the scenario goes (else a new one): the caller's view of it when the attempt is ended from outside. */
  result?: ScenarioResult;
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
  if (contextGone(e)) return { code: "navigation", retryable: true, message: `the page went to another document while the step used it (${message})` };
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
  const result: ScenarioResult = o.result ?? { data: {}, dataExtracted: 0, screenshots: [], steps: [] };
  // A step in another page (a job submitted before jobs.submit refused them): fails for good before any step acts.
  const other = validateTargets({ steps }, "scenario");
  if (other) {
    const i = Number(/steps\[(\d+)\]/.exec(other.path)?.[1] ?? 0);
    throw new ScenarioFailure(`step ${i + 1}: ${other.message}`, ref(steps[i] as Step, i), "invalid", false, result);
  }
  const total = steps.length;
  const every = o.progressEveryMs ?? PROGRESS_EVERY_MS;
  /** The main frame's commit count when its document was last known parsed (NavigationWatch.commits). */
  let parsed = 0;
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
      const until = Math.min(started + timeout, o.deadlineMs === undefined ? Infinity : o.deadlineMs - STEP_DEADLINE_MARGIN_MS);
      const nav = env.navigations;
      result.running = { step: current, startedAt: started };
      // A step works on the page's next document once it is there and parsed (a click's link, a meta refresh): an
      // assert or extract on the way out read a document being torn down ("Execution context was destroyed", final).
      // One that never gets there (a script that never loads, a hostile readyState) is waited for once, not by every
      // step after it (a review: 5 s a step).
      if (nav && step.type !== "navigate" && step.type !== "wait" && (nav.inFlight || nav.commits !== parsed)) {
        if (!(await settlePage(env.page, env.signal, nav, until))) nav.abandon();
        parsed = nav.commits;
        if (env.signal.aborted) throw env.signal.reason;
      }
      let out: StepOutcome;
      for (;;) {
        const left = Math.max(MIN_STEP_TIMEOUT_MS, started + timeout - Date.now());
        // A step past its backstop is stopped, not left running: an optional `type` that outlived it typed on into
        // the next step's field.
        const stepStop = new AbortController();
        try {
          out = await withDeadline(runStep(step, i, { ...env, signal: AbortSignal.any([env.signal, stepStop.signal]) }, left), left + 1000, step.type, stepStop);
          break;
        } catch (e) {
          // A step that only reads reads the next document when a navigation took the one it read; one that acts could act twice.
          if (!nav || !READS.has(step.type) || !contextGone(e) || Date.now() >= until || env.signal.aborted) throw e;
          if (!(await settlePage(env.page, env.signal, nav, until))) nav.abandon();
          parsed = nav.commits;
        }
      }
      if (step.type === "navigate" && nav) parsed = nav.commits; // loaded, not only parsed
      const last = i === total - 1 || out.stop === true;
      if (nav) {
        // A form is sent a task after the click that sends it, a meta refresh a task after the load: a turn of the
        // page's own tasks lets it ask. Only where a step reads the page once next, or the scenario ends: a step that
        // waits or acts finds the next document by itself, and the turn cost ~7 % of a 5-step job (bench worker).
        const next = last ? undefined : steps[i + 1];
        if (MAY_NAVIGATE.has(step.type) && (next === undefined || READS_ONCE.has(next.type))) await pageTurn(env.page, Math.min(PAGE_TURN_MS, until - Date.now()));
        if (nav.inFlight) {
          // The step began loading a document (a click on a link, a form sent): it is awaited within the step's time,
          // so that one that failed is this step's failure (checked below), and the last step's is the job's outcome.
          const url = nav.latest;
          const settled = await nav.settled(until - Date.now(), env.signal);
          if (env.signal.aborted) throw env.signal.reason;
          if (!settled && last) {
            // Not failed either: whether a form went through is unknown, and a retry could send it again.
            o.log("warn", `step ${i + 1} (${step.type}) began loading ${url?.slice(0, 500) ?? "a page"}, still loading after ${Date.now() - started} ms; the scenario ends without it`);
          }
          // Waited for once: the next step works on what is there (a link whose server never answers held it again).
          if (!settled) nav.abandon();
        }
      }
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
      // Kept when the attempt was ended from outside: the caller reports what it was doing (endedPartial).
      if (!env.signal.aborted) delete result.running;
    }
    o.onProgress({ progress: ((i + 1) / total) * 100, currentStep: current, stepsDone: i + 1, stepsTotal: total });
    if (stop) break;
  }
  return result;
}

/** Steps that read the page once, without waiting for what they read. */
const READS_ONCE = new Set<Step["type"]>(["extract", "screenshot"]);

/** Steps that only read the page: run again on the next document when a navigation took theirs mid-way. */
const READS = new Set<Step["type"]>(["extract", "screenshot", "assert", "waitForElement"]);

/**
 * Waits, until `until`, for the page's document loads to end and the committed document to be parsed
 * (DOMContentLoaded). True when it is; false when time ran out or the page could not say.
 */
export async function settlePage(page: Page, signal: AbortSignal, nav: NavigationWatch, until: number): Promise<boolean> {
  for (;;) {
    if (nav.inFlight && !(await nav.settled(until - Date.now(), signal))) return false;
    if (signal.aborted || page.isClosed()) return false;
    const commits = nav.commits;
    try {
      // Bounded on its own: a document whose parsing waits on a script that never comes, or one that called
      // document.open() and never close(), is read as it is after READY_WAIT_MS.
      const ready = await withinMs(evaluateQuietly(page,
        `document.readyState !== "loading" || new Promise((r) => document.addEventListener("DOMContentLoaded", () => r(true), { once: true }))`), Math.min(READY_WAIT_MS, until - Date.now()));
      if (ready === undefined) return false;
      if (!nav.inFlight && nav.commits === commits) return true;
    } catch (e) {
      if (!contextGone(e)) return false;
    }
    if (Date.now() >= until) return false;
  }
}

/** Steps that can make the page load another document (a link, a form, a handler of the page's). */
const MAY_NAVIGATE = new Set<Step["type"]>(["navigate", "click", "doubleClick", "hover", "change", "select", "keyDown", "keyUp", "press", "type", "waitForExpression"]);
const PAGE_TURN_MS = 500;
/** How long a committed document is given to be parsed before a step reads it as it is. */
const READY_WAIT_MS = 2000;

/**
 * Resolves once the page has run a task queued after everything the step queued, or after `ms` (a page too busy to
 * answer), or at once when it cannot answer (its document went: a navigation is under way).
 */
async function pageTurn(page: Page, ms: number): Promise<void> {
  if (ms <= 0 || page.isClosed()) return;
  let t: NodeJS.Timeout | undefined;
  await Promise.race([
    // Two: a task the step's own tasks queue (a refresh timer started on load) comes before the second.
    evaluateQuietly(page, "new Promise((r) => setTimeout(() => setTimeout(r, 0), 0))").catch(() => {}),
    new Promise<void>((r) => (t = setTimeout(r, ms))),
  ]);
  clearTimeout(t);
}

/**
 * Evaluates `expression` in a world of the worker's own in the page's main frame: the page's globals (a replaced
 * setTimeout, a readyState getter) are not its own, and without the user gesture Puppeteer's evaluate grants (it
 * let a page's timer open windows past the popup blocker). Rejects with the exception, or "Execution context was
 * destroyed" / "Cannot find context" when a navigation takes the document meanwhile.
 */
async function evaluateQuietly(page: Page, expression: string): Promise<unknown> {
  const session = puppeteerSession(page);
  // Chromium keeps one world per name and frame; this gives its context in the frame's current document.
  const { executionContextId } = await session.send("Page.createIsolatedWorld", { frameId: mainFrameId(page), worldName: "troupe-settle" });
  const r = await session.send("Runtime.evaluate", { expression, contextId: executionContextId, awaitPromise: true, returnByValue: true, userGesture: false });
  if (r.exceptionDetails) throw new Error(`the page threw: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
  return r.result.value;
}

/** A backstop for steps whose own timeout does not cover every wait. */
function withDeadline<T>(p: Promise<T>, ms: number, what: string, stop: AbortController): Promise<T> {
  let t: NodeJS.Timeout;
  const timer = new Promise<never>((_, rej) => {
    t = setTimeout(() => {
      const e = new StepError(`${what} step did not finish within ${ms} ms`, "timeout", true);
      stop.abort(e);
      rej(e);
    }, ms);
  });
  return Promise.race([p, timer]).finally(() => clearTimeout(t));
}
