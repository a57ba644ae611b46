import type { HTTPRequest, HTTPResponse, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../harness/index.ts";
import { callApi, startStack, type Stack } from "./stack.ts";

/**
 * A page's catch-up (docs/ui.md, "The catch-up waits for the read models") in real Chromium against the real stack,
 * signed in with a UI token. No worker: the streams stay quiet unless a test stores something (a worker's
 * heartbeats would move a stream's head every second).
 */

const TOKEN = "e2e-catch-up-token-0123456789";
/** The token the UI is started again with: the page's cookie no longer opens it. */
const ROTATED = "e2e-catch-up-token-rotated-9876";

let stack: Stack;
let page: Page;
let token = TOKEN;

beforeAll(async () => {
  stack = await startStack({ workers: 0, uiEnv: { TROUPE_UI_TOKEN: TOKEN } });
  page = await stack.browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${(e as Error).message}`));
  await signIn(page, TOKEN);
  // One job in the log: the projector writes its checkpoints with its first batch (a page's data says where it was
  // read only once they exist).
  await submitJob("e2e-catch-up-first");
  await readModelsCaughtUp();
}, 300_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const api = (path: string, init: RequestInit = {}) => callApi(stack, path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });

/** Signs `p` in with the login form (the cookie is the browser's: every tab has it). */
async function signIn(p: Page, t: string, next = "/"): Promise<void> {
  await p.goto(`${stack.uiUrl}/login?next=${encodeURIComponent(next)}`, { waitUntil: "networkidle0" });
  await p.type("input[name=token]", t);
  await Promise.all([p.waitForNavigation({ waitUntil: "networkidle0" }), p.click("button[type=submit]")]);
  expect(new URL(p.url()).pathname).toBe(next);
}

/** Catch-ups the page ran to their end (the footer's count). */
const catchUps = (p: Page) => p.$eval("footer", (f) => Number(f.getAttribute("data-catch-ups")));
const withoutReload = (p: Page) => p.$eval("footer", (f) => Number(f.getAttribute("data-catch-ups-without-reload")));

/** Resolves once `p` has run more than `n` catch-ups to their end. */
async function catchUpsPast(p: Page, n: number, timeout = 30_000): Promise<void> {
  await p.waitForFunction((k) => Number(document.querySelector("footer")?.getAttribute("data-catch-ups")) > k, { timeout }, n);
}

/** Opens `path` fresh and waits for its first catch-up (after the live subscription) to end. */
async function open(path: string): Promise<void> {
  await page.goto(`${stack.uiUrl}${path}`, { waitUntil: "networkidle0" });
  await page.waitForSelector("[data-testid=connection][data-status=live]", { timeout: 10_000 });
  await catchUpsPast(page, 0);
}

/** The paths `p` requests from now on that `match` (data loads, checks), with the status each got. */
function record(p: Page, match: (path: string) => boolean): { paths: string[]; statuses: number[]; stop(): void } {
  const paths: string[] = [];
  const statuses: number[] = [];
  const onRequest = (r: HTTPRequest) => {
    const path = new URL(r.url()).pathname;
    if (match(path)) paths.push(path);
  };
  const onResponse = (r: HTTPResponse) => {
    if (match(new URL(r.url()).pathname)) statuses.push(r.status());
  };
  p.on("request", onRequest);
  p.on("response", onResponse);
  return { paths, statuses, stop: () => void p.off("request", onRequest).off("response", onResponse) };
}

/** A job no worker takes (there is none): its `job.submitted` is one more event in the log. */
async function submitJob(tag: string): Promise<string> {
  const r = await api("/api/jobs", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ url: `${stack.site.url}/product/1`, tags: [tag] }) });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.jobId as string;
}

/** The read models hold everything stored so far (the check a page asks, asked by the test). */
async function readModelsCaughtUp(): Promise<void> {
  await waitFor("the read models at the streams' heads", async () => (await api("/api/catch-up?waitMs=1000")).body.caughtUp === true, 30_000, 100);
}

/**
 * How long a test watches for a check that must not come: a retry falls 1 s after a check that did not find the read
 * models caught up (then 2 s, 4 s …), and Chromium runs a hidden tab's timers within a second of their time.
 * Not a wait for anything: what the page does in it is the assertion.
 */
const NO_RETRY_WINDOW_MS = 4000;
const watch = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a catch-up after an in-app navigation", () => {
  it("loads the page's data once when the read models it was read from already held the streams' heads (it loaded every page twice)", async () => {
    await open("/jobs");
    await readModelsCaughtUp();
    const loads = record(page, (path) => path.endsWith("/__data.json"));
    try {
      const before = { catchUps: await catchUps(page), withoutReload: await withoutReload(page) };
      await page.click('header nav a[href="/workers"]');
      await page.waitForFunction(() => location.pathname === "/workers", { timeout: 10_000 });
      await catchUpsPast(page, before.catchUps);
      expect(loads.paths).toEqual(["/workers/__data.json"]);
      expect(await withoutReload(page)).toBe(before.withoutReload + 1);
      expect(await page.$("[data-testid=catch-up-behind]")).toBeNull();
    } finally {
      loads.stop();
    }
  }, 60_000);

  it("reloads after a reconnect although nothing was stored: the masters' status is in no stream (a review: a failover's banner stayed)", async () => {
    await open("/workers");
    await readModelsCaughtUp();
    const before = { catchUps: await catchUps(page), withoutReload: await withoutReload(page) };
    const loads = record(page, (path) => path === "/workers/__data.json");
    try {
      await stack.wsProxy.cut();
      try {
        await page.waitForSelector("[data-testid=connection]:not([data-status=live])", { timeout: 15_000 });
      } finally {
        await stack.wsProxy.restore();
      }
      await page.waitForSelector("[data-testid=connection][data-status=live]", { timeout: 30_000 });
      await catchUpsPast(page, before.catchUps);
      expect(await withoutReload(page)).toBe(before.withoutReload);
      expect(loads.paths.length).toBeGreaterThanOrEqual(1);
    } finally {
      loads.stop();
    }
  }, 60_000);

  it("still reloads a page whose data was read before something was stored (preloaded on hover): the job submitted in between shows", async () => {
    await open("/workers");
    // Hovering a link loads its page's data (data-sveltekit-preload-data="hover"); the click uses that data.
    const preloaded = page.waitForResponse((r) => new URL(r.url()).pathname === "/jobs/__data.json", { timeout: 10_000 });
    await page.hover('header nav a[href="/jobs"]');
    await preloaded;
    const appliedBefore = Number(await page.$eval("[data-testid=applied]", (e) => e.textContent));
    const jobId = await submitJob("e2e-catch-up-preloaded");
    // The job's event reached this page (the Workers page, which shows no jobs) and the read models, before the Jobs page follows the feed.
    await page.waitForFunction((n) => Number(document.querySelector("[data-testid=applied]")?.textContent) > n, { timeout: 10_000 }, appliedBefore);
    await readModelsCaughtUp();
    const before = { catchUps: await catchUps(page), withoutReload: await withoutReload(page) };
    const loads = record(page, (path) => path === "/jobs/__data.json");
    try {
      await page.click('header nav a[href="/jobs"]');
      await page.waitForFunction(() => location.pathname === "/jobs", { timeout: 10_000 });
      await catchUpsPast(page, before.catchUps);
      await page.waitForSelector(`[data-job-id="${jobId}"]`, { timeout: 10_000 });
      // The catch-up did reload (the click used the preloaded data, read before the job was stored): had SvelteKit
      // loaded the page again on the click, that data would hold the job and the catch-up would rightly skip.
      expect(await withoutReload(page)).toBe(before.withoutReload);
      expect(loads.paths.length).toBeGreaterThanOrEqual(1);
    } finally {
      loads.stop();
    }
  }, 60_000);
});

describe("a catch-up in a hidden tab", () => {
  it("does not check again while the tab is hidden, and checks once when it is shown (a hidden tab checked every 30 s for as long as it stayed open)", async () => {
    await open("/workers");
    const projector = stack.procs.get("projector")!.child.pid!;
    process.kill(projector, "SIGSTOP");
    let resumed = false;
    let other: Page | undefined;
    try {
      const jobId = await submitJob("e2e-catch-up-hidden");
      // The Jobs page's data lacks the job (the projector is paused) and its event came before the page followed the feed.
      const before = await catchUps(page);
      await page.click('header nav a[href="/jobs"]');
      await page.waitForFunction(() => location.pathname === "/jobs", { timeout: 10_000 });
      // Hidden for real while its catch-up's check waits (5 s: the projector is paused): another tab in front
      // (Chromium's own visibilityState and visibilitychange, and its hidden-tab timers).
      other = await stack.browser.newPage();
      await other.bringToFront();
      expect(await page.evaluate(() => document.visibilityState)).toBe("hidden");
      const checks = record(page, (path) => path === "/api/catch-up");
      try {
        // The check ends, finds the read models behind, reloads, and says so; its retry is due 1 s later. (Polled
        // on DOM changes: a hidden tab gets no animation frames.)
        await page.waitForSelector("[data-testid=catch-up-behind]", { timeout: 30_000 });
        expect(await catchUps(page)).toBe(before + 1);
        expect(await page.$(`[data-job-id="${jobId}"]`)).toBeNull();
        const sent = checks.paths.length;
        await watch(NO_RETRY_WINDOW_MS);
        expect(checks.paths.length, "the hidden tab checked again").toBe(sent);
        process.kill(projector, "SIGCONT");
        resumed = true;
        await readModelsCaughtUp();
        expect(await page.$("[data-testid=catch-up-behind]")).not.toBeNull();
        expect(checks.paths.length).toBe(sent);
        // Shown again: it checks at once (its retry came due while hidden), reloads, and the note goes.
        await page.bringToFront();
        expect(await page.evaluate(() => document.visibilityState)).toBe("visible");
        await page.waitForSelector(`[data-job-id="${jobId}"]`, { timeout: 15_000 });
        await page.waitForFunction(() => document.querySelector("[data-testid=catch-up-behind]") === null, { timeout: 10_000 });
        expect(checks.paths.length).toBe(sent + 1);
      } finally {
        checks.stop();
      }
    } finally {
      if (!resumed) process.kill(projector, "SIGCONT");
      await other?.close();
      await page.bringToFront();
    }
  }, 120_000);
});

describe("a hidden tab flooded with live messages", () => {
  it("lets go of them past its hidden bound (4 MB) and reloads when shown instead of folding them (it held up to 32 MB, then reloaded while hidden)", async () => {
    await open("/workers");
    const footerText = () => page.$eval("footer", (f) => f.textContent ?? "");
    expect(await footerText()).not.toMatch(/invalid ignored/);
    const other = await stack.browser.newPage();
    const nc = await stack.nats.connect("worker", "e2e-flood");
    try {
      await other.bringToFront();
      expect(await page.evaluate(() => document.visibilityState)).toBe("hidden");
      const before = await catchUps(page);
      // 100 messages of 64 KiB (6.4 MB) on a subject the page follows. Not events: folded, each would count as
      // invalid, which shows whether the page folded them or let them go.
      const junk = new Uint8Array(64 * 1024).fill(120);
      for (let i = 0; i < 100; i++) nc.publish("troupe.hb.e2e-flood", junk);
      await nc.flush();
      // Polled on a timer: a hidden tab gets no animation frames.
      await page.waitForFunction(() => Number(document.querySelector("footer")?.getAttribute("data-hidden-drops")) === 1, { timeout: 30_000, polling: 100 });
      // What it folded before it let go (a frame already on its way when the tab went hidden can fold a few: a
      // fresh-clone run saw 7 of the 100): the ones it let go of must add nothing to it.
      const invalidAt = (t: string) => Number(/invalid ignored: (\d+)/.exec(t)?.[1] ?? 0);
      const foldedBeforeDrop = invalidAt(await footerText());
      // Hidden, it reloads nothing (the reload waits for the user to look).
      expect(await catchUps(page)).toBe(before);
      await page.bringToFront();
      // (A second catch-up may follow if this one finds the projector still folding the flood: not asserted.)
      await catchUpsPast(page, before);
      expect(await page.$eval("footer", (f) => f.getAttribute("data-hidden-drops"))).toBe("1");
      const shown = await footerText();
      expect(invalidAt(shown), `the messages it let go of were folded after all: ${shown}`).toBe(foldedBeforeDrop);
      expect(foldedBeforeDrop, "it let go of most of them").toBeLessThan(64);
    } finally {
      await nc.close();
      await other.close();
      await page.bringToFront();
    }
  }, 90_000);
});

describe("a catch-up the dashboard refuses", () => {
  it("stops checking when the dashboard no longer takes the page's sign-in (its token changed), says to sign in again, and checks once when shown after a sign-in in another tab", async () => {
    // The Overview: it also reloads its figures while events arrive (every 5 s at most).
    await open("/");
    await stack.restartUi({ TROUPE_UI_TOKEN: ROTATED });
    token = ROTATED;
    expect((await callApi(stack, "/api/stats", { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(401);
    const checks = record(page, (path) => path === "/api/catch-up");
    const loads = record(page, (path) => path.endsWith("/__data.json"));
    let other: Page | undefined;
    try {
      expect(await page.evaluate(() => document.visibilityState)).toBe("visible");
      // A reconnect of the live feed (its NATS credentials still good) brings a catch-up.
      await stack.wsProxy.cut();
      try {
        await page.waitForSelector("[data-testid=connection]:not([data-status=live])", { timeout: 15_000 });
      } finally {
        await stack.wsProxy.restore();
      }
      const note = await page.waitForSelector("[data-testid=catch-up-behind]", { timeout: 30_000 });
      await waitFor("the check's answer", () => checks.statuses.length > 0, 5000, 20);
      expect(checks.statuses).toEqual([401]);
      // (A reconnect may start two checks at once, the first aborted by the second: counted from the refusal on.)
      const sent = checks.paths.length;
      // An event comes live (the feed's NATS credentials are not the UI's token): the Overview's reload of its
      // figures is due at once (the page is older than 5 s), and is refused as the check was.
      const applied = Number(await page.$eval("[data-testid=applied]", (e) => e.textContent));
      await submitJob("e2e-catch-up-signed-out");
      await page.waitForFunction((n) => Number(document.querySelector("[data-testid=applied]")?.textContent) > n, { timeout: 10_000 }, applied);
      await watch(NO_RETRY_WINDOW_MS);
      expect(checks.paths.length, "it checked again").toBe(sent);
      expect(checks.statuses).toEqual([401]);
      expect(await note!.evaluate((e) => e.getAttribute("data-stopped"))).toBe("sign-in");
      expect(await note!.evaluate((e) => e.textContent)).toMatch(/no longer takes this page's sign-in .*it stopped checking: sign in again/s);
      expect(await page.$eval("[data-testid=catch-up-sign-in]", (a) => a.getAttribute("href"))).toBe("/login?next=%2F");
      // The page stays as it was (its reloads would be refused as well): no login page in its place (SvelteKit
      // followed the refusal's redirect there, and the checks went on every 1, 2, 4 … 30 s).
      expect(loads.paths).toEqual([]);
      expect(new URL(page.url()).pathname).toBe("/");
      expect(await page.$eval("h1", (e) => e.textContent)).toBe("Overview");
      // Signed in again in another tab (the cookie is the browser's), then back to this one: it checks once, and the note goes.
      other = await stack.browser.newPage();
      await other.bringToFront();
      await signIn(other, ROTATED);
      await page.bringToFront();
      await page.waitForFunction(() => document.querySelector("[data-testid=catch-up-behind]") === null, { timeout: 15_000 });
      expect(checks.statuses).toEqual([401, 200]);
      // The job stored while it was signed out was not in the page's data: that check reloaded it.
      await waitFor("the reload after the check", () => loads.paths.length > 0, 10_000, 20);
      expect(loads.paths[0]).toBe("/__data.json");
    } finally {
      checks.stop();
      loads.stop();
      await other?.close();
      await page.bringToFront();
    }
  }, 120_000);
});
