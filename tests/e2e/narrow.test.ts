import { join } from "node:path";
import type { Dialog, HTTPRequest, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../harness/index.ts";
import { ARTIFACTS, callApi, startStack, tail, type Stack } from "./stack.ts";

/**
 * The dashboard on a phone (docs/ui.md, "Narrow screens"): each page at 390 × 844 in real Chromium against the real
 * stack, with a completed job (extracted data, a screenshot) and a failed one (Top errors, an error box) to show.
 * No page may scroll sideways as a whole, and what a page is about (the worker's name and status, a job's status,
 * the nav) must be on screen without scrolling anything sideways.
 */

const PHONE = { width: 390, height: 844, deviceScaleFactor: 1, isMobile: true, hasTouch: true };

let stack: Stack;
let page: Page;
let completed: string;
let failed: string;
/** Failed with an error text holding a 150-character word (a URL's query): on its page, the Jobs list and the worker's. */
let longError: string;
/** Waits for a label no worker has: a job that can still be cancelled. */
let waiting: string;

beforeAll(async () => {
  stack = await startStack({ workers: 1 });
  page = await stack.browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${(e as Error).message}`));
  await page.setViewport(PHONE);
  // A long URL and tags: the Jobs table's widest cells.
  const url = `${stack.site.url}/product/7?utm_source=a-rather-long-campaign-name&utm_medium=email&ref=narrow-screen-check`;
  const ok = await post("/api/jobs", {
    url, tags: ["e2e-narrow", "phone"],
    scenario: { title: "narrow product", steps: [
      { type: "navigate", url },
      { type: "extract", fields: { title: { selector: "h1.title" }, price: { selector: ".price" } } },
      { type: "screenshot", label: "product" },
    ] },
  });
  expect(ok.status, JSON.stringify(ok.body)).toBe(201);
  completed = ok.body.jobId as string;
  // An assertion: final, so the job stays failed; its error is in Top errors and on its page.
  const bad = await post("/api/jobs", { url, tags: ["e2e-narrow"], scenario: { steps: [{ type: "navigate", url }, { type: "assert", title: "not this page", timeout: 1000 }] } });
  expect(bad.status, JSON.stringify(bad.body)).toBe(201);
  failed = bad.body.jobId as string;
  // Its logs hold the URL, one line of about 200 characters; its error (URL … does not contain …) two long words.
  const longUrl = `${stack.site.url}/product/8?ref=${"a".repeat(150)}`;
  const long = await post("/api/jobs", { url: longUrl, tags: ["e2e-narrow-long"], scenario: { steps: [{ type: "navigate", url: longUrl }, { type: "assert", url: `not-this-page-${"z".repeat(100)}`, timeout: 1000 }] } });
  expect(long.status, JSON.stringify(long.body)).toBe(201);
  longError = long.body.jobId as string;
  const wait = await post("/api/jobs", { url, tags: ["e2e-narrow-waiting"], workerLabels: ["nobody-has-this"] });
  expect(wait.status, JSON.stringify(wait.body)).toBe(201);
  waiting = wait.body.jobId as string;
  for (const [id, status] of [[completed, "completed"], [failed, "failed"], [longError, "failed"], [waiting, "queued"]] as const) {
    await waitFor(`${id} ${status} in the read models`, async () => (await api(`/api/jobs/${id}`)).body.job?.status === status, 90_000).catch((e: Error) => {
      throw new Error(`${e.message}\nworker:\n${tail(stack, "worker-01")}\nmaster:\n${tail(stack, "master")}`);
    });
  }
}, 300_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const api = (path: string, init?: RequestInit) => callApi(stack, path, init);
const post = (path: string, body: unknown) => api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

/** Opens `path` on the phone and waits for the live connection and for `ready` (the page's key content). */
async function open(path: string, ready: string): Promise<void> {
  await page.goto(`${stack.uiUrl}${path}`, { waitUntil: "networkidle0" });
  await page.waitForSelector("[data-testid=connection][data-status=live]", { timeout: 10_000 });
  await page.waitForSelector(ready, { visible: true, timeout: 10_000 });
}

/** The document's width against the viewport's, and what reaches past the screen (to say why when it fails). */
async function widths(): Promise<{ scrollWidth: number; innerWidth: number; wide: string[] }> {
  return page.evaluate((screen) => {
    const wide: string[] = [];
    for (const e of Array.from(document.querySelectorAll("body *"))) {
      const r = e.getBoundingClientRect();
      if (r.right > screen + 0.5 && r.width > 0) wide.push(`${e.tagName.toLowerCase()}${e.className ? `.${String(e.className).split(" ").join(".")}` : ""} right=${Math.round(r.right)}`);
    }
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, wide: wide.slice(0, 12) };
  }, PHONE.width);
}

/** Every element `selector` matches is drawn, inside the viewport's width, and not cut off by a box it scrolls in. */
async function onScreen(selector: string): Promise<void> {
  const boxes = await page.$$eval(selector, (els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      const style = getComputedStyle(e);
      // The nearest box that clips it sideways (a table that scrolls in its own box): the element must be inside it.
      let clip: { left: number; right: number } | null = null;
      for (let p = e.parentElement; p; p = p.parentElement) {
        const ox = getComputedStyle(p).overflowX;
        if (ox !== "visible") {
          const c = p.getBoundingClientRect();
          clip = { left: c.left, right: c.right };
          break;
        }
      }
      return { text: (e.textContent ?? "").trim().slice(0, 60), left: r.left, right: r.right, width: r.width, height: r.height, hidden: style.visibility === "hidden" || style.display === "none", clip };
    }));
  expect(boxes.length, `${selector} on the page`).toBeGreaterThan(0);
  for (const b of boxes) {
    const where = `${selector} "${b.text}" at ${Math.round(b.left)}–${Math.round(b.right)} px`;
    expect(b.hidden || b.width === 0 || b.height === 0, `${where} is drawn`).toBe(false);
    expect(b.left, `${where} starts on screen`).toBeGreaterThanOrEqual(0);
    expect(b.right, `${where} ends on screen (${PHONE.width} px)`).toBeLessThanOrEqual(PHONE.width + 0.5);
    if (b.clip) {
      expect(b.left, `${where} is not scrolled out of its box`).toBeGreaterThanOrEqual(b.clip.left - 0.5);
      expect(b.right, `${where} is not cut off by its box (${Math.round(b.clip.right)} px)`).toBeLessThanOrEqual(b.clip.right + 0.5);
    }
  }
}

/** Every element `selector` matches shows all its content within its own width (nothing to scroll sideways in it, nothing running past it). */
async function fits(selector: string): Promise<void> {
  const boxes = await page.$$eval(selector, (els) => els.map((e) => ({ text: (e.textContent ?? "").trim().slice(0, 60), scrollWidth: e.scrollWidth, clientWidth: e.clientWidth, right: e.getBoundingClientRect().right })));
  expect(boxes.length, `${selector} on the page`).toBeGreaterThan(0);
  for (const b of boxes) {
    expect(b.scrollWidth, `${selector} "${b.text}" is ${b.scrollWidth} px wide inside ${b.clientWidth} px`).toBeLessThanOrEqual(b.clientWidth);
    expect(b.right, `${selector} "${b.text}" ends on screen`).toBeLessThanOrEqual(PHONE.width + 0.5);
  }
}

/** Opens the in-page confirmation with `trigger`, checks it on screen and its buttons in reach, then keeps: nothing is sent. */
async function confirmOnScreen(name: string, trigger: string, bar: string): Promise<void> {
  const posts: string[] = [];
  const dialogs: string[] = [];
  const onRequest = (r: HTTPRequest) => void (r.method() === "POST" && !(r.postData() ?? "").includes('"dryRun":true') && posts.push(r.url()));
  // A browser dialog (window.confirm) would block the page: recorded and dismissed, it fails the test.
  const onDialog = (d: Dialog) => void (dialogs.push(d.message()), d.dismiss());
  page.on("request", onRequest);
  page.on("dialog", onDialog);
  try {
    await page.click(trigger);
    await page.waitForSelector(`[data-testid=${bar}]`, { visible: true, timeout: 10_000 });
    await page.waitForFunction((b) => document.activeElement?.getAttribute("data-testid") === `${b}-yes`, { timeout: 5000 }, bar);
    await check(name, [`[data-testid=${bar}]`, `[data-testid=${bar}-yes]`, `[data-testid=${bar}-no]`]);
    await fits(`[data-testid=${bar}]`);
    await page.click(`[data-testid=${bar}-no]`);
    await page.waitForSelector(`[data-testid=${bar}]`, { hidden: true, timeout: 5000 });
    expect(posts).toEqual([]);
    expect(dialogs).toEqual([]);
  } finally {
    page.off("request", onRequest);
    page.off("dialog", onDialog);
  }
}

async function check(name: string, keys: string[]): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `narrow-${name}.png`), fullPage: true });
  const w = await widths();
  const why = `the page scrolls sideways; wider than the screen: ${w.wide.join(", ")}`;
  expect(w.scrollWidth, why).toBeLessThanOrEqual(w.innerWidth);
  // A phone (isMobile) widens its layout viewport to a page wider than the screen (zoomed out), and innerWidth with it.
  expect(w.innerWidth, `the layout viewport widened to ${w.innerWidth} px: ${why}`).toBe(PHONE.width);
  // The nav: every link and the connection indicator on screen.
  await onScreen("header nav a");
  await onScreen("[data-testid=connection]");
  for (const k of keys) await onScreen(k);
}

describe("narrow screens (390 × 844)", () => {
  it("the Overview", async () => {
    await open("/", "[data-testid=workers-by-status]");
    await page.waitForSelector("[data-testid=error-group]", { timeout: 20_000 });
    await check("overview", ["h1", "[data-testid=workers-by-status]", "[data-testid=queue-depth]", "[data-testid=error-group] [data-testid=error-code]", "[data-testid=error-example]"]);
  }, 60_000);

  it("the Workers page", async () => {
    await open("/workers", '[data-worker-id="wn-e2e-01"]');
    await check("workers", ['[data-worker-id="wn-e2e-01"] .name', '[data-worker-id="wn-e2e-01"] [data-testid=worker-status]', '[data-worker-id="wn-e2e-01"] [data-testid=worker-recent]']);
  }, 60_000);

  it("the Jobs page", async () => {
    await open("/jobs", `[data-job-id="${completed}"]`);
    await check("jobs", [
      `[data-job-id="${completed}"] a[href="/jobs/${completed}"]`, `[data-job-id="${completed}"] .badge.s-completed`,
      `[data-job-id="${failed}"] .badge.s-failed`, `[data-job-id="${completed}"] [role=progressbar]`,
    ]);
  }, 60_000);

  it("a job's page", async () => {
    await open(`/jobs/${completed}`, "[data-testid=job-status]");
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>("[data-testid=screenshot]");
      return img !== null && img.complete && img.naturalWidth > 0;
    }, { timeout: 10_000 });
    await check("job", ["h1 code", "[data-testid=job-status]", "[data-testid=job-progress-text]", "[data-testid=job-url]", "[data-testid=steps] tbody tr td:nth-child(2)", "[data-testid=steps] .badge", "[data-testid=attempts] tbody tr td:first-child", "[data-testid=attempts] a[href^='/workers/']", "[data-testid=attempts] tbody tr td:last-child"]);
    expect(await page.$eval("[data-testid=job-status]", (e) => e.textContent)).toBe("completed");

    await open(`/jobs/${failed}`, "[data-testid=job-error]");
    await check("job-failed", ["[data-testid=job-status]", "[data-testid=job-error]"]);
  }, 60_000);

  it("a job's logs wrap, and a long error text breaks, within their boxes and cells (nothing scrolls sideways in them)", async () => {
    await open(`/jobs/${longError}`, "[data-testid=logs]");
    // The logs are lines of the job's worker, one of them with the 200-character URL.
    expect(await page.$eval("[data-testid=logs]", (e) => e.textContent)).toContain("a".repeat(150));
    await check("job-long-error", ["[data-testid=job-status]", "[data-testid=job-error]", "[data-testid=logs]"]);
    await fits("[data-testid=logs]");
    await fits("[data-testid=job-error]");
    // The attempt's outcome (half the card's width) and the failed step's error.
    expect(await page.$eval("[data-testid=attempts] tbody tr td:last-child", (e) => e.textContent)).toContain("z".repeat(100));
    await fits("[data-testid=attempts] tbody tr td");
    await fits("[data-testid=steps] tbody tr td");
    // The same error in the Jobs list and on the worker's page.
    await open(`/jobs?q=${longError}`, `[data-job-id="${longError}"]`);
    await check("jobs-long-error", [`[data-job-id="${longError}"] .badge.s-failed`]);
    await fits(`[data-job-id="${longError}"] td`);
    await open("/workers/wn-e2e-01", `[data-testid=job-row][data-job-id="${longError}"]`);
    await check("worker-long-error", [`[data-job-id="${longError}"] [data-testid=attempt-error]`]);
    await fits(`[data-job-id="${longError}"] td`);
  }, 60_000);

  it("the in-page confirmations: a job's Cancel, the Jobs list's Cancel all and a worker's Drain, on screen with both buttons", async () => {
    await open(`/jobs/${waiting}`, "[data-testid=cancel]");
    await confirmOnScreen("job-cancel-confirm", "[data-testid=cancel]", "cancel-confirm");
    await open("/jobs?status=queued&q=e2e-narrow-waiting", `[data-job-id="${waiting}"]`);
    await confirmOnScreen("jobs-bulk-confirm", "[data-testid=bulk-cancel]", "bulk-confirm");
    await open("/workers/wn-e2e-01", "[data-testid=drain]");
    await confirmOnScreen("worker-drain-confirm", "[data-testid=drain]", "drain-confirm");
    expect((await api(`/api/jobs/${waiting}`)).body.job.status).toBe("queued");
  }, 60_000);

  it("a worker's page", async () => {
    await open("/workers/wn-e2e-01", "[data-testid=worker-status]");
    await check("worker", ["h1", "[data-testid=worker-status]", "[data-testid=worker-page-recent]", "[data-testid=drain]", `[data-testid=job-row][data-job-id="${completed}"] a[href="/jobs/${completed}"]`,
      `[data-testid=job-row][data-job-id="${completed}"] [data-testid=attempt-outcome]`, `[data-testid=job-row][data-job-id="${completed}"] [data-testid=job-later]`]);
    expect(await page.$eval("h1", (e) => e.textContent)).toContain("Worker Node E2E 01");
  }, 60_000);
});
