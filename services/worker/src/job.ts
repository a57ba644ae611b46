import { jobSteps, parseProxyServer, type Command, type EventData, type LogEntry, type Step, type StepRef } from "@troupe/events";
import { bypassMatcher, type Logger } from "@troupe/events/node";
import type { Page } from "puppeteer-core";
import { BrowserGone, type BrowserPool, type ContextLease } from "./browser-pool.ts";
import { applyFingerprint } from "./fingerprint.ts";
import { proxyChallengesOnly } from "./proxy-auth.ts";
import { EgressNotes } from "./egress-notes.ts";
import { NavigationWatch } from "./navigation-watch.ts";
import { withoutUserGesture } from "./no-gesture.ts";
import { answerWindowDialogs, mainFrameId, puppeteerSession } from "./page-targets.ts";
import { contextGone, pageTitle } from "./steps.ts";
import { endedPartial, executeScenario, ref, ScenarioFailure, settlePage, type ScenarioProgress, type ScenarioResult } from "./scenario-run.ts";
import { fitCompleted, fitFailed, jsonBytes, MAX_SCREENSHOTS, type FailedData } from "./event-fit.ts";
import { EGRESS_HEADER, startEgressProxy, type EgressProxy, type EgressProxyOptions } from "./egress-proxy.ts";
import { createTargetGuard, type TargetGuard, type TargetPolicy } from "./ssrf.ts";
import { upstreamFromSpec } from "./upstream-proxy.ts";
import { PROGRESS_EVERY_MS } from "./lease-cadence.ts";
import { captureFailure, failureShotName } from "./failure-shot.ts";

/** Why a job was stopped from outside its steps: hard timeout, cancel, drain, browser or page crash. */
export class JobAbort extends Error {
  constructor(readonly code: "timeout" | "cancelled" | "drained" | "browser-crashed" | "page-crashed", message: string, readonly retryable: boolean) {
    super(message);
  }
}

/**
 * The job's own proxy cannot be used: on an address the SSRF guard refuses
 * (`ssrf`: every request would open a connection there), a host that does not
 * resolve (`proxy`, retryable), or a bypass list the worker cannot read
 * (`invalid`).
 */
export class ProxyRefused extends Error {
  constructor(message: string, readonly code: "ssrf" | "proxy" | "invalid" = "ssrf", readonly retryable = false) {
    super(message);
  }
}

/** The run went fine but its result cannot travel in an event; retrying would not change that. */
export class ResultTooLarge extends Error {
  readonly code = "result-too-large";
  readonly retryable = false;
}

/** How a job reports; the worker turns these into events. */
export interface JobReporter {
  started(): Promise<void>;
  /** Fire and forget: progress never holds up a step. The promise (never rejected) settles once it is stored or given up. */
  progress(p: ScenarioProgress & { elapsedMs: number }): void | Promise<void>;
  completed(d: Pick<EventData<"job.completed">, "result" | "metrics">): Promise<void>;
  failed(d: Omit<EventData<"job.failed">, "jobId" | "workerId" | "attempt">): Promise<void>;
}

export interface JobDeps {
  pool: BrowserPool;
  /** The proxy's password, opened from the spec's sealed form by the worker. */
  proxyPassword?: string;
  policy: TargetPolicy;
  allowScriptSteps: boolean;
  defaultStepTimeoutMs: number;
  /** Stores a screenshot under an object name. */
  saveArtifact(name: string, bytes: Uint8Array): Promise<void>;
  /** At a failure the page can still show, take a screenshot of it (TROUPE_FAILURE_SCREENSHOTS; default true). */
  failureScreenshots?: boolean;
  /** What the page, then the store, each get at a failure (failureWaitMs of the job lease; default FAILURE_PAGE_MS / FAILURE_STORE_MS). */
  failureWaitMs?: number;
  report: JobReporter;
  log: Logger;
  progressEveryMs?: number;
  /**
   * Awaited before each step with the attempt's signal (link-fence.ts: a worker cut off from NATS holds there), and
   * `renew`, which sends the attempt's latest progress again and settles once it is stored (or given up).
   */
  beforeStep?(index: number, signal: AbortSignal, renew: () => Promise<void>): Promise<void>;
  /** Called once the attempt has ended, before its final event is published: frees the slot first, so whoever reacts to the event finds it free. */
  onEnd?(outcome: JobOutcome): void;
}

export interface JobOutcome {
  ok: boolean;
  durationMs: number;
  responseTimeMs?: number;
  error?: { code?: string; message: string; retryable: boolean };
}

export interface RunningJob {
  jobId: string;
  attempt: number;
  abort(reason: JobAbort): void;
  done: Promise<JobOutcome>;
}

const MB = 1024 * 1024;
const MAX_LOGS = 500;
/** Events are limited to 256 KiB (MAX_EVENT_BYTES): extracted data gets at most this many bytes of JSON of it (the rest: event-fit.ts). */
const DATA_BUDGET_BYTES = 160_000;

/**
 * A url-only job's result title, at most 10,000 characters read in the page (steps.ts, pageTitle: page.title() copied
 * a 200 MB title whole). A page that sends itself on once loaded (a meta refresh, a redirect in its load handler)
 * is read once the next document is parsed: reading the one on its way out failed the job as a "worker error".
 */
async function titleOf(page: Page, nav: NavigationWatch, signal: AbortSignal, until: number): Promise<string> {
  for (let tries = 0; ; tries++) {
    try {
      return (await page.evaluate(pageTitle, null, 10_000))?.start ?? "";
    } catch (e) {
      if (!contextGone(e) || tries >= 5 || page.isClosed()) throw e;
      await settlePage(page, signal, nav, Math.min(until, Date.now() + 5000));
    }
  }
}

/** A job's context lease, with the credentials its egress proxy wants from the job's pages. */
type JobContext = ContextLease & { proxyCredentials?: EgressProxy["credentials"]; egressMarker?: string };

/**
 * The job's browser context. With the SSRF guard on, or a proxy of the job's
 * own, it goes out through a per-job egress proxy (`egress-proxy.ts`) that
 * connects only to the addresses the guard checked, and that takes the job's
 * proxy from there (its credentials added by the worker, its bypass list
 * applied there, pinned like everything else). `<-loopback>` undoes
 * Chromium's built-in bypass, which would let loopback targets go direct.
 */
async function acquireContext(pool: BrowserPool, proxy: Command<"worker.assign">["spec"]["proxy"], password: string | undefined, guard: TargetGuard,
  report: Pick<EgressProxyOptions, "onRefused" | "onFailed">): Promise<JobContext> {
  if (!guard.active && !proxy) return pool.acquire();
  let via: EgressProxyOptions["via"];
  if (proxy) {
    let bypass: ReturnType<typeof bypassMatcher>;
    try {
      bypass = bypassMatcher(proxy.bypass ?? []);
    } catch (e) {
      throw new ProxyRefused(`the job's proxy: ${(e as Error).message}`, "invalid");
    }
    // The assignment was checked (parseProxyServer); read the host as that check did. A proxy on a private address
    // would be a way into the worker's network.
    const address = parseProxyServer(proxy.server);
    if (!address.ok) throw new ProxyRefused(`the job's proxy: ${address.error}`, "invalid");
    const v = await guard.host(address.value.host);
    if (!v.ok) {
      throw !v.unresolved
        ? new ProxyRefused(`the job's proxy ${proxy.server} is refused: ${v.reason}`)
        : new ProxyRefused(`the job's proxy ${proxy.server}: ${v.reason}`, "proxy", true);
    }
    via = {
      upstream: upstreamFromSpec(proxy.server, v.addresses, proxy.username, password),
      bypass,
      check: guard.active ? (h) => guard.host(h) : async () => ({ ok: true }),
    };
  }
  const egress = await startEgressProxy({ resolve: (h) => guard.host(h), ...report, ...(via ? { via } : {}) });
  let lease: ContextLease;
  try {
    lease = await pool.acquire({ proxyServer: egress.url, proxyBypassList: ["<-loopback>"] });
  } catch (e) {
    await egress.close();
    throw e;
  }
  let releasing: Promise<void> | undefined;
  return { ...lease, proxyCredentials: egress.credentials, egressMarker: egress.marker, release: () => (releasing ??= lease.release().finally(() => egress.close())) };
}

/**
 * Runs one attempt in a fresh browser context. The hard timeout, a cancel, a
 * drain past its grace or a browser crash abort it: the context is closed
 * (the page really stops) and the attempt fails with the reason.
 */
export function runJob(cmd: Command<"worker.assign">, deps: JobDeps): RunningJob {
  const { spec } = cmd;
  const controller = new AbortController();
  const startedAt = Date.now();
  const logs: LogEntry[] = [];
  const addLog = (level: LogEntry["level"], message: string, source: LogEntry["source"]) => {
    if (logs.length < MAX_LOGS) logs.push({ time: new Date().toISOString(), level, message: message.slice(0, 4000), source });
  };
  let lease: JobContext | undefined;
  let partial: ScenarioResult | undefined;
  /** The scenario's result as it goes: what an attempt ended from outside had done (endedPartial). */
  const live: ScenarioResult = { data: {}, dataExtracted: 0, screenshots: [], steps: [] };
  let responseTime: number | undefined;
  let memoryUsed = 0;
  let ended = false;
  /** Stops answering the dialogs of the job's other windows at the job's end (else at its page's close). */
  let offWindowDialogs: (() => void) | undefined;
  /** The job's page, once made: what a failure looked like is read from it (failure-shot.ts). */
  let jobPage: Page | undefined;
  /** The page's state at the failure, read once: its URL and title logged, its screenshot's name when stored. */
  let atFailure: Promise<string | undefined> | undefined;
  /** The last progress sent: repeated while a failure is read, so the lease holds through it (below). */
  let lastProgress: ScenarioProgress | undefined;
  const sendProgress = (p: ScenarioProgress) => {
    lastProgress = p;
    deps.report.progress({ ...p, elapsedMs: Date.now() - startedAt });
  };
  /** The latest progress again, now: settles once stored (a held attempt renews its lease before it asks the master). */
  const renewNow = async (): Promise<void> => {
    if (!ended && !controller.signal.aborted && lastProgress) await deps.report.progress({ ...lastProgress, elapsedMs: Date.now() - startedAt });
  };
  /**
   * While the page and the store are read at a failure, progress goes on at its cadence: the attempt is still this
   * worker's, and the master requeues one whose lease passes without any (the reads take up to twice failureWaitMs,
   * after a tick up to a third of the lease old; a review). The context is let go once the page is read, before the
   * upload: a timed-out page's scripts stop then.
   */
  const renewing = <T>(work: Promise<T>): Promise<T> => {
    const renew = () => {
      if (!ended && lastProgress) deps.report.progress({ ...lastProgress, elapsedMs: Date.now() - startedAt });
    };
    // At once too: the last tick may be most of a cadence old.
    renew();
    const tick = setInterval(renew, deps.progressEveryMs ?? PROGRESS_EVERY_MS);
    return work.finally(() => clearInterval(tick));
  };
  const captureAtFailure = (step: StepRef | undefined): Promise<string | undefined> => (atFailure ??= jobPage
    ? renewing(captureFailure(jobPage, {
      shot: deps.failureScreenshots ?? true,
      name: failureShotName(cmd.jobId, cmd.attempt, step, (partial ?? live).screenshots),
      shotsSoFar: (partial ?? live).screenshots.length,
      maxShots: MAX_SCREENSHOTS,
      save: deps.saveArtifact,
      log: (level, message) => addLog(level, message, "worker"),
      pageDone: () => void lease?.release(),
      ...(deps.failureWaitMs !== undefined ? { pageMs: deps.failureWaitMs, storeMs: deps.failureWaitMs } : {}),
    })).catch((e: Error) => {
      addLog("warn", `failure screenshot not taken: ${e.message}`, "worker");
      return undefined;
    })
    : Promise.resolve(undefined));

  const abort = (reason: JobAbort) => {
    if (controller.signal.aborted) {
      // A cancel, drain or crash while the hard timeout reads the page: the context closes now, not after the read.
      if (reason.code !== "timeout") void lease?.release();
      return;
    }
    addLog("error", reason.message, "worker");
    controller.abort(reason);
    // Closing the context stops the page's loads and scripts at once. At the hard timeout the page may still show
    // what held it: it is read first, within failureWaitMs (a cancel, a drain or a crash closes at once: nobody
    // waits for a cancelled job's picture, a drain is a stop under way, a crashed page has none).
    if (reason.code === "timeout" && jobPage && !jobPage.isClosed() && !ended) {
      const l = lease;
      void captureAtFailure(live.running?.step).finally(() => l?.release());
    } else void lease?.release();
  };
  const aborted = new Promise<never>((_, rej) => controller.signal.addEventListener("abort", () => rej(controller.signal.reason), { once: true }));
  aborted.catch(() => {});
  const timer = setTimeout(() => abort(new JobAbort("timeout", `hard timeout: the attempt ran for ${spec.timeoutMs} ms`, true)), spec.timeoutMs);

  // The lease is renewed from the start, not from the first step: a browser context slow to come (a stalled
  // browser, a proxy that takes its time) let the lease lapse and the job ran twice (an attack run). The
  // scenario's own ticks take over at its first step.
  const scenarioSteps = jobSteps(spec);
  const keepalive = scenarioSteps.length > 0 ? setInterval(() => {
    if (!controller.signal.aborted && !ended) sendProgress({ progress: 0, currentStep: ref(scenarioSteps[0]!, 0), stepsDone: 0, stepsTotal: scenarioSteps.length });
  }, deps.progressEveryMs ?? PROGRESS_EVERY_MS) : undefined;

  const work = async () => {
    const guard = createTargetGuard(deps.policy);
    const egress = new EgressNotes();
    const navigations = new NavigationWatch();
    lease = await acquireContext(deps.pool, spec.proxy, deps.proxyPassword, guard, {
      onRefused: (target, why) => {
        egress.note("refused", target, why);
        addLog("warn", `blocked connection to ${target}: ${why}`, "worker");
      },
      onFailed: (target, why) => {
        egress.note("failed", target, why);
        addLog("warn", `connection to ${target} failed: ${why}`, "worker");
      },
    });
    if (controller.signal.aborted) {
      // Aborted while the context was being created: nobody else will close it.
      await lease.release();
      throw controller.signal.reason;
    }
    void lease.crashed.then(() => abort(new JobAbort("browser-crashed", "the browser crashed during the job", true)));
    const page = await lease.context.newPage();
    jobPage = page;
    // Before anything is evaluated in it: the worker's reads give the page no user gesture (its popups stay blocked).
    const gesture = withoutUserGesture(page);
    // The egress proxy answers only the job's browser (407 to anything else on the machine).
    if (lease.proxyCredentials) {
      proxyChallengesOnly(page);
      await page.authenticate(lease.proxyCredentials);
    }
    page.on("console", (m) => {
      const t = m.type();
      if (t === "error" || t === "warn") addLog(t === "warn" ? "warn" : "error", m.text(), "console");
    });
    page.on("pageerror", (e) => addLog("error", e instanceof Error ? e.message : String(e), "page"));
    egress.marker = lease.egressMarker;
    // Which document failed (after redirects): its target's note at the egress proxy says why. The page's document only: a frame's, or one a new navigation aborted (net::ERR_ABORTED), explained a refused
    // main document by a target nobody refused (a review).
    page.on("requestfailed", (req) => {
      if (!req.isNavigationRequest() || req.frame() !== page.mainFrame()) return;
      const failure = req.failure()?.errorText ?? "failed";
      if (failure !== "net::ERR_ABORTED") egress.navigationFailed(req.url());
      navigations.ended(req, failure);
    });
    page.on("request", (req) => {
      if (req.isNavigationRequest() && req.frame() === page.mainFrame()) navigations.started(req, req.url());
    });
    // The page asking for a document (a link, a form): before its request, which a form sends a task later.
    puppeteerSession(page).on("Page.frameRequestedNavigation", (e) => {
      if (e.frameId === mainFrameId(page)) navigations.requested(e.url);
    });
    page.on("requestfinished", (req) => navigations.ended(req));
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame()) navigations.committed(f.url());
    });
    page.on("response", (r) => {
      if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) egress.documentArrived(r.url(), egress.ownAnswer(r.headers()[EGRESS_HEADER], r.url(), r.fromServiceWorker()) !== undefined);
    });
    // A dialog blocks the page until answered, and nothing in a scenario answers it: an alert() hung the job until its timeout.
    // beforeunload is accepted (the navigation the scenario asked for goes on); alert, confirm and prompt are dismissed.
    page.on("dialog", (d) => {
      addLog("warn", `${d.type()} dialog ${d.type() === "beforeunload" ? "accepted" : "dismissed"}: ${d.message()}`, "page");
      void (d.type() === "beforeunload" ? d.accept() : d.dismiss()).catch((e: Error) => deps.log.debug({ err: e.message }, "dialog already gone"));
    });
    // And those of every other window of the job's context: a same-origin popup shares the job page's renderer, and its
    // alert() held the job's page until the attempt's timeout (the next step "did not finish"; a review).
    offWindowDialogs = answerWindowDialogs(page, lease.context.id, (d) => {
      addLog("warn", `${d.type} dialog ${d.accepted ? "accepted" : "dismissed"} in another window: ${d.message}`, "page");
    }, (e) => deps.log.debug({ err: e.message }, "dialog already gone"));
    // Ended meanwhile (end() ran before this was set; its page may still be open): the listener is on the browser's
    // connection, which outlives the job.
    if (controller.signal.aborted) offWindowDialogs();
    // The page's renderer died (out of memory, killed): fail now, not at the step's timeout.
    page.on("error", (e) => abort(new JobAbort("page-crashed", `the page crashed: ${e.message}`, true)));
    const fingerprint = await applyFingerprint(page, lease.context, spec.fingerprint, (what, e) => deps.log.debug({ jobId: cmd.jobId, err: e.message }, `${what} refused by a frame or worker of the page`));
    clearInterval(keepalive);
    const result = await executeScenario(scenarioSteps, {
      page,
      signal: controller.signal,
      guard,
      allowScriptSteps: deps.allowScriptSteps,
      egress,
      navigations,
      gesture,
      ...(fingerprint ? { setViewport: fingerprint.setViewport } : {}),
      log: (level, message) => addLog(level, message, "worker"),
      saveScreenshot: async (bytes, index, label) => {
        // Numbered as the step is everywhere else ("step 9 (screenshot)"), from 1: it was the 0-based index (008 for step 9).
        const name = `${cmd.jobId}/${cmd.attempt}/${String(index + 1).padStart(3, "0")}-${label}.png`;
        await deps.saveArtifact(name, bytes);
        return name;
      },
    }, {
      result: live,
      defaultTimeoutMs: spec.scenario?.timeout ?? deps.defaultStepTimeoutMs,
      // Steps end before the attempt's hard timeout, so a failing assert says so (not retryable) instead of
      // "hard timeout" (retryable: a job whose timeoutMs equalled the step default ran three times; a walkthrough).
      deadlineMs: startedAt + spec.timeoutMs,
      progressEveryMs: deps.progressEveryMs,
      ...(deps.beforeStep ? { beforeStep: (i: number) => deps.beforeStep!(i, controller.signal, renewNow) } : {}),
      // Nothing after the attempt has ended (a 5 s tick can fire between an abort and the step noticing it).
      onProgress: (p) => { if (!controller.signal.aborted && !ended) sendProgress(p); },
      log: (level, message) => addLog(level, message, "worker"),
    }).catch((e) => {
      if (e instanceof ScenarioFailure) partial = e.partial;
      throw e;
    });
    responseTime = result.responseTime;
    if (!spec.scenario && !page.isClosed()) result.data.title = await titleOf(page, navigations, controller.signal, startedAt + spec.timeoutMs - 1000);
    memoryUsed = await page.metrics().then((m) => Math.round(((m.JSHeapUsedSize ?? 0) / MB) * 10) / 10).catch(() => 0);
    const finalUrl = page.isClosed() ? undefined : page.url();
    return { result, finalUrl };
  };

  const end = (o: JobOutcome) => {
    offWindowDialogs?.();
    if (!ended) deps.onEnd?.(o);
    ended = true;
  };
  const done = (async (): Promise<JobOutcome> => {
    try {
      const startedReport = deps.report.started();
      startedReport.catch(() => {}); // awaited below; this only keeps an early rejection from counting as unhandled
      const running = work();
      running.catch(() => {}); // after an abort it settles later, with an error nobody needs
      const { result, finalUrl } = await Promise.race([running, aborted]);
      await startedReport;
      const durationMs = Date.now() - startedAt;
      clearTimeout(timer);
      clearInterval(keepalive);
      await lease?.release();
      const dataBytes = jsonBytes(result.data);
      if (dataBytes > DATA_BUDGET_BYTES) {
        partial = result;
        throw new ResultTooLarge(`the extracted data is ${dataBytes} bytes of JSON; at most ${DATA_BUDGET_BYTES} fit in a job.completed event — extract less (fewer fields, text instead of html)`);
      }
      const completed = fitCompleted({
        result: { success: true, data: result.data, dataExtracted: result.dataExtracted, screenshots: result.screenshots, logs, steps: result.steps, ...(finalUrl ? { finalUrl: finalUrl.slice(0, 4096) } : {}) },
        metrics: { totalDuration: durationMs, responseTime: result.responseTime ?? 0, memoryUsed },
      });
      if (!completed) {
        partial = result;
        throw new ResultTooLarge(result.screenshots.length > MAX_SCREENSHOTS
          ? `the job took ${result.screenshots.length} screenshots; a job.completed event names at most ${MAX_SCREENSHOTS}`
          : `the result (extracted data, screenshot names and step timings) does not fit in a job.completed event even without logs and step errors — extract less`);
      }
      const outcome: JobOutcome = { ok: true, durationMs, responseTimeMs: result.responseTime };
      end(outcome);
      await deps.report.completed(completed);
      return outcome;
    } catch (e) {
      clearTimeout(timer);
      clearInterval(keepalive);
      const known = e instanceof JobAbort || e instanceof ScenarioFailure || e instanceof ResultTooLarge || e instanceof ProxyRefused || e instanceof BrowserGone;
      // Ended from outside mid-scenario (hard timeout, cancel, crash): the steps so far and the one it was in.
      if (e instanceof JobAbort && !partial) partial = endedPartial(live, e.message);
      const inStep = e instanceof ScenarioFailure ? e.step : e instanceof JobAbort ? partial?.running?.step : undefined;
      const err = known
        ? { message: e.message, code: e.code, retryable: e.retryable, ...(inStep ? { step: inStep } : {}) }
        : { message: `worker error: ${(e as Error)?.message ?? String(e)}`, code: "worker", retryable: true };
      if (!known) deps.log.error({ err: (e as Error)?.stack ?? e, jobId: cmd.jobId }, "job failed outside its steps");
      // What the page looked like at the failure (its URL and title logged, a screenshot stored), before its context
      // closes; bounded, and never the failure reported (failure-shot.ts). A failed step or an error of the worker's
      // reads it now; the hard timeout began reading it when it fired (abort); a cancel, drain or crash, a job that
      // failed for want of a page or for its result's size, or a scenario refused before its first step, do not.
      const failureShot = (e instanceof ScenarioFailure && e.code !== "invalid") || !known ? await captureAtFailure(inStep)
        : e instanceof JobAbort && e.code === "timeout" ? await atFailure
        : undefined;
      // Close the context before reporting, but never let a wedged browser hold up the report.
      responseTime ??= partial?.responseTime;
      if (lease) await Promise.race([lease.release(), new Promise((r) => setTimeout(r, 1500))]);
      const durationMs = Date.now() - startedAt;
      const steps = partial?.steps ?? [];
      const screenshots = [...(partial?.screenshots ?? []), ...(failureShot ? [failureShot] : [])];
      const outcome: JobOutcome = { ok: false, durationMs, responseTimeMs: responseTime, error: err };
      end(outcome);
      const metrics = { totalDuration: durationMs, ...(responseTime !== undefined ? { responseTime } : {}), memoryUsed };
      const failed: FailedData = fitFailed({
        error: { ...err, message: err.message.slice(0, 8000) },
        logs,
        ...(steps.length ? { steps } : {}),
        ...(screenshots.length ? { screenshots } : {}),
        metrics,
      });
      try {
        await deps.report.failed(failed);
      } catch (re) {
        // The event was refused as invalid (not a NATS outage, which the reporter rides out): the outcome still has to reach
        // the log, or the master only sees a lapsed lease and runs the whole scenario again. The bare error always passes.
        if (!/refusing to publish/.test((re as Error).message)) throw re;
        deps.log.error({ err: (re as Error).message, jobId: cmd.jobId }, "the failure report was refused; sending it without logs and steps");
        await deps.report.failed({ error: { ...err, message: `${err.message.slice(0, 1000)} (the full report was refused: ${(re as Error).message.slice(0, 500)})` }, metrics });
      }
      return outcome;
    }
  })();

  return { jobId: cmd.jobId, attempt: cmd.attempt, abort, done };
}
