import type { StepRef } from "@troupe/events";
import type { Page } from "puppeteer-core";
import { MAX_SHOT_BYTES, MAX_SHOT_PIXELS, pageTitle, withinMs } from "./steps.ts";

/**
 * How long the page gets to answer at a failure (its title, a screenshot of its viewport). A failure is reported
 * when the page may be stuck (the hard timeout exists because pages hang: a busy-looping script answers nothing),
 * so its job.failed waits at most this long for the page; a healthy page answers in tens of ms, a loaded machine
 * in a second or two (one round trip to Chromium took seconds at load 40).
 */
export const FAILURE_PAGE_MS = 3000;
/**
 * How long the failure screenshot's upload to the object store is waited for. A store that answers refuses at once
 * (full, missing); one that does not answer would otherwise hold the failure event for putArtifact's 5 s a publish.
 */
export const FAILURE_STORE_MS = 3000;

/**
 * What the page and the store each get at a failure under a job lease of `jobLeaseMs`: FAILURE_PAGE_MS, or a sixth
 * of the lease when that is shorter. No progress goes out meanwhile, and the master requeues an attempt after a lease
 * without any: the last came up to a third of the lease before the failure (lease-cadence.ts), so the two waits
 * together take at most another third (the test suite's masters run a 3 s lease: 500 ms each).
 */
export function failureWaitMs(jobLeaseMs: number): number {
  return Math.max(100, Math.min(FAILURE_PAGE_MS, FAILURE_STORE_MS, Math.floor(jobLeaseMs / 6)));
}

/**
 * The failure screenshot's object name: `<jobId>/<attempt>/<step>-failed.png`, the step numbered from 1 (`000`:
 * outside any step). A step takes one screenshot at most, so only that step's own, labelled `failed`, can have the
 * name (stored before the step failed); then it is `<step>-failed-2.png`: a second object of one name replaces the first.
 */
export function failureShotName(jobId: string, attempt: number, step: StepRef | undefined, taken: readonly string[] = []): string {
  const name = `${jobId}/${attempt}/${String(step ? step.index + 1 : 0).padStart(3, "0")}-failed`;
  return taken.includes(`${name}.png`) ? `${name}-2.png` : `${name}.png`;
}

export interface FailureCapture {
  /** Take a screenshot (TROUPE_FAILURE_SCREENSHOTS); false: only the URL and title are logged. */
  shot: boolean;
  /** Its object name (failureShotName). */
  name: string;
  /** Screenshots the failure event names already: past `maxShots` none is taken (it would be cut from the event). */
  shotsSoFar: number;
  maxShots: number;
  save(name: string, bytes: Uint8Array): Promise<void>;
  log(level: "info" | "warn", message: string): void;
  /** Called once the page is read (or given up), before the upload: the context may close then. */
  pageDone?(): void;
  pageMs?: number;
  storeMs?: number;
}

/**
 * What the page was like at a failure: logs its URL and title, and takes a viewport screenshot into the object store.
 * Every wait is bounded (FAILURE_PAGE_MS, FAILURE_STORE_MS); whatever does not work is said in the job's logs and
 * never changes the failure reported. Resolves with the screenshot's name once stored, else undefined. Never rejects.
 */
export async function captureFailure(page: Page, o: FailureCapture): Promise<string | undefined> {
  const pageMs = o.pageMs ?? FAILURE_PAGE_MS;
  const until = Date.now() + pageMs;
  if (page.isClosed()) {
    o.log("warn", "at the failure the page was already closed: no URL, title or failure screenshot");
    o.pageDone?.();
    return undefined;
  }
  // page.url() is Puppeteer's own record of the main frame: it needs no answer from the page.
  const url = page.url();
  const title = withinMs(page.evaluate(pageTitle, null, 200).then((t) => ({ ok: true as const, t }), (e: Error) => ({ ok: false as const, why: e.message })), pageMs);
  const shot = o.shot ? withinMs(viewportShot(page).then((bytes) => ({ ok: true as const, bytes }), (e: Error) => ({ ok: false as const, why: e.message })), pageMs) : undefined;
  const t = await title;
  const titleText = t === undefined ? `title unread: the page did not answer within ${pageMs} ms`
    : !t.ok ? `title unread: ${t.why.slice(0, 300)}`
    : `title ${JSON.stringify(t.t?.start ?? "")}${(t.t?.length ?? 0) > 200 ? ` (first 200 of ${t.t?.length} characters)` : ""}`;
  o.log("info", `at the failure the page was at ${url.slice(0, 1000)} (${titleText})`);
  if (!shot) {
    o.pageDone?.();
    return undefined;
  }
  const s = await withinMs(shot, Math.max(0, until - Date.now()));
  o.pageDone?.();
  if (s === undefined) {
    o.log("warn", `failure screenshot given up: the page did not answer within ${pageMs} ms`);
    return undefined;
  }
  if (!s.ok) {
    o.log("warn", `failure screenshot not taken: ${s.why.slice(0, 500)}`);
    return undefined;
  }
  if (o.shotsSoFar >= o.maxShots) {
    o.log("warn", `failure screenshot not stored: the failure event already names ${o.shotsSoFar} screenshots, the most it can`);
    return undefined;
  }
  const storeMs = o.storeMs ?? FAILURE_STORE_MS;
  const stored = await withinMs(o.save(o.name, s.bytes).then(() => ({ ok: true as const }), (e: Error) => ({ ok: false as const, why: e.message })), storeMs);
  if (stored === undefined) {
    o.log("warn", `failure screenshot ${o.name} not stored: the object store did not answer within ${storeMs} ms`);
    return undefined;
  }
  if (!stored.ok) {
    // The store's refusal (full, missing, away) is a note here: the failure reported is the attempt's own.
    o.log("warn", `failure screenshot not stored: ${stored.why.slice(0, 1000)}`);
    return undefined;
  }
  return o.name;
}

/**
 * The viewport as it is, within MAX_SHOT_PIXELS and MAX_SHOT_BYTES. Sized by the viewport the worker set (not by
 * the page's own JavaScript, which a stuck page would not answer and a hostile one could lie through): a viewport
 * of more device pixels than a screenshot may take is not taken.
 */
async function viewportShot(page: Page): Promise<Uint8Array> {
  const vp = page.viewport();
  const dpr = vp?.deviceScaleFactor ?? 1;
  if (vp && vp.width * vp.height * dpr * dpr > MAX_SHOT_PIXELS) {
    throw new Error(`the viewport is ${vp.width}×${vp.height} px at ${dpr} device pixels per px, more than the ${MAX_SHOT_PIXELS.toLocaleString("en")} device pixels a screenshot may take`);
  }
  const bytes = await page.screenshot({ type: "png" });
  if (bytes.length > MAX_SHOT_BYTES) throw new Error(`${(bytes.length / 1024 / 1024).toFixed(1)} MB of PNG, more than the ${MAX_SHOT_BYTES / 1024 / 1024} MB a screenshot may take`);
  return bytes;
}
