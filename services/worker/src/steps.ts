import type { Step, StepOf } from "@troupe/events";
import type { EgressNotes } from "./egress-notes.ts";
import type { GestureGate } from "./no-gesture.ts";
import type { NavigationWatch } from "./navigation-watch.ts";
import { EGRESS_HEADER } from "./egress-proxy.ts";
import { Locator, LocatorEvent, type ElementHandle, type Frame, type KeyInput, type MouseButton, type Page, type Viewport } from "puppeteer-core";
import { frameId, puppeteerSession } from "./page-targets.ts";
import { selectorAlternatives } from "./selectors.ts";
import type { TargetGuard } from "./ssrf.ts";

/** A step failure with what the job event needs: an error code and whether a retry may help. */
export class StepError extends Error {
  constructor(message: string, readonly code: string, readonly retryable: boolean) {
    super(message);
  }
}

/** What one step needs from the job around it. */
export interface StepEnv {
  page: Page;
  signal: AbortSignal;
  guard: TargetGuard;
  allowScriptSteps: boolean;
  /** Stores a screenshot, returns its object name. */
  /** `index`: the step's 0-based index; `label`: the step's, else "element" or "page". */
  saveScreenshot(bytes: Uint8Array, index: number, label: string): Promise<string>;
  /** What the job's egress proxy refused or could not reach: why a navigation failed (none with the guard off). */
  egress?: EgressNotes;
  /** The Recorder's setViewport when the job's fingerprint has to keep its screen (fingerprint.ts); else page.setViewport. */
  setViewport?(vp: Viewport): Promise<void>;
  /** The page's own document loads under way (job.ts): the scenario's end waits for one its last step began. */
  navigations?: NavigationWatch;
  /** A note for the job's logs. */
  log?(level: "info" | "warn", message: string): void;
  /** Makes a step's action the user's (no-gesture.ts): `select` and `change`, which Puppeteer performs by evaluating. */
  gesture?: GestureGate;
}

/**
 * A screenshot takes at most this many pixels: a 100,000 px tall page made a 368 MB PNG, which crossed the pipe
 * every job on that browser shares (a job beside it timed out), took the worker to 2.4 GB and filled the store.
 */
export const MAX_SHOT_PIXELS = 16_000_000;
/** … and at most this many bytes of PNG (pixels of noise do not compress: 16M of them are up to 64 MB). */
export const MAX_SHOT_BYTES = 32 * 1024 * 1024;
const MAX_SHOT_WIDTH = 4096;

/**
 * The part of a `w`×`h` CSS-pixel area a screenshot takes at `dpr` device pixels per CSS pixel: all of it, or its
 * top-left part within `max` device pixels. Pure.
 */
export function shotClip(w: number, h: number, dpr = 1, max = MAX_SHOT_PIXELS): { width: number; height: number; cut: boolean } {
  const width = Math.max(1, Math.ceil(w));
  const height = Math.max(1, Math.ceil(h));
  const cssMax = max / Math.max(dpr, 0.1) ** 2;
  if (width * height <= cssMax) return { width, height, cut: false };
  const cw = Math.max(1, Math.min(width, Math.floor(MAX_SHOT_WIDTH / Math.max(dpr, 1)), Math.floor(Math.sqrt(cssMax))));
  return { width: cw, height: Math.max(1, Math.min(height, Math.floor(cssMax / cw))), cut: true };
}

/** A size the page reported, as a sane whole number (a hostile page can return anything). */
const dim = (n: number) => (Number.isFinite(n) && n > 0 ? Math.min(Math.ceil(n), 10_000_000) : 1);

/**
 * The screenshot step's PNG, within MAX_SHOT_PIXELS (the top-left part of a bigger area, logged) and MAX_SHOT_BYTES.
 * Every screenshot is taken with an explicit clip of the size checked here, and the device pixel ratio comes from
 * the viewport the worker set, not from the page: the page's own JavaScript answers for its sizes, and an attack
 * run showed a page lying about scrollHeight or devicePixelRatio got a 48M- or 144M-pixel PNG past the check when
 * the screenshot itself was taken at the true size. A lie now only moves or shrinks the area taken.
 */
async function boundedShot(page: Page, frame: Frame, step: StepOf<"screenshot">, env: StepEnv, timeout: number, signal: AbortSignal): Promise<Uint8Array> {
  const dpr = page.viewport()?.deviceScaleFactor ?? 1;
  // Unary plus: whatever the page's getters return, only numbers cross back.
  const v = await page.evaluate(() => {
    const d = document.documentElement;
    const b = document.body as HTMLElement | null;
    return { x: +window.scrollX, y: +window.scrollY, vw: +window.innerWidth, vh: +window.innerHeight,
      pw: Math.max(+d.scrollWidth, +(b?.scrollWidth ?? 0)), ph: Math.max(+d.scrollHeight, +(b?.scrollHeight ?? 0)) };
  });
  let bytes: Uint8Array;
  let what: string;
  let c: ReturnType<typeof shotClip>;
  if (step.selector) {
    // Shown, not only there: a hidden element failed the step at once as a final "not visible" (a review), where a
    // click or type waits for it within the step's time.
    const el = await frame.waitForSelector(step.selector, { timeout, signal, visible: true });
    if (!el) throw new StepError(`screenshot: no element matches ${step.selector}`, "step-failed", true);
    try {
      const box = await el.boundingBox();
      const [w, h] = [dim(box?.width ?? 1), dim(box?.height ?? 1)];
      c = shotClip(w, h, dpr);
      what = `element ${step.selector} is ${w}×${h} px`;
      bytes = await el.screenshot({ type: "png", clip: { x: 0, y: 0, width: c.width, height: c.height } });
    } finally {
      await el.dispose();
    }
  } else if (step.fullPage) {
    const [w, h] = [dim(v.pw), dim(v.ph)];
    c = shotClip(w, h, dpr);
    what = `page is ${w}×${h} px`;
    bytes = await page.screenshot({ type: "png", clip: { x: 0, y: 0, width: c.width, height: c.height }, captureBeyondViewport: true });
  } else {
    const [w, h] = [dim(v.vw), dim(v.vh)];
    c = shotClip(w, h, dpr);
    what = `viewport is ${w}×${h} px`;
    const [x, y] = [Number.isFinite(v.x) ? Math.max(0, v.x) : 0, Number.isFinite(v.y) ? Math.max(0, v.y) : 0];
    bytes = await page.screenshot({ type: "png", clip: { x, y, width: c.width, height: c.height } });
  }
  if (c.cut) {
    env.log?.("warn", `screenshot: the ${what}${dpr !== 1 ? ` at ${dpr} device pixels per px` : ""}; only its top-left ${c.width}×${c.height} px were taken (a screenshot takes at most ${MAX_SHOT_PIXELS.toLocaleString("en")} device pixels)`);
  }
  return checkedSize(bytes);
}

/**
 * The page's title, read in the page: null when `want` is given and the title contains it, else the title's first
 * `max` characters and its length (the title assert's message, a url-only job's result). The characters are taken by
 * index, not with slice: a page can replace String.prototype.slice (an attack run got a whole 100,000-character title
 * back through it), not a primitive string's own characters or length. `!!`: only a boolean comes of whatever
 * `includes` was made to return. Self-contained: it runs in the page.
 */
export function pageTitle(want: string | null, max: number): { start: string; length: number } | null {
  const t = document.title as unknown;
  if (typeof t !== "string") return { start: "", length: 0 };
  if (want !== null && !!t.includes(want)) return null;
  let start = "";
  for (let i = 0; i < t.length && i < max; i++) start += t[i];
  return { start, length: t.length };
}

function checkedSize(bytes: Uint8Array): Uint8Array {
  if (bytes.length > MAX_SHOT_BYTES) {
    throw new StepError(`screenshot: ${(bytes.length / 1024 / 1024).toFixed(1)} MB of PNG, more than the ${MAX_SHOT_BYTES / 1024 / 1024} MB a screenshot may take`, "step-failed", false);
  }
  return bytes;
}

export interface StepOutcome {
  data?: Record<string, unknown>;
  extracted?: number;
  screenshot?: string;
  /** ms from request to response headers of a main navigation. */
  responseTime?: number;
  /** The scenario ends here (Recorder `close`). */
  stop?: boolean;
}

const BUTTONS: Record<string, MouseButton> = { primary: "left", auxiliary: "middle", secondary: "right", back: "back", forward: "forward" };

/**
 * The step's frame: the main frame, or the child frame its `frame` path names, waited for within the step's time
 * (payment and ad frames are added after the load; the step failed at once). A path still missing then is a
 * timeout, as a missing element is.
 */
async function frameOf(page: Page, step: Step, timeout: number, signal: AbortSignal): Promise<Frame> {
  const deadline = Date.now() + timeout;
  for (;;) {
    let frame = page.mainFrame();
    let missing: number | undefined;
    for (const i of step.frame ?? []) {
      const child = frame.childFrames()[i];
      if (!child) {
        missing = i;
        break;
      }
      frame = child;
    }
    if (missing === undefined) return frame;
    if (Date.now() >= deadline) throw new StepError(`frame path ${JSON.stringify(step.frame)}: no child frame ${missing} within ${timeout} ms`, "timeout", true);
    await sleep(100, signal);
  }
}

/** Selectors the page parsed (locate). */
const PARSED_SELECTORS = new Set<string>();

/**
 * The first of the alternatives that matches, as a Puppeteer locator. Each is tried once first: a locator retries a
 * selector the page cannot parse until the step's timeout, a retryable timeout on every attempt, where `extract`
 * failed it at once (a step attack).
 */
async function locate(frame: Frame, selectors: StepOf<"click">["selectors"], timeout: number, each: (l: Locator<Element>) => Locator<Element> = (l) => l) {
  const started = Date.now();
  const alts = selectorAlternatives(selectors);
  for (const sel of alts) {
    // Whether a selector parses does not depend on the page: asked once per worker (a round trip a step, ~4 % of a
    // 5-step job otherwise).
    if (PARSED_SELECTORS.has(sel)) continue;
    try {
      await (await frame.$(sel))?.dispose();
      if (PARSED_SELECTORS.size >= 10_000) PARSED_SELECTORS.clear();
      PARSED_SELECTORS.add(sel);
    } catch (e) {
      const m = (e as Error).message ?? "";
      if (/not a valid selector|SyntaxError|Unknown selector type|query handler/i.test(m)) throw new StepError(`selector ${JSON.stringify(sel)} is not valid: ${m.slice(0, 300)}`, "step-failed", false);
      // Anything else (the document going) is the locator's to wait out.
    }
  }
  // The parse check is part of the step's time: on a loaded machine it took over 3 s (Puppeteer injects its query
  // helpers into a new document first), and a locator given the whole timeout after it ran the step past the
  // scenario's backstop (1 s past the timeout), which ended it as "did not finish" instead of with what it found.
  return Locator.race(alts.map((s) => each(frame.locator(s)))).setTimeout(Math.max(MIN_LOCATOR_MS, timeout - (Date.now() - started)));
}
/** The least time a locator is given (0 would be none: Puppeteer's "no timeout"). */
const MIN_LOCATOR_MS = 100;

/**
 * Why a click or hover at the element's point would not reach it, or null when it would: the point Puppeteer uses
 * (the centre of the element's first box within the viewport, or `offset` from that box's corner) hits another
 * element — a cookie banner, a loading overlay, a modal — or nothing of it (`pointer-events: none` on it and all
 * around it). The click landed on the cover and the step reported ok (a known limit until 2026-11-30). A hit is the
 * element's own when it is the element or inside it, part of the button or link it is in, one of its labels, or a
 * label's control; the tree walked is the one a click goes through (slots and shadow hosts). A hit on an element it
 * is inside (not <html> or <body>) reaches the handlers the element's own would bubble to, so it passes too — after
 * a scroll, when `mayScroll`, in case the element was clipped by its list (a list item was hit-tested where its list
 * did not show it). A point some other element covers is also asked again after a scroll (a sticky header). The
 * scroll is Puppeteer's own: the element to the middle of its scroll containers and the viewport. Only the
 * element's own document is hit-tested: something of the parent page over its frame is not seen. Runs in the page.
 */
export function missesPointerBecause(el: Element, offset: { x: number; y: number } | null, mayScroll: boolean): string | null {
  // No named functions in here: tsx (esbuild's keepNames) wraps them in __name(), which the page does not have, and
  // every click failed as a timeout under `troupe worker` (the tests' transform does not do that; the bench did).
  const doc = el.ownerDocument;
  let verdict: string | null = null;
  for (let pass = 0; pass < (mayScroll ? 2 : 1); pass++) {
    if (pass === 1) el.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
    const vw = doc.documentElement.clientWidth;
    const vh = doc.documentElement.clientHeight;
    let b: { x: number; y: number; width: number; height: number } | undefined;
    for (const r of Array.from(el.getClientRects())) {
      const x = Math.max(r.x, 0);
      const y = Math.max(r.y, 0);
      const w = Math.min(r.x + r.width, vw) - x;
      const h = Math.min(r.y + r.height, vh) - y;
      if (w >= 1 && h >= 1) {
        b = { x, y, width: w, height: h };
        break;
      }
    }
    if (!b) {
      verdict = "out of view";
      continue;
    }
    const x = offset ? b.x + offset.x : b.x + b.width / 2;
    const y = offset ? b.y + offset.y : b.y + b.height / 2;
    const root = el.getRootNode() as Document | ShadowRoot;
    const hit = (typeof root.elementFromPoint === "function" ? root : doc).elementFromPoint(x, y);
    if (!hit) {
      // Off the window: below the fold in a page without a doctype (its root's clientHeight is the whole page's),
      // scrolled to and asked again; past the page's edge after that (an offset beyond it): as recorded.
      const win = doc.defaultView;
      if (win && (x < 0 || y < 0 || x >= win.innerWidth || y >= win.innerHeight)) {
        verdict = "out of view";
        continue;
      }
      return null;
    }
    // The element's own: the hit is in it (up through slots, parents and shadow hosts, as a click goes), in the
    // button or link it is part of, in one of its labels, or its control when it is a label.
    let mine = false;
    for (let n: Node | null = hit; n && !mine; n = (n as Element).assignedSlot ?? n.parentNode ?? (n as ShadowRoot).host ?? null) mine = n === el;
    const labels = (el as HTMLInputElement).labels;
    const control = (el as HTMLLabelElement).control;
    if (mine || el.closest("button, a[href], [role=button], [role=link]")?.contains(hit)
      || (labels && Array.from(labels).some((l) => l.contains(hit)))
      || (control && (control === hit || control.contains(hit)))) return null;
    // An element it is inside, other than <html> and <body>: the handlers its own click would bubble to.
    let around = false;
    if (hit !== doc.body && hit !== doc.documentElement) {
      for (let n: Node | null = (el as Element).assignedSlot ?? el.parentNode; n && n !== doc && !around; n = (n as Element).assignedSlot ?? n.parentNode ?? (n as ShadowRoot).host ?? null) around = n === hit;
    }
    if (around) {
      verdict = "around";
      continue;
    }
    if (hit === doc.body || hit === doc.documentElement) {
      verdict = `gets no pointer events at (${Math.round(x)}, ${Math.round(y)}) (pointer-events: none, or its list does not show it there)`;
      continue;
    }
    // Attributes, not properties: a form's `id` or `tagName` is its input of that name.
    const id = String(hit.getAttribute("id") ?? "").slice(0, 60);
    const cls = String(hit.getAttribute("class") ?? "").trim().split(/\s+/).filter(Boolean).slice(0, 3).join(".").slice(0, 80);
    verdict = `is covered by <${String(hit.localName)}${id ? `#${id}` : ""}${cls ? `.${cls}` : ""}> at (${Math.round(x)}, ${Math.round(y)}): the click would land on it`;
  }
  // "around" passes; "out of view" after the scroll (not laid out, outside the page) is Puppeteer's to fail, as before.
  return verdict === "around" || verdict === "out of view" ? null : verdict;
}

/**
 * A filter for each selector alternative's locator (locate's `each`): an element is found only once a click or hover
 * on it would reach it (missesPointerBecause), so a covered first alternative does not hide a reachable second. A
 * point still covered after the scroll gets the mouse first (the click's own move would take it there): a tooltip
 * the last hover opened goes when the mouse leaves, and the point is asked again; then once more after the mouse
 * went to the window's bottom-right corner and back (a menu that opens on :hover). The locator retries until its time
 * is up, so a loading overlay is waited out; `verdict()` then says what covers it, for the step's error (not once the
 * element went). A check that fails for another reason (a page that broke what it
 * uses) lets the click go ahead, as before the check existed, and says so in the job's logs. Puppeteer's
 * filterHandle is an internal API (pinned with puppeteer-core 24; the worker's tests fail if it goes): its public
 * `filter` waits in the page on one element for the whole timeout and cannot say why.
 */
function reachableBy(offset: { x: number; y: number } | undefined, log?: StepEnv["log"]): { each(l: Locator<Element>): Locator<Element>; verdict(until: number): Promise<string | null> } {
  let why: string | null = null;
  /** The element the last check was about. */
  let last: ElementHandle<Element> | undefined;
  let answered = false;
  let firstAnswered!: () => void;
  const firstAnswer = new Promise<void>((r) => (firstAnswered = r));
  const answer = (w: string | null): string | null => {
    why = w;
    answered = true;
    firstAnswered();
    return w;
  };
  let broken = false;
  const reaches = async (h: ElementHandle<Element>): Promise<boolean> => {
    last = h;
    let w: string | null;
    try {
      w = answer(await h.evaluate(missesPointerBecause, offset ?? null, true));
      if (w !== null) {
        const at = await h.clickablePoint(offset).catch(() => undefined);
        if (at) {
          const page = h.frame.page();
          await page.mouse.move(at.x, at.y);
          w = answer(await h.evaluate(missesPointerBecause, offset ?? null, false));
          if (w !== null) {
            // A menu that opens on :hover stays open while the mouse moves within it: away and back, as a user's
            // hand goes round it (a scenario's click after the click that opened it hit the menu). To the window's
            // bottom-right corner: the top-left is often the menu's own bar, and leaving the window through the top
            // is what "exit intent" pop-ups wait for.
            const vp = page.viewport() ?? (await page.evaluate(() => ({ width: +window.innerWidth, height: +window.innerHeight })));
            await page.mouse.move(Math.max(0, vp.width - 1), Math.max(0, vp.height - 1));
            await page.mouse.move(at.x, at.y);
            w = answer(await h.evaluate(missesPointerBecause, offset ?? null, false));
          }
        }
      }
    } catch (e) {
      if (contextGone(e)) w = answer("went with its document"); // a navigation took it: found again in the next one
      else {
        w = answer(null);
        if (!broken) log?.("warn", `could not check that the click reaches its element (${String((e as Error)?.message ?? e).slice(0, 200)}); clicked without the check`);
        broken = true;
      }
    }
    return w === null;
  };
  return {
    each(l) {
      const f = l as unknown as { filterHandle?: (p: (h: ElementHandle<Element>) => Promise<boolean>) => Locator<Element> };
      if (typeof f.filterHandle !== "function") throw new Error("puppeteer-core no longer has Locator.filterHandle: the worker cannot check that a click reaches its element");
      return f.filterHandle(reaches);
    },
    // Asked once the step's time is up. A first check still under way is given until `until` to be answered (a loaded
    // machine took seconds for it). Then the element is looked at once more: one that went (removed, or a navigation)
    // leaves the plain timeout, which says more truly what happened. Until 2026-11-30 an answer over 2 s old was
    // taken for an element that went: on a loaded machine the locator's next round took longer than that, and the
    // step failed without naming the banner that covered its element. Past `until` (a loaded machine's timers fire
    // late) nothing more is asked, and a look not answered by then leaves the last answer: a round trip begun then
    // would be overtaken by the scenario's backstop ("did not finish"), whose timer is due later and so fires later.
    async verdict(until) {
      if (!last) return null;
      if (!answered && until > Date.now()) await withinMs(firstAnswer, until - Date.now());
      if (!answered) return null;
      if (until <= Date.now()) return why;
      try {
        const now = await withinMs(last.evaluate(missesPointerBecause, offset ?? null, false), until - Date.now());
        return now === undefined ? why : now;
      } catch (e) {
        return contextGone(e) ? null : why;
      }
    },
  };
}

/**
 * The step's error when `e` ended a click or hover on a target still covered once its time was up (reachableBy's
 * verdict, given until `until`: the step's time + FIRST_CHECK_GRACE_MS, under the scenario's backstop).
 */
async function coveredError(e: unknown, reach: { verdict(until: number): Promise<string | null> }, what: string, until: number): Promise<unknown> {
  if ((e as Error)?.name !== "TimeoutError") return e;
  const why = await reach.verdict(until);
  return why !== null ? new StepError(`${what} ${why.slice(0, 400)}`, "timeout", true) : e;
}

/** Waits `ms` unless aborted first. Removes its abort listener when the time is up: pollUntil sleeps every 100 ms on the job's one signal, and kept listeners piled up (MaxListenersExceededWarning, and a leak for the job's lifetime). */
export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((res, rej) => {
    if (signal.aborted) return rej(signal.reason);
    const onAbort = () => { clearTimeout(t); rej(signal.reason); };
    const t = setTimeout(() => { signal.removeEventListener("abort", onAbort); res(); }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

/** A read that failed because the document it read went (a navigation) or is not there yet. */
export const contextGone = (e: unknown): boolean =>
  /Execution context was destroyed|Cannot find context with specified id|Execution context is not available in detached frame|Inspected target navigated or closed|does not belong to the document|No node with given id|Could not find node with given id/i.test((e as Error)?.message ?? "");
const GONE = Symbol("document gone");

/** How long past its timeout a step waits for its first check to be answered (under the scenario's 1 s backstop). */
export const FIRST_CHECK_GRACE_MS = 900;

/**
 * Probes every 100 ms until the probe has no complaint or `timeout` is up, then fails with the last complaint.
 * A check the page is slow to answer is not waited for past the timeout once one has been answered (on a loaded
 * machine one took over a second, and the scenario's backstop ended the step as "did not finish", losing what was
 * found); the first is given FIRST_CHECK_GRACE_MS more, so a slow machine still gets an answer (an assert then
 * fails as an assertion, final, not as a retryable timeout), and a page that answers none says so.
 */
async function pollUntil(timeout: number, signal: AbortSignal, probe: () => Promise<string | null>, code = "assertion", retryable = false): Promise<void> {
  const deadline = Date.now() + timeout;
  let last: string | undefined;
  for (;;) {
    const until = last === undefined ? deadline + FIRST_CHECK_GRACE_MS : deadline;
    // A check of a document on its way out (a link, a meta refresh, a reload) is asked again of the next one.
    const complaint: string | null | typeof GONE | undefined = await withinMs(probe().catch((e: unknown): typeof GONE => {
      if (contextGone(e)) return GONE;
      throw e;
    }), Math.max(0, until - Date.now()));
    if (complaint === null) return;
    if (complaint === GONE) {
      if (Date.now() >= deadline) throw new StepError(last ?? "the page kept going to other documents until the step's time was up", last === undefined ? "timeout" : code, last === undefined || retryable);
      await sleep(100, signal);
      continue;
    }
    if (complaint !== undefined) last = complaint;
    else if (last === undefined) throw new StepError(`the page answered no check within ${timeout + FIRST_CHECK_GRACE_MS} ms`, code === "assertion" ? "timeout" : code, true);
    if (Date.now() >= deadline) throw new StepError(last!, code, retryable);
    await sleep(100, signal);
  }
}

/** The promise's value, or undefined when `ms` pass first (the promise runs on; its later failure is dropped, as nothing waits for it). */
export function withinMs<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((res) => { t = setTimeout(res, ms, undefined); });
  p.catch(() => {});
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}

const navigationAsserted = (step: Step) => (step.assertedEvents ?? []).some((e) => e.type === "navigation");

/** Runs an action; when the Recorder asserted a navigation, waits for it too, in the step's frame (as Puppeteer Replay does). */
async function withNavigation(frame: Frame, step: Step, timeout: number, action: () => Promise<unknown>): Promise<void> {
  if (!navigationAsserted(step)) {
    await action();
    return;
  }
  await Promise.all([frame.waitForNavigation({ timeout }), action()]);
}

/**
 * How many of the elements have the attributes and properties given, and with `onlyVisible` are visible as
 * Puppeteer's locators judge it (not `visibility: hidden`/`collapse`, a box of some size). `from` is a selector, whose
 * matches in the frame's document are taken, or the list itself; null when the selector is not plain CSS (a P-selector,
 * `aria/`…: Puppeteer's own query takes those, and passes the list). The page functions of this file (readAll,
 * firstUsable) take `from` this way: a plain CSS selector costs one evaluation and no handle per match, where `$$` and
 * `$$eval` make one each (an `extract` with `all` of a 2000×10 table's cells took over 16 s and 382 MB more).
 * Runs in the page: no named functions inside (docs/development.md).
 */
export function countInPage(from: string | Element[], attrs: Record<string, string>, props: Record<string, unknown>, onlyVisible: boolean): number | null {
  let els: ArrayLike<Element>;
  try {
    els = typeof from === "string" ? document.querySelectorAll(from) : from;
  } catch {
    return null;
  }
  const wantProps = Object.entries(props).map(([k, v]) => [k, JSON.stringify(v)] as const);
  let n = 0;
  for (let i = 0; i < els.length; i++) {
    const el = els[i]!;
    if (!Object.entries(attrs).every(([k, v]) => el.getAttribute(k) === v)) continue;
    if (!wantProps.every(([k, v]) => JSON.stringify((el as unknown as Record<string, unknown>)[k]) === v)) continue;
    if (onlyVisible) {
      const st = getComputedStyle(el);
      const box = el.getBoundingClientRect();
      if (st.visibility === "hidden" || st.visibility === "collapse" || box.width === 0 || box.height === 0) continue;
    }
    n++;
  }
  return n;
}

/** countInPage for any selector: Puppeteer's query (a handle per match) only for what plain CSS cannot say. */
async function countMatches(frame: Frame, sel: string, attributes: Record<string, string>, properties: Record<string, unknown>, onlyVisible: boolean): Promise<number> {
  const n = await frame.evaluate(countInPage, sel, attributes, properties, onlyVisible);
  if (typeof n === "number" && Number.isFinite(n)) return n;
  return (await frame.$$eval(sel, countInPage, attributes, properties, onlyVisible)) ?? 0;
}

/** How long a navigation that ended in net::ERR_ABORTED waits for Chromium to say it was a download (it says so within ms). */
const DOWNLOAD_NOTICE_MS = 1000;

/** The download a navigation of `frame` starts, if any (`Page.downloadWillBegin` on the page's session): its file name. */
function downloadOf(page: Page, frame: Frame): { seen(withinMs: number): Promise<string | undefined>; stop(): void } {
  const session = puppeteerSession(page);
  let file: string | undefined;
  let notify: (() => void) | undefined;
  const on = (e: { frameId: string; suggestedFilename?: string }) => {
    if (e.frameId !== frameId(frame)) return;
    file = e.suggestedFilename ?? "";
    notify?.();
  };
  session.on("Page.downloadWillBegin", on);
  const stop = () => session.off("Page.downloadWillBegin", on);
  return {
    stop,
    async seen(withinMs) {
      let timer: NodeJS.Timeout | undefined;
      if (file === undefined) await new Promise<void>((r) => ((notify = r), (timer = setTimeout(r, withinMs))));
      clearTimeout(timer);
      stop();
      return file;
    },
  };
}

/**
 * The most characters of extracted text the page hands over per field: past
 * it the job's data cannot fit its event anyway (job.ts refuses over 160 kB of
 * JSON), so a 50 MB text node is cut in the page instead of being copied into
 * the worker first (it took 13 s and all that memory).
 */
export const EXTRACT_CAP_CHARS = 160_001;

/**
 * The values of the elements (`from`: a selector or the list, as countInPage takes it) for an `extract` with `all`, in
 * order, until they are past `cap` characters together (already too much to send: the rest would only be copied to
 * be refused); null when `from` is not plain CSS. Runs in the page.
 */
export function readAll(from: string | Element[], fr: string, at: string, cap: number): (string | null)[] | null {
  let els: ArrayLike<Element>;
  try {
    els = typeof from === "string" ? document.querySelectorAll(from) : from;
  } catch {
    return null;
  }
  const out: (string | null)[] = [];
  let total = 0;
  for (let i = 0; i < els.length; i++) {
    const el = els[i]!;
    const v = fr === "html" ? el.innerHTML : fr === "attribute" ? el.getAttribute(at) : (el.textContent ?? "").replace(/\s+/g, " ").trim();
    total += v?.length ?? 4;
    out.push(v !== null && v.length > cap ? v.slice(0, cap) : v);
    if (total > cap) break;
  }
  return out;
}

async function extract(frame: Frame, step: StepOf<"extract">): Promise<StepOutcome> {
  const data: Record<string, unknown> = {};
  let extracted = 0;
  for (const [name, f] of Object.entries(step.fields)) {
    const from = f.from ?? "text";
    const attr = f.attribute ?? "";
    // The reader is repeated inside each callback: functions passed to the page cannot close over Node code.
    if (f.all) {
      let values = await frame.evaluate(readAll, f.selector, from, attr, EXTRACT_CAP_CHARS);
      if (!Array.isArray(values)) values = (await frame.$$eval(f.selector, readAll, from, attr, EXTRACT_CAP_CHARS)) ?? [];
      data[name] = values;
      // Non-empty values, as a single field counts them (empty and null items were counted: a review).
      extracted += values.filter((v) => v !== null && v !== "").length;
    } else {
      const el = await frame.$(f.selector);
      const value = el
        ? await el.evaluate((e, fr, at, cap) => {
          const v = fr === "html" ? e.innerHTML : fr === "attribute" ? e.getAttribute(at) : (e.textContent ?? "").replace(/\s+/g, " ").trim();
          return v !== null && v.length > cap ? v.slice(0, cap) : v;
        }, from, attr, EXTRACT_CAP_CHARS)
        : null;
      await el?.dispose();
      data[name] = value;
      if (value !== null && value !== "") extracted++;
    }
  }
  return { data, extracted };
}

/**
 * The first of the elements (`from`, as countInPage takes it) that can take the step's input, or why none can (the
 * first one's reason, and how many there were): `type` needs a visible, enabled, writable text field (an input of a
 * text type, a textarea, contenteditable); `press` a visible, enabled element; `select` a visible, enabled select.
 * Null when `from` is not plain CSS. Runs in the page.
 */
export function firstUsable(from: string | Element[], need: "type" | "press" | "select"): Element | { count: number; why: string | null } | null {
  let els: ArrayLike<Element>;
  try {
    els = typeof from === "string" ? document.querySelectorAll(from) : from;
  } catch {
    return null;
  }
  let first: string | null = null;
  for (let i = 0; i < els.length; i++) {
    const el = els[i]!;
    let why: string | null = null;
    const st = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (!el.isConnected) why = "is no longer in the page";
    else if (st.display === "none" || st.visibility === "hidden" || st.visibility === "collapse" || (box.width === 0 && box.height === 0)) why = "is hidden";
    else if (el.matches(":disabled")) why = "is disabled";
    else if (need === "press") why = null;
    else if (need === "select") why = el instanceof HTMLSelectElement ? null : `is a ${el.tagName.toLowerCase()}, not a select`;
    else if (el instanceof HTMLElement && el.isContentEditable) why = null;
    else if (el instanceof HTMLTextAreaElement) why = el.readOnly ? "is read-only" : null;
    else if (el instanceof HTMLInputElement) {
      why = ["checkbox", "radio", "button", "submit", "reset", "file", "image", "range", "color", "hidden"].includes(el.type) ? `is an input of type ${el.type}, not a text field` : el.readOnly ? "is read-only" : null;
    } else why = `is a ${el.tagName.toLowerCase()}, not a text field (point the selector at the input itself)`;
    if (why === null) return el;
    first ??= why;
  }
  return { count: els.length, why: first };
}

/** Whether the element (or, for a contenteditable, something in it) has the focus in its document or shadow root. Runs in the page. */
function hasFocus(el: Element): boolean {
  const root = el.getRootNode() as Document | ShadowRoot;
  const active = root.activeElement;
  return !!active && (active === el || el.contains(active));
}

/**
 * The first element matching `selector` that can take the step's input (firstUsable), waited for within the
 * step's time: `type` typed into a hidden first match, a disabled or read-only field, or a wrapper div, and
 * reported ok with nothing typed (a step attack). What is still wrong at the end is the step's error: not a text
 * field is final, hidden or disabled a retryable timeout (a page may enable it later).
 */
async function usableElement(frame: Frame, selector: string, need: "type" | "press" | "select", timeout: number, signal: AbortSignal): Promise<ElementHandle> {
  let found: ElementHandle | undefined;
  let final = false;
  await pollUntil(timeout, signal, async () => {
    let h = await frame.evaluateHandle(firstUsable, selector, need);
    if (!h.asElement() && (await h.jsonValue()) === null) {
      // Not plain CSS: Puppeteer's query, a handle per match.
      await h.dispose();
      const els = await frame.$$(selector);
      const list = await frame.evaluateHandle((...e: Element[]) => e, ...els).finally(() => { for (const el of els) void el.dispose(); });
      try {
        h = await list.evaluateHandle(firstUsable, need);
      } finally {
        void list.dispose();
      }
    }
    const el = h.asElement();
    if (el) {
      found = el as ElementHandle;
      return null;
    }
    const none = (await h.jsonValue()) as { count: number; why: string | null } | null;
    await h.dispose();
    const why = none?.why ?? undefined;
    final = why !== undefined && /not a (text field|select)/.test(why);
    return `${need}: ${!none?.count ? `no element matches ${selector}` : `${selector} ${why}`}`;
  }, "timeout", true).catch((e: unknown) => {
    if (e instanceof StepError && final) throw new StepError(e.message, "step-failed", false);
    throw e;
  });
  return found!;
}

/**
 * Types `text` into the element as Puppeteer's ElementHandle.type does (focus, then one key per character), but
 * stops between characters once `signal` aborts: a step past its time typed on into the next step's field.
 * `beforeLast` runs right before the last key: what that key does (an Enter that sends the form, an OTP box that
 * moves the focus on) is the page's next state, not a fault of the typing. No delay follows the last key.
 */
async function typeInto(el: ElementHandle, text: string, delay: number, signal: AbortSignal, beforeLast: () => Promise<void>): Promise<void> {
  await el.focus();
  const keyboard = el.frame.page().keyboard;
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    if (signal.aborted) throw signal.reason;
    if (i === chars.length - 1) await beforeLast();
    await keyboard.type(chars[i]!);
    if (delay > 0 && i < chars.length - 1) await sleep(delay, signal);
  }
}

/** The action, as the user's when the job gives its page no gesture otherwise. */
async function asUser<T>(env: StepEnv, action: () => Promise<T>): Promise<T> {
  const end = env.gesture?.begin();
  try {
    return await action();
  } finally {
    end?.();
  }
}

/** Runs one step against the page. Throws StepError (or a Puppeteer error) on failure. */
export async function runStep(step: Step, index: number, env: StepEnv, timeout: number): Promise<StepOutcome> {
  const { page, signal } = env;
  if (step.frame?.length) {
    // A frame still to come takes its wait from the step's time (an assert on it ran past the backstop: "did not finish").
    const t0 = Date.now();
    await frameOf(page, step, timeout, signal);
    timeout = Math.max(100, timeout - (Date.now() - t0));
  }
  page.setDefaultTimeout(timeout);
  page.setDefaultNavigationTimeout(timeout);
  switch (step.type) {
    case "setViewport":
      await (env.setViewport ?? ((vp: Viewport) => page.setViewport(vp)))({ width: step.width, height: step.height, deviceScaleFactor: step.deviceScaleFactor, isMobile: step.isMobile, hasTouch: step.hasTouch, isLandscape: step.isLandscape });
      return {};
    case "navigate": {
      const verdict = await env.guard.check(step.url);
      if (!verdict.ok) {
        // A name with no address is a failed navigation (a DNS hiccup passes), not a policy refusal.
        throw "unresolved" in verdict && verdict.unresolved
          ? new StepError(`navigation to ${step.url} failed: ${verdict.reason}`, "navigation", true)
          : new StepError(`target refused: ${verdict.reason}`, "ssrf", false);
      }
      const frame = await frameOf(page, step, timeout, signal);
      const started = Date.now();
      let response;
      const mark = env.egress?.seq ?? 0;
      const download = downloadOf(page, frame);
      try {
        response = await frame.goto(step.url, { timeout, waitUntil: "load" });
      } catch (e) {
        // A document the site sends as a download (an attachment, a type Chromium does not show) ends the navigation
        // with a bare net::ERR_ABORTED, which was retried as a failed navigation on every attempt (a review). Chromium
        // announces the download just after the navigation's end: waited for a moment, only then.
        const file = /net::ERR_ABORTED/.test((e as Error).message) ? await download.seen(DOWNLOAD_NOTICE_MS) : undefined;
        if (file !== undefined) throw new StepError(`navigation to ${step.url} got a download${file ? ` (${file})` : ""}, not a page: a job loads pages, and Chromium does not keep downloads`, "navigation", false);
        // The egress proxy refused the document's target (a redirect to a private address) or could not reach it or
        // the job's proxy: its reason, not Chromium's bare net::ERR_…. Only a note about that target counts.
        const why = /net::ERR_/.test((e as Error).message) ? env.egress?.explain(mark, step.url) : undefined;
        if (why?.kind === "refused") throw new StepError(`target refused: ${why.why}`, "ssrf", false);
        if (why?.kind === "failed") throw new StepError(`navigation to ${step.url} failed: ${why.target}: ${why.why}`, "navigation", true);
        throw e;
      } finally {
        download.stop();
      }
      // A plain-http document the egress proxy answered itself (its marker in EGRESS_HEADER): refused or not reached.
      const own = response ? env.egress?.ownAnswer(response.headers()[EGRESS_HEADER], response.url(), response.fromServiceWorker()) : undefined;
      if (response && own) {
        const why = env.egress?.explain(mark, response.url());
        const text = why ? `${why.target}: ${why.why}` : (await response.text().catch(() => "")).trim().slice(0, 500);
        if (own === "refused") throw new StepError(`target refused: ${why?.why ?? text}`, "ssrf", false);
        throw new StepError(`navigation to ${step.url} failed: ${text}`, "navigation", true);
      }
      // The page is what the site answered, error pages too (as in a browser and Puppeteer Replay): said in the logs.
      const status = response?.status() ?? 0;
      if (status >= 400) env.log?.("warn", `navigate: ${response!.url().slice(0, 500)} answered HTTP ${status}${response!.statusText() ? ` ${response!.statusText().slice(0, 100)}` : ""}`);
      const headersAt = response?.timing()?.receiveHeadersEnd;
      return { responseTime: headersAt !== undefined && headersAt >= 0 ? Math.round(headersAt) : Date.now() - started };
    }
    case "click":
    case "doubleClick": {
      const until = Date.now() + timeout + FIRST_CHECK_GRACE_MS;
      const frame = await frameOf(page, step, timeout, signal);
      const offset = step.offsetX !== undefined && step.offsetY !== undefined ? { x: step.offsetX, y: step.offsetY } : undefined;
      const reach = reachableBy(offset, env.log);
      const target = await locate(frame, step.selectors, timeout, reach.each);
      await withNavigation(frame, step, timeout, () => target.click({
        signal,
        ...(offset ? { offset } : {}),
        ...(step.button ? { button: BUTTONS[step.button] } : {}),
        ...(step.duration ? { delay: step.duration } : {}),
        ...(step.type === "doubleClick" ? { count: 2 } : {}),
      })).catch(async (e: unknown) => { throw await coveredError(e, reach, `${step.type}: ${selectorAlternatives(step.selectors)[0]}`, until); });
      return {};
    }
    case "hover": {
      const until = Date.now() + timeout + FIRST_CHECK_GRACE_MS;
      const reach = reachableBy(undefined, env.log);
      await (await locate(await frameOf(page, step, timeout, signal), step.selectors, timeout, reach.each)).hover({ signal }).catch(async (e: unknown) => { throw await coveredError(e, reach, `hover: ${selectorAlternatives(step.selectors)[0]}`, until); });
      return {};
    }
    case "change": {
      const target = await locate(await frameOf(page, step, timeout, signal), step.selectors, timeout);
      // The user's act from the moment the locator acts (its Action event), not while it waits for the element.
      let end: (() => void) | undefined;
      const acting = () => { end ??= env.gesture?.begin(); };
      target.on(LocatorEvent.Action, acting);
      try {
        await target.fill(step.value, { signal });
      } finally {
        target.off(LocatorEvent.Action, acting);
        end?.();
      }
      return {};
    }
    case "keyDown":
      await withNavigation(page.mainFrame(), step, timeout, () => page.keyboard.down(step.key as KeyInput));
      return {};
    case "keyUp":
      await withNavigation(page.mainFrame(), step, timeout, () => page.keyboard.up(step.key as KeyInput));
      return {};
    case "scroll": {
      const frame = await frameOf(page, step, timeout, signal);
      const x = step.x ?? 0;
      const y = step.y ?? 0;
      if (step.selectors) {
        const el = await (await locate(frame, step.selectors, timeout)).waitHandle({ signal });
        await el.evaluate((e, sx, sy) => { e.scrollTop = sy; e.scrollLeft = sx; }, x, y);
        await el.dispose();
      } else {
        await frame.evaluate((sx, sy) => window.scroll(sx, sy), x, y);
      }
      return {};
    }
    case "waitForElement": {
      const frame = await frameOf(page, step, timeout, signal);
      const op = step.operator ?? ">=";
      const want = step.count ?? 1;
      // `visible: false` waits for the count to stop holding, as Puppeteer Replay's `result === visible` does (gone, or
      // fewer than counted); Troupe counts only visible matches then, so a hidden element is as good as gone. Until
      // 2026-12-01 it waited for the element to be there.
      const gone = step.visible === false;
      if (!gone && op === ">=" && want === 1 && !step.attributes && !step.properties) {
        await (await locate(frame, step.selectors, timeout)).setVisibility("visible").wait({ signal });
        return {};
      }
      const alts = selectorAlternatives(step.selectors);
      const attributes = step.attributes ?? {};
      const properties = (step.properties ?? {}) as Record<string, unknown>;
      const recorded = Object.keys(attributes).length || Object.keys(properties).length ? " with the recorded attributes/properties" : "";
      await pollUntil(timeout, signal, async () => {
        let best = 0;
        for (const sel of alts) best = Math.max(best, await countMatches(frame, sel, attributes, properties, gone));
        const holds = op === ">=" ? best >= want : op === "<=" ? best <= want : best === want;
        if (holds !== gone) return null;
        if (!gone) return `waitForElement: expected ${op} ${want} matching elements${recorded}, found ${best}`;
        return op === ">=" && want === 1
          ? `waitForElement: expected no visible matching element${recorded} (visible: false), found ${best}`
          : `waitForElement: expected the visible matching elements${recorded} to be no longer ${op} ${want} (visible: false), found ${best}`;
      }, "timeout", true);
      return {};
    }
    case "waitForExpression": {
      if (!env.allowScriptSteps) throw new StepError("page-JavaScript steps are disabled (TROUPE_ALLOW_SCRIPT_STEPS)", "forbidden", false);
      await (await frameOf(page, step, timeout, signal)).waitForFunction(step.expression, { timeout, signal });
      return {};
    }
    case "close":
      return { stop: true };
    case "extract":
      return extract(await frameOf(page, step, timeout, signal), step);
    case "screenshot": {
      const bytes = await boundedShot(page, await frameOf(page, step, timeout, signal), step, env, timeout, signal);
      // An element's shot without a label was named "page" too.
      return { screenshot: await env.saveScreenshot(bytes, index, step.label ?? (step.selector !== undefined ? "element" : "page")) };
    }
    case "wait":
      await sleep(step.ms, signal);
      return {};
    case "select": {
      const frame = await frameOf(page, step, timeout, signal);
      // On the element waited for: frame.select took the first match, a hidden select before the visible one, and the
      // step reported ok with the visible one unchanged (a review).
      const el = await usableElement(frame, step.selector, "select", timeout, signal) as ElementHandle<HTMLSelectElement>;
      let chosen: string[];
      try {
        chosen = await asUser(env, () => el.select(...step.values));
      } finally {
        await el.dispose();
      }
      if (chosen.length === 0) throw new StepError(`select: none of ${JSON.stringify(step.values)} is an option of ${step.selector}`, "step-failed", false);
      return {};
    }
    case "press": {
      if (step.selector) {
        const el = await usableElement(await frameOf(page, step, timeout, signal), step.selector, "press", timeout, signal);
        try {
          await el.press(step.key as KeyInput);
        } finally {
          await el.dispose();
        }
      } else {
        await page.keyboard.press(step.key as KeyInput);
      }
      return {};
    }
    case "type": {
      const el = await usableElement(await frameOf(page, step, timeout, signal), step.selector, "type", timeout, signal);
      try {
        // The keys went where the focus was: a page that replaced or blurred the field before the last key got the
        // rest elsewhere. Checked before the last key, not after it: an Enter that sent a POST form failed the step as
        // a retryable `browser` error (the check ran on the document going away) and each retry sent the form again,
        // and an OTP box that moves the focus on after its last digit failed every attempt (a review).
        await typeInto(el, step.text, step.delay ?? 0, signal, async () => {
          let has: boolean;
          try {
            has = await el.evaluate(hasFocus);
          } catch (e) {
            if (!(contextGone(e) || /same JavaScript world/.test((e as Error)?.message ?? ""))) throw e;
            // An Enter among the keys typed so far sent the page elsewhere (a form): the rest would go to the next
            // document, and a retry would send the form again: final. A page that left on its own (a timed redirect,
            // a meta refresh) is a navigation to retry, as it was before (a review: it was made final too).
            const sent = [...step.text].slice(0, -1);
            if (sent.some((c) => c === "\n" || c === "\r")) throw new StepError(`type: an Enter in the text sent the page to another document before its last key was typed`, "step-failed", false);
            throw new StepError(`type: the page went to another document while ${step.selector} was typed into (${(e as Error).message})`, "navigation", true);
          }
          if (!has) throw new StepError(`type: ${step.selector} lost the focus while typing (the page replaced or left it); what was typed went elsewhere`, "step-failed", true);
        });
      } finally {
        await el.dispose();
      }
      return {};
    }
    case "assert": {
      const frame = await frameOf(page, step, timeout, signal);
      await pollUntil(timeout, signal, async () => {
        if (step.url !== undefined && !page.url().includes(step.url)) return `assert: URL ${page.url()} does not contain ${JSON.stringify(step.url)}`;
        // Compared inside the page: a 100M-character title (or body) copied into the worker on every 100 ms poll took it
        // to 775 MB and stalled the jobs beside it. Only the start of a failing title comes back, for the message.
        if (step.title !== undefined) {
          const seen = await page.evaluate(pageTitle, step.title, 200);
          if (seen) return `assert: title ${JSON.stringify(seen.start)}${seen.length > 200 ? ` (the first 200 of ${seen.length} characters)` : ""} does not contain ${JSON.stringify(step.title)}`;
        }
        if (step.selector !== undefined || step.text !== undefined) {
          const el = await frame.$(step.selector ?? "body");
          if (!el) return `assert: no element matches ${step.selector}`;
          // `!!`: only a boolean crosses back, whatever the page made `includes` return.
          const has = step.text === undefined || await el.evaluate((e, want) => !!((e as HTMLElement).innerText ?? e.textContent ?? "").includes(want), step.text);
          await el.dispose();
          if (!has) return `assert: ${step.selector ?? "the page"} does not contain the text ${JSON.stringify(step.text)}`;
        }
        return null;
      });
      return {};
    }
  }
}
