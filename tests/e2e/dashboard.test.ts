import { execFile } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import type { Dialog, HTTPRequest, Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEvent, formatBytes, subjects, type TroupeEvent } from "@troupe/events";
import { publishEvent } from "@troupe/events/node";
import { startTestNats, waitFor } from "../harness/index.ts";
import { ARTIFACTS, callApi, startStack, tail, type Stack } from "./stack.ts";

/**
 * The dashboard in real Chromium against the real stack: nats-server, master,
 * projector, UI and Puppeteer workers, each its own process.
 */

let stack: Stack;
let page: Page;

beforeAll(async () => {
  stack = await startStack({ workers: 1 });
  page = await stack.browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${(e as Error).message}`));
}, 300_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

const api = (path: string, init?: RequestInit) => callApi(stack, path, init);
const post = (path: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) =>
  api(path, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });

/** A GET with the Host header set (fetch does not let a caller choose it; a browser on a rebound name sends its own). */
function getWithHost(path: string, host: string): Promise<{ status: number; body: Record<string, any> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${stack.uiUrl}${path}`, { headers: { host } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d)).on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, any> }));
    });
    req.on("error", reject).end();
  });
}

/** Writes `job-x/1/000-link.png` into the artifacts store as a link to an object of the master's snapshot store (as a forged metadata message could). */
async function linkArtifact(): Promise<void> {
  const snapshots = await new Objm(await stack.nats.connect("master", "test-link-target")).open("troupe-master-snapshots");
  const target = await snapshots.putBlob({ name: "link-target" }, new TextEncoder().encode("not an artifact"));
  // Written with the worker role, which writes this store.
  await (await new Objm(await stack.nats.connect("worker", "test-link")).open("troupe-artifacts")).link("job-x/1/000-link.png", target);
}

/** A request body sent in 64 kB chunks without a Content-Length. */
function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, (at += 65_536)));
    },
  });
}

/**
 * Waits until the element with data-testid `id` has focus: the page moves focus after its own awaits (a bulk run
 * focuses its button once the list is reloaded and the button enabled again), after what a test waits for.
 */
async function expectFocus(page: Page, id: string, timeoutMs = 5000): Promise<void> {
  const now = () => page.evaluate(() => document.activeElement?.getAttribute("data-testid") ?? null);
  await page.waitForFunction((want) => document.activeElement?.getAttribute("data-testid") === want, { timeout: timeoutMs }, id)
    .catch(async () => expect(await now(), `focus on ${id}`).toBe(id));
}

async function shot(name: string) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Resolves when the worker's registration reaches the read models (projector folded it). */
async function workerListed(id: string, timeoutMs = 60_000) {
  return waitFor(`${id} in GET /api/workers`, async () => (await api("/api/workers")).body.workers.find((w: { id: string }) => w.id === id), timeoutMs, 100);
}

describe("Workers page", () => {
  it("lists the running workers; a worker started after page load appears within 5 s without reload; a killed one turns suspect, then lost", async () => {
    await workerListed("wn-e2e-01");
    await page.goto(`${stack.uiUrl}/workers`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    await page.waitForSelector('[data-worker-id="wn-e2e-01"]', { timeout: 5000 });
    // A marker that a reload would wipe.
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));

    const live = await stack.nats.connect("live");
    const registered = new Promise<void>((res) => {
      const sub = live.subscribe(subjects.worker("wn-e2e-02", "registered"), { callback: () => { sub.unsubscribe(); res(); } });
    });
    await live.flush();
    const w2 = stack.startWorker(2);
    await registered;
    await page.waitForSelector('[data-worker-id="wn-e2e-02"]', { timeout: 5000 });
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    await page.waitForSelector('[data-worker-id="wn-e2e-02"][data-status=online]', { timeout: 5000 });
    // No finished job yet: no success rate to show (it read "0%").
    expect(await page.$eval('[data-worker-id="wn-e2e-02"] [data-testid=worker-success]', (e) => e.textContent?.trim())).toMatch(/^– \(0 ok \/ 0 failed attempts\)$/);
    // Nor in the last 60 min, the card's main figure.
    expect(await page.$eval('[data-worker-id="wn-e2e-02"] [data-testid=worker-recent]', (e) => e.textContent?.trim())).toBe("–");
    // Its labels, from the registration the page folded live.
    expect(await page.$eval('[data-worker-id="wn-e2e-02"] [data-testid=worker-labels]', (e) => e.textContent?.trim())).toBe("e2e, n=02");
    await shot("workers");

    // Record every status the card shows, then kill -9 the worker.
    await page.evaluate(() => {
      const w = window as unknown as { __statuses: string[] };
      w.__statuses = [];
      const record = () => {
        const s = document.querySelector('[data-worker-id="wn-e2e-02"]')?.getAttribute("data-status");
        if (s && w.__statuses[w.__statuses.length - 1] !== s) w.__statuses.push(s);
      };
      new MutationObserver(record).observe(document.body, { subtree: true, attributes: true, childList: true });
      record();
    });
    w2.child.kill("SIGKILL");
    await page.waitForSelector('[data-worker-id="wn-e2e-02"][data-status=lost]', { timeout: 20_000 });
    const seen = await page.evaluate(() => (window as unknown as { __statuses: string[] }).__statuses);
    expect(seen.indexOf("suspect")).toBeGreaterThan(-1);
    expect(seen.indexOf("suspect")).toBeLessThan(seen.indexOf("lost"));
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    await shot("workers-lost");
  }, 120_000);

  it("leaves a worker gone for longer than the retire window (24 h) out of the list and the Overview's counts, until asked for", async () => {
    // A machine that registered and stopped two days ago, as its events say.
    const id = "wn-e2e-retired";
    const twoDaysAgo = new Date(Date.now() - 48 * 3600_000);
    const { js } = await stack.nats.js("worker");
    await publishEvent(js, createEvent("worker.registered", {
      workerId: id, instanceId: "i-retired", name: "Retired machine", type: "puppeteer", ip: "192.0.2.9", port: 3002, version: "1.0.0",
      capabilities: { maxConcurrentJobs: 1, memory: 1024, cpu: 1, supportedBrowsers: [{ name: "chromium", version: "120" }] },
    }, id, twoDaysAgo) as TroupeEvent);
    await publishEvent(js, createEvent("worker.deregistered", { workerId: id, instanceId: "i-retired", reason: "shutdown" }, id, twoDaysAgo) as TroupeEvent);
    // The API keeps it (and its history).
    await waitFor(`${id} offline in GET /api/workers`, async () => (await api("/api/workers")).body.workers.find((w: { id: string; status: string }) => w.id === id && w.status === "offline"), 30_000, 100);

    await page.goto(`${stack.uiUrl}/workers`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    await page.waitForSelector('[data-worker-id="wn-e2e-01"]', { timeout: 5000 });
    expect(await page.$(`[data-worker-id="${id}"]`)).toBeNull();
    expect(Number(await page.$eval("[data-testid=worker-retired-count]", (e) => e.textContent))).toBeGreaterThanOrEqual(1);
    await page.click("[data-testid=worker-show-retired]");
    await page.waitForSelector(`[data-worker-id="${id}"][data-status=offline]`, { timeout: 5000 });

    await page.goto(`${stack.uiUrl}/`, { waitUntil: "networkidle0" });
    await page.waitForSelector("[data-testid=workers-retired]", { timeout: 10_000 });
    expect(await page.$eval("[data-testid=workers-retired]", (e) => e.textContent)).toMatch(/^\d+ retired$/);
    // Its own page still shows it.
    await page.goto(`${stack.uiUrl}/workers/${id}`, { waitUntil: "networkidle0" });
    expect(await page.content()).toContain("Retired machine");
    // Registered without attemptTokens, as workers before tokens did: the page says what that means.
    expect(await page.$eval("[data-testid=worker-tokens]", (e) => e.textContent)).toBe("no (an older release: no jobs from a master that requires them)");
  }, 90_000);
});

describe("live connection", () => {
  it("shows the connection state and catches up after a reconnect with what happened while it was away", async () => {
    await page.goto(`${stack.uiUrl}/workers`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    // Cut the browser's WebSocket (and refuse new ones): the page stays, its live feed stops.
    await stack.wsProxy.cut();
    try {
      await page.waitForSelector('[data-testid=connection]:not([data-status=live])', { timeout: 15_000 });
      await shot("connection-lost");
      // Meanwhile a worker joins; the page cannot see its events.
      stack.startWorker(3);
      await workerListed("wn-e2e-03");
      expect(await page.$('[data-worker-id="wn-e2e-03"]')).toBeNull();
    } finally {
      await stack.wsProxy.restore();
    }
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 20_000 });
    // The catch-up reloads the read model: the worker is there, without a page reload.
    await page.waitForSelector('[data-worker-id="wn-e2e-03"]', { timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
  }, 90_000);

  it("says in the indicator's tooltip why a page that cannot reach the WebSocket is offline (it was empty)", async () => {
    const title = () => page.$eval("[data-testid=connection]", (el) => el.getAttribute("title") ?? "");
    await stack.wsProxy.cut();
    try {
      await page.goto(`${stack.uiUrl}/workers`, { waitUntil: "domcontentloaded" });
      await page.waitForSelector("[data-testid=connection][data-status=offline]", { timeout: 15_000 });
      expect(await title()).toMatch(new RegExp(`^Offline: could not connect to the NATS WebSocket at ws://[^ ]+:${stack.wsProxy.port}\\b.*trying again every 2 s$`));
    } finally {
      await stack.wsProxy.restore();
    }
    await page.waitForSelector("[data-testid=connection][data-status=live]", { timeout: 20_000 });
    expect(await title()).toMatch(/^Live: the NATS WebSocket at ws:\/\//);
  }, 60_000);

  it("connects again after NATS refused its password and nats.js closed the connection for good (it stayed offline until reloaded)", async () => {
    const title = () => page.$eval("[data-testid=connection]", (el) => el.getAttribute("title") ?? "");
    await page.goto(`${stack.uiUrl}/workers`, { waitUntil: "networkidle0" });
    await page.waitForSelector("[data-testid=connection][data-status=live]", { timeout: 10_000 });
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    // Another server, whose users have other passwords: its refusals (twice in a row) make nats.js give up.
    const other = await startTestNats();
    const own = Number(stack.nats.wsUrl.split(":").pop());
    try {
      await stack.wsProxy.cut();
      stack.wsProxy.retarget(Number(other.wsUrl.split(":").pop()));
      await stack.wsProxy.restore();
      await page.waitForSelector("[data-testid=connection][data-status=offline]", { timeout: 30_000 });
      expect(await title()).toMatch(/authorization.*reload the page if NATS's credentials changed/i);
    } finally {
      await stack.wsProxy.cut();
      stack.wsProxy.retarget(own);
      await stack.wsProxy.restore();
      await other.stop();
    }
    await page.waitForSelector("[data-testid=connection][data-status=live]", { timeout: 20_000 });
    expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
  }, 90_000);
});

describe("live lists against the read models", () => {
  it("a status-filtered list shows a job that reaches the status after the page loaded, and a worker's card does not count a cancel as a failure (a dashboard attack)", async () => {
    const url = `${stack.site.url}/product/4`;
    const slow = await post("/api/jobs", { url, tags: ["e2e-filtered"], scenario: { steps: [{ type: "wait", ms: 5000 }] } });
    expect(slow.status, JSON.stringify(slow.body)).toBe(201);
    const jobId = slow.body.jobId as string;
    await waitFor("the job running", async () => (await api(`/api/jobs/${jobId}`)).body.job?.status === "running", 30_000, 100);
    // Loaded while it runs: the page has no row for it, and it was submitted before the page (not followed as new).
    await page.goto(`${stack.uiUrl}/jobs?status=completed`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    // Its first catch-up ends (the footer counts it): with a reload when anything was stored since the page's data
    // was read, without one when nothing was (docs/ui.md, "When a catch-up stops, waits or reloads nothing").
    await page.waitForFunction(() => Number(document.querySelector("footer")?.getAttribute("data-catch-ups")) > 0, { timeout: 30_000 });
    // Still running once the page's catch-up came back: only the live feed can bring its row.
    expect((await api(`/api/jobs/${jobId}`)).body.job?.status, "the job finished before the page's catch-up: this run tests nothing").toBe("running");
    expect(await page.$(`[data-job-id="${jobId}"]`)).toBeNull();
    await page.waitForSelector(`[data-job-id="${jobId}"][data-status=completed]`, { timeout: 30_000 });

    // Cancelling a running job: its worker stops and reports a `cancelled` failure, which the log refuses.
    await page.goto(`${stack.uiUrl}/workers`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    const long = await post("/api/jobs", { url, tags: ["e2e-cancel-count"], scenario: { steps: [{ type: "wait", ms: 30_000 }] } });
    expect(long.status, JSON.stringify(long.body)).toBe(201);
    const longId = long.body.jobId as string;
    const running = await waitFor("the long job running", async () => {
      const j = (await api(`/api/jobs/${longId}`)).body.job;
      return j?.status === "running" ? (j.workerId as string) : undefined;
    }, 30_000, 100);
    const liveNc = await stack.nats.connect("live", "test-cancel-count");
    const failedEvent = new Promise<TroupeEvent>((resolve) => {
      liveNc.subscribe(`troupe.evt.job.${longId}.failed`, { max: 1, callback: (_e, m) => resolve(m.json<TroupeEvent>()) });
    });
    await liveNc.flush();
    expect((await post(`/api/jobs/${longId}/cancel`, {})).status).toBe(200);
    const failed = await failedEvent;
    await liveNc.close();
    expect((failed.data as { error: { code: string } }).error.code).toBe("cancelled");
    // The page has folded the failure once it shows a later event of that worker (one connection: in order).
    const card = `[data-worker-id="${running}"]`;
    await page.waitForFunction((sel, t) => (document.querySelector(sel)?.getAttribute("data-last-seen") ?? "") > t, { timeout: 15_000 }, card, failed.time);
    const counts = (text: string) => /\((\d+) ok \/ (\d+) failed attempts\)/.exec(text)?.slice(1).map(Number);
    // Counted, the page stays one failure above the read model for good; the read model may lag a moment.
    let seen = "";
    await waitFor("the card's counts equal the read model's", async () => {
      const shown = counts(await page.$eval(`${card} [data-testid=worker-success]`, (e) => e.textContent ?? ""));
      const w = (await api(`/api/workers/${running}`)).body.worker.performance as { jobsCompleted: number; jobsFailed: number };
      seen = `page ${JSON.stringify(shown)}, read model ${JSON.stringify([w.jobsCompleted, w.jobsFailed])}`;
      return JSON.stringify(shown) === JSON.stringify([w.jobsCompleted, w.jobsFailed]);
    }, 10_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}: ${seen}`);
    });
    // The last 60 min, the card's main figure (folded live), agrees with the API's read of worker_series: what this
    // worker ran in the tests before is in both, the refused cancellation in neither.
    await waitFor("the card's last-60-min figure equals the API's", async () => {
      const text = (await page.$eval(`${card} [data-testid=worker-recent]`, (e) => e.textContent?.trim() ?? "")).replace(/\s+/g, " ");
      const r = (await api(`/api/workers/${running}`)).body.worker.performance.recent as { jobsCompleted: number; jobsFailed: number; successRate: number | null };
      seen = `page ${JSON.stringify(text)}, API ${JSON.stringify(r)}`;
      return text === (r.successRate === null ? "–" : `${Math.round(r.successRate)} % (${r.jobsCompleted} ok / ${r.jobsFailed} failed)`);
    }, 10_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}: ${seen}`);
    });
  }, 120_000);

  it("says it is reconnecting when NATS hangs (no bytes, nothing closed), not live: the workers going suspect are not the workers' fault", async () => {
    await page.goto(`${stack.uiUrl}/`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    stack.wsProxy.freeze();
    try {
      // Three pings 2 s apart unanswered (the stack's TROUPE_UI_LIVE_PING_MS): 6–8 s; nats.js's default said "live" for minutes.
      await page.waitForSelector('[data-testid=connection][data-status=reconnecting]', { timeout: 25_000 });
    } finally {
      await stack.wsProxy.cut();
      await stack.wsProxy.restore();
    }
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 30_000 });
  }, 90_000);

  it("the Overview says the projector is stalled when it folds nothing while events arrive (it showed its last lag, \"1 ms\"), and stops saying so once it folds again", async () => {
    await page.goto(`${stack.uiUrl}/`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    const projector = stack.procs.get("projector")!.child.pid!;
    const lag = () => page.$eval("[data-testid=projector-lag]", (e) => e.textContent ?? "");
    expect(await lag()).toMatch(/^\d+ ms/);
    process.kill(projector, "SIGSTOP");
    try {
      // Heartbeats every second keep events arriving; 30 s of them with the status row unchanged.
      await page.waitForFunction(() => /^stalled: nothing folded for/.test(document.querySelector("[data-testid=projector-lag]")?.textContent ?? ""), { timeout: 60_000 });
    } finally {
      process.kill(projector, "SIGCONT");
    }
    await page.waitForFunction(() => /^\d+ ms/.test(document.querySelector("[data-testid=projector-lag]")?.textContent ?? ""), { timeout: 30_000 });
  }, 120_000);

  it("a worker's page reloads its charts (the projector's per-minute series) while events arrive; they stood still until a reload", async () => {
    // A worker with attempts in the last 60 min (the tests before ran jobs), whose page shows a rate, not "–".
    const workers = (await api("/api/workers")).body.workers as { id: string; performance: { recent: { successRate: number | null } } }[];
    const id = workers.find((w) => w.performance.recent.successRate !== null)?.id as string;
    expect(id, JSON.stringify(workers.map((w) => [w.id, w.performance.recent]))).toBeDefined();
    await page.goto(`${stack.uiUrl}/workers/${id}`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    // The worker's heartbeats (every second here) are the events; the reload comes at most every 15 s.
    await page.waitForResponse((res) => res.url().includes(`/workers/${id}/__data.json`) && res.status() === 200, { timeout: 40_000 });
    // Its success rate of the last 60 min, first, as the API reads it (or "–" without attempts there); all time below it.
    let seen = "";
    await waitFor("the worker page's last-60-min figure equals the API's", async () => {
      const text = (await page.$eval("[data-testid=worker-page-recent]", (e) => e.textContent?.trim() ?? "")).replace(/\s+/g, " ");
      const r = (await api(`/api/workers/${id}`)).body.worker.performance.recent as { jobsCompleted: number; jobsFailed: number; successRate: number | null };
      seen = `page ${JSON.stringify(text)}, API ${JSON.stringify(r)}`;
      return text === (r.successRate === null ? "–" : `${Math.round(r.successRate)} % (${r.jobsCompleted} ok / ${r.jobsFailed} failed)`);
    }, 10_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}: ${seen}`);
    });
    expect(await page.$eval("[data-testid=worker-page-success]", (e) => e.textContent ?? "")).toMatch(/\(\d+ ok \/ \d+ failed attempts\)/);
  }, 90_000);

  it("the Overview's attempt success of the last 60 min sums the workers' windows, as GET /api/workers reads them (the figure was all time only)", async () => {
    await page.goto(`${stack.uiUrl}/`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    let seen = "";
    await waitFor("the Overview's last-60-min attempt success equals the workers' sum", async () => {
      const text = (await page.$eval("[data-testid=fleet-recent-success]", (e) => e.textContent?.trim() ?? "")).replace(/\s+/g, " ");
      const ws = (await api("/api/workers")).body.workers as { performance: { recent: { jobsCompleted: number; jobsFailed: number } } }[];
      const ok = ws.reduce((n, w) => n + w.performance.recent.jobsCompleted, 0);
      const failed = ws.reduce((n, w) => n + w.performance.recent.jobsFailed, 0);
      seen = `page ${JSON.stringify(text)}, API ${ok} ok / ${failed} failed`;
      return ok + failed > 0 && text === `${Math.round((ok / (ok + failed)) * 100)} %`;
    }, 20_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}: ${seen}`);
    });
  }, 60_000);

  it("charts say when: a time axis in UTC HH:MM, CPU on 0–100 %, and a range in the URL (?range=6h: six hours in 5-minute buckets, kept by a reload and by the live reloads; an unknown one shows 1 h and says so)", async () => {
    const id = "wn-e2e-01";
    // Each chart's range, time labels, scale top and title; the span in minutes from its first time label to its last.
    const charts = () => page.$$eval("[data-testid=chart]", (cs) => cs.map((c) => ({
      range: c.getAttribute("data-range"),
      times: Array.from(c.querySelectorAll("[data-testid=chart-time]")).map((e) => e.textContent ?? ""),
      top: c.querySelector("[data-testid=chart-y-max]")?.textContent ?? "",
      title: c.querySelector("figcaption")?.firstChild?.textContent?.trim() ?? "",
      drawn: Array.from(c.querySelectorAll("svg path")).some((p) => (p.getAttribute("d") ?? "") !== ""),
    })));
    const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
    const span = (times: string[]) => (minutes(times[times.length - 1]!) - minutes(times[0]!) + 1440) % 1440;
    const utcMinute = () => minutes(new Date().toISOString().slice(11, 16));

    await page.goto(`${stack.uiUrl}/workers/${id}`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    const hour = await charts();
    expect(hour.map((c) => c.title)).toEqual(["Host CPU", "Host memory", "Jobs/min"]);
    for (const c of hour) {
      expect(c.range).toBe("1h");
      expect(c.times).toHaveLength(3);
      expect(c.times.slice(0, -1).every((t) => /^\d\d:\d\d$/.test(t)), c.times.join(" ")).toBe(true);
      expect(c.times[2]).toMatch(/^\d\d:\d\d UTC$/);
      expect(span(c.times)).toBe(59);
      // The last label is the minute in progress (this machine's clock is the server's; a minute may turn meanwhile).
      expect([0, 1]).toContain((utcMinute() - minutes(c.times[2]!) + 1440) % 1440);
    }
    // The worker has heartbeated for minutes: its CPU is drawn, on a 0–100 % scale whatever it is.
    expect(hour[0]!.drawn).toBe(true);
    expect(hour[0]!.top).toBe("100 %");
    // The keyboard reads a minute's values.
    await page.$eval("[data-testid=chart] svg", (e) => (e as SVGElement).focus());
    await page.keyboard.press("ArrowLeft");
    expect(await page.$eval("[data-testid=chart-readout]", (e) => e.textContent)).toMatch(/^\d\d:\d\d UTC: cpu (\d+(\.\d)? %|no data)$/);

    // The range choice is a link: the URL says it, the charts show 6 h in 5-minute buckets.
    await page.click('[data-testid=chart-range] a[data-range="6h"]');
    await page.waitForFunction(() => location.search === "?range=6h" && document.querySelector("[data-testid=chart]")?.getAttribute("data-range") === "6h", { timeout: 10_000 });
    const six = await charts();
    expect(six.map((c) => c.title)).toEqual(["Host CPU", "Host memory", "Jobs/5 min"]);
    for (const c of six) expect(span(c.times)).toBe(355);
    expect(await page.$eval('[data-testid=chart-range] a[aria-current="true"]', (e) => e.getAttribute("data-range"))).toBe("6h");
    // The live reloads (heartbeats are events) keep the range.
    await page.waitForResponse((res) => res.url().includes(`/workers/${id}/__data.json`) && res.url().includes("range=6h") && res.status() === 200, { timeout: 40_000 });
    expect((await charts()).every((c) => c.range === "6h")).toBe(true);
    // A reload keeps it (it is in the URL).
    await page.reload({ waitUntil: "networkidle0" });
    expect((await charts()).map((c) => [c.range, span(c.times)])).toEqual([["6h", 355], ["6h", 355], ["6h", 355]]);

    // A range that is none: the default, said so; never an error page.
    const bad = await page.goto(`${stack.uiUrl}/workers/${id}?range=7d`, { waitUntil: "networkidle0" });
    expect(bad?.status()).toBe(200);
    expect(await page.$eval("[data-testid=range-invalid]", (e) => e.textContent)).toContain('No range "7d": showing the last 1 h');
    expect((await charts()).map((c) => c.range)).toEqual(["1h", "1h", "1h"]);

    // The Overview takes the same: a day in 15-minute buckets.
    await page.goto(`${stack.uiUrl}/?range=24h`, { waitUntil: "networkidle0" });
    const day = await charts();
    expect(day.map((c) => c.title)).toEqual(["Jobs/15 min", "Failures/15 min", "Queue wait", "Run time"]);
    for (const c of day) expect([c.range, span(c.times)]).toEqual(["24h", 1425]);
    expect(await page.$eval(".chart-head h2", (e) => e.textContent)).toContain("per 15 min");
    await shot("overview-24h");
  }, 120_000);

  it("a reconnect's catch-up keeps what the page folded while the projector is behind (the rows replaced it: a completed job went back, or away)", async () => {
    await page.goto(`${stack.uiUrl}/jobs`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    const projector = stack.procs.get("projector")!.child.pid!;
    // Paused, the projector folds nothing: SQLite stays older than the page (a restart, a rebuild, a full disk).
    process.kill(projector, "SIGSTOP");
    try {
      const r = await post("/api/jobs", { url: `${stack.site.url}/product/6`, tags: ["e2e-catch-up"], scenario: { steps: [{ type: "wait", ms: 300 }] } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const row = `[data-job-id="${r.body.jobId as string}"]`;
      await page.waitForSelector(`${row}[data-status=completed]`, { timeout: 30_000 });
      await stack.wsProxy.cut();
      try {
        await page.waitForSelector('[data-testid=connection]:not([data-status=live])', { timeout: 15_000 });
      } finally {
        await stack.wsProxy.restore();
      }
      // The catch-up reload comes back with rows that lack the job.
      await page.waitForResponse((res) => res.url().includes("/jobs/__data.json"), { timeout: 30_000 });
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      expect(await page.$(`${row}[data-status=completed]`)).not.toBeNull();
    } finally {
      process.kill(projector, "SIGCONT");
    }
  }, 120_000);

  it("a job page opened while the projector is behind shows the job's end once the projector catches up, without a reload (it stayed running)", async () => {
    const url = `${stack.site.url}/product/7`;
    const r = await post("/api/jobs", {
      url, tags: ["e2e-behind"],
      scenario: { steps: [{ type: "navigate", url }, { type: "wait", ms: 3000 }, { type: "extract", fields: { title: { selector: "h1.title" } } }] },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const jobId = r.body.jobId as string;
    const liveNc = await stack.nats.connect("live", "test-behind");
    const completed = new Promise<void>((resolve) => {
      liveNc.subscribe(`troupe.evt.job.${jobId}.completed`, { max: 1, callback: () => resolve() });
    });
    await liveNc.flush();
    await waitFor("the job running in the read models", async () => (await api(`/api/jobs/${jobId}`)).body.job?.status === "running", 30_000, 100);
    const projector = stack.procs.get("projector")!.child.pid!;
    process.kill(projector, "SIGSTOP");
    let resumed = false;
    try {
      await completed;
      await liveNc.close();
      // SQLite still holds it running: the page renders that, and no later event of the job will come.
      expect((await api(`/api/jobs/${jobId}`)).body.job?.status, "the projector folded the end before it was paused: this run tests nothing").toBe("running");
      // The first data request of the page is its catch-up's reload; it comes back while the projector is still paused.
      const catchUpReload = page.waitForResponse((res) => res.url().includes(`/jobs/${jobId}/__data.json`), { timeout: 30_000 });
      await page.goto(`${stack.uiUrl}/jobs/${jobId}`, { waitUntil: "networkidle0" });
      await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
      expect(await page.$eval("[data-testid=job-status]", (e) => e.textContent)).toBe("running");
      await catchUpReload;
      expect(await page.$eval("[data-testid=job-status]", (e) => e.textContent)).toBe("running");
      // The note comes once the reload is rendered (not asserted here: the page without it must fail on its data below).
      const saidBehind = await page.waitForSelector("[data-testid=catch-up-behind]", { timeout: 10_000 }).then(() => true, () => false);
      if (saidBehind) await shot("job-page-behind");
      process.kill(projector, "SIGCONT");
      resumed = true;
      // Nothing of this job comes live any more: only a reload once the read models hold its end can show it.
      await page.waitForSelector("[data-testid=job-data]", { timeout: 30_000 });
      expect(await page.$eval("[data-testid=job-status]", (e) => e.textContent)).toBe("completed");
      expect(JSON.parse(await page.$eval("[data-testid=job-data]", (e) => e.textContent ?? "{}"))).toEqual({ title: "Umbrella #7" });
      expect(saidBehind, "the page did not say it may be behind while the projector was paused").toBe(true);
      await page.waitForFunction(() => document.querySelector("[data-testid=catch-up-behind]") === null, { timeout: 30_000 });
      expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    } finally {
      if (!resumed) process.kill(projector, "SIGCONT");
    }
  }, 120_000);

  it("a job page reached by a link from the Jobs list catches up too: the list saw the job complete, the page loaded from a projector behind (it stayed running)", async () => {
    const url = `${stack.site.url}/product/8`;
    const r = await post("/api/jobs", {
      url, tags: ["e2e-behind-link"],
      scenario: { steps: [{ type: "navigate", url }, { type: "wait", ms: 3000 }, { type: "extract", fields: { title: { selector: "h1.title" } } }] },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const jobId = r.body.jobId as string;
    await waitFor("the job running in the read models", async () => (await api(`/api/jobs/${jobId}`)).body.job?.status === "running", 30_000, 100);
    await page.goto(`${stack.uiUrl}/jobs`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    const row = `[data-job-id="${jobId}"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    const projector = stack.procs.get("projector")!.child.pid!;
    process.kill(projector, "SIGSTOP");
    let resumed = false;
    try {
      // The list follows the job live to its end; SQLite keeps it running.
      await page.waitForSelector(`${row}[data-status=completed]`, { timeout: 30_000 });
      expect((await api(`/api/jobs/${jobId}`)).body.job?.status, "the projector folded the end before it was paused: this run tests nothing").toBe("running");
      await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
      // A link: SvelteKit loads the page's data and renders it in the same document; the connection stays.
      await page.click(`${row} a[href="/jobs/${jobId}"]`);
      await page.waitForFunction((id) => location.pathname === `/jobs/${id}`, { timeout: 10_000 }, jobId);
      await page.waitForSelector("[data-testid=job-status]", { timeout: 10_000 });
      expect(await page.$eval("[data-testid=job-status]", (e) => e.textContent)).toBe("running");
      // Its catch-up finds the read models behind (5 s bound) and says so.
      const saidBehind = await page.waitForSelector("[data-testid=catch-up-behind]", { timeout: 30_000 }).then(() => true, () => false);
      process.kill(projector, "SIGCONT");
      resumed = true;
      await page.waitForSelector("[data-testid=job-data]", { timeout: 30_000 });
      expect(await page.$eval("[data-testid=job-status]", (e) => e.textContent)).toBe("completed");
      expect(saidBehind, "the page did not say it may be behind while the projector was paused").toBe(true);
      await page.waitForFunction(() => document.querySelector("[data-testid=catch-up-behind]") === null, { timeout: 30_000 });
      expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    } finally {
      if (!resumed) process.kill(projector, "SIGCONT");
    }
  }, 150_000);
});

describe("Jobs", () => {
  it("a submitted job's progress bar advances live, and its detail page shows the extracted data and the screenshot", async () => {
    await page.goto(`${stack.uiUrl}/jobs`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    const url = `${stack.site.url}/product/3`;
    const r = await post("/api/jobs", {
      url, tags: ["e2e"],
      scenario: { title: "e2e product", steps: [
        { type: "navigate", url }, { type: "wait", ms: 700 }, { type: "scroll", y: 200 }, { type: "wait", ms: 700 },
        { type: "extract", fields: { title: { selector: "h1.title" }, price: { selector: ".price" } } },
        { type: "screenshot", label: "product" },
      ] },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const jobId = r.body.jobId as string;
    const row = `[data-job-id="${jobId}"]`;
    // The row appears without reload (job.submitted), then its bar moves.
    await page.waitForSelector(row, { timeout: 5000 });
    await page.evaluate((sel) => {
      const w = window as unknown as { __progress: number[] };
      w.__progress = [];
      const record = () => {
        const v = Number(document.querySelector(`${sel} [data-testid=job-progress]`)?.getAttribute("data-progress"));
        if (Number.isFinite(v) && w.__progress[w.__progress.length - 1] !== v) w.__progress.push(v);
      };
      new MutationObserver(record).observe(document.body, { subtree: true, attributes: true, childList: true });
      record();
    }, row);
    await page.waitForSelector(`${row}[data-status=completed]`, { timeout: 60_000 }).catch(async (e) => {
      throw new Error(`${(e as Error).message}\nworker:\n${tail(stack, "worker-01")}\nmaster:\n${tail(stack, "master")}`);
    });
    const progress = await page.evaluate(() => (window as unknown as { __progress: number[] }).__progress);
    expect(progress.some((p) => p > 0 && p < 100), `progress values seen: ${progress.join(", ")}`).toBe(true);
    expect(progress[progress.length - 1]).toBe(100);
    await shot("jobs");

    await page.goto(`${stack.uiUrl}/jobs/${jobId}`, { waitUntil: "networkidle0" });
    await page.waitForSelector("[data-testid=job-data]", { timeout: 10_000 });
    const data = JSON.parse(await page.$eval("[data-testid=job-data]", (e) => e.textContent ?? "{}")) as Record<string, unknown>;
    expect(data.title).toBe("Desk lamp #3");
    expect(data.price).toMatch(/^\$\d+\.\d\d$/);
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>("[data-testid=screenshot]");
      return img !== null && img.complete && img.naturalWidth > 0;
    }, { timeout: 10_000 });
    const src = await page.$eval("[data-testid=screenshot]", (e) => e.getAttribute("src") ?? "");
    const img = await fetch(`${stack.uiUrl}${src}`);
    expect(img.status).toBe(200);
    expect(img.headers.get("content-type")).toBe("image/png");
    await shot("job-detail");
  }, 120_000);

  it("a failed job's page shows the screenshot of its page at the failure (job.failed names it; the page showed a completed job's only)", async () => {
    const url = `${stack.site.url}/product/5`;
    // An assertion: final, so the job stays failed (a retryable failure is requeued). Step 3: the job's url is step 1.
    const r = await post("/api/jobs", { url, scenario: { steps: [{ type: "navigate", url }, { type: "assert", title: "not this page", timeout: 2000 }] } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const jobId = r.body.jobId as string;
    await waitFor("the job failed in the read model", async () => (await api(`/api/jobs/${jobId}`)).body.job?.status === "failed", 90_000).catch((e: Error) => {
      throw new Error(`${e.message}\nworker:\n${tail(stack, "worker-01")}\nmaster:\n${tail(stack, "master")}`);
    });
    await page.goto(`${stack.uiUrl}/jobs/${jobId}`, { waitUntil: "networkidle0" });
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>("[data-testid=screenshot]");
      return img !== null && img.complete && img.naturalWidth > 0;
    }, { timeout: 10_000 });
    expect(await page.$$eval("[data-testid=screenshot]", (imgs) => imgs.map((i) => i.getAttribute("alt")))).toEqual([expect.stringMatching(new RegExp(`^${jobId}/\\d+/003-failed\\.png$`))]);
    expect(await page.$eval("[data-testid=logs]", (e) => e.textContent ?? "")).toMatch(/at the failure the page was at http:\/\/\S+\/product\/5 \(title /);
  }, 120_000);

  it("a screenshot whose chunks the store's retention removed answers 410 gone, and the job page shows it as not available", async () => {
    const url = `${stack.site.url}/product/6`;
    const r = await post("/api/jobs", { url, scenario: { steps: [{ type: "navigate", url }, { type: "screenshot", label: "expiring" }] } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const jobId = r.body.jobId as string;
    const job = await waitFor(`${jobId} completed`, async () => {
      const j = (await api(`/api/jobs/${jobId}`)).body.job as { status: string; result?: { screenshots: string[] } } | undefined;
      return j?.status === "completed" ? j : undefined;
    }, 60_000, 100);
    const name = job.result!.screenshots[0]!;
    expect((await fetch(`${stack.uiUrl}/artifacts/${name}`)).status).toBe(200);
    // What a max age or size cap does to the oldest object: its chunks go before its metadata (one is enough here).
    const nc = await stack.nats.connect("master", "test-expire");
    const info = await (await new Objm(nc).open("troupe-artifacts")).info(name);
    const jsm = await jetstreamManager(nc);
    const chunk = await jsm.streams.getMessage("OBJ_troupe-artifacts", { last_by_subj: `$O.troupe-artifacts.C.${info!.nuid}` });
    expect(await jsm.streams.deleteMessage("OBJ_troupe-artifacts", chunk!.seq)).toBe(true);
    const gone = await api(`/artifacts/${name}`);
    expect(gone.status).toBe(410);
    expect(gone.body.error.code).toBe("gone");
    expect(gone.body.error.message).toMatch(new RegExp(`no longer stored: ${info!.chunks - 1} of its ${info!.chunks} chunks are left`));
    await page.goto(`${stack.uiUrl}/jobs/${jobId}`, { waitUntil: "networkidle0" });
    await page.waitForSelector("[data-testid=screenshot-gone]", { timeout: 10_000 });
    expect(await page.$eval("[data-testid=screenshot-gone]", (e) => e.textContent)).toContain(`${name}: not available`);
    expect(await page.$$eval("[data-testid=screenshot]", (imgs) => imgs.length)).toBe(0);
  }, 120_000);

  it("the job page renders a result whose screenshots and steps repeat (the contract allows it; the page used to throw and stop updating)", async () => {
    const url = `${stack.site.url}/product/4`;
    const r = await post("/api/jobs", { url, scenario: { steps: [{ type: "navigate", url }, { type: "wait", ms: 60_000 }] } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const jobId = r.body.jobId as string;
    const { js } = await stack.nats.js("worker");
    const step = { index: 0, type: "screenshot", status: "ok" as const, durationMs: 5 };
    // The result, in the name of the worker running it and for the attempt it runs (on a loaded machine an
    // assignment can time out and the job run again as a later attempt): sent once per attempt seen running.
    const sent = new Set<string>();
    let forged: { workerId: string; attempt: number } | undefined;
    await waitFor("the repeated result completed in the read model", async () => {
      const j = (await api(`/api/jobs/${jobId}`)).body.job as { status: string; workerId: string; attempt: number } | undefined;
      if (j?.status === "completed") return true;
      const key = `${j?.workerId}#${j?.attempt}`;
      if (j?.status !== "running" || sent.has(key)) return false;
      // The attempt's token (the fold takes a worker's events only with it), read from the log as a log reader can:
      // the worker's job.started carries it.
      const started = await (await jetstreamManager(await stack.nats.connect("ui", "test-token"))).streams.getMessage("TROUPE_EVENTS", { last_by_subj: `troupe.evt.job.${jobId}.started` }).catch(() => null);
      const s = started?.json<{ data: { attempt: number; token?: string } }>().data;
      if (s?.attempt !== j.attempt) return false;
      sent.add(key);
      forged = { workerId: j.workerId, attempt: j.attempt };
      await publishEvent(js, createEvent("job.completed", {
        jobId, workerId: j.workerId, attempt: j.attempt, ...(s.token !== undefined ? { token: s.token } : {}),
        result: { success: true, data: {}, dataExtracted: 0, screenshots: ["same.png", "same.png"], logs: [], steps: [step, step] },
        metrics: { totalDuration: 10, responseTime: 1, memoryUsed: 1 },
      }, j.workerId) as TroupeEvent);
      return false;
    }, 90_000, 100).catch((e: Error) => {
      throw new Error(`${e.message} (sent for ${[...sent].join(", ")})\nmaster:\n${tail(stack, "master")}\nworker-01:\n${tail(stack, "worker-01")}`);
    });
    const errors: string[] = [];
    const onError = (e: unknown) => errors.push((e as Error).message);
    page.on("pageerror", onError);
    try {
      await page.goto(`${stack.uiUrl}/jobs/${jobId}`, { waitUntil: "networkidle0" });
      await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
      // Both reported timings (same index), then the job's steps the result never reached: its scenario's navigate and
      // wait, after the job's url (step 1, as the worker counts).
      expect(await page.$$eval("[data-testid=steps] tbody tr", (rows) => rows.map((r) => r.getAttribute("data-status")))).toEqual(["ok", "ok", "not run", "not run"]);
      expect(await page.$$eval("[data-testid=step-summary]", (cells) => cells.map((c) => c.textContent))).toEqual([url, url, url, "60000 ms"]);
      // Both shown, as not available: no such object was ever stored.
      await page.waitForFunction(() => document.querySelectorAll("[data-testid=screenshot-gone]").length === 2, { timeout: 10_000 });
      expect(await page.$$eval("[data-testid=screenshot]", (imgs) => imgs.length)).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      page.off("pageerror", onError);
      // The worker still runs the attempt the forged result ended (its 60 s wait): free its slot for the next tests.
      if (forged) {
        const nc = await stack.nats.connect("master", "test-cancel-forged");
        await nc.request(`troupe.worker.${forged.workerId}.cancel`, JSON.stringify({ jobId, attempt: forged.attempt, reason: "test over" }), { timeout: 5000 }).catch(() => undefined);
      }
    }
  }, 120_000);
});

describe("job page layout", () => {
  it("wraps a long URL inside its card instead of cutting its end off", async () => {
    const url = `${stack.site.url}/product/29?${"q=very-long-query-value&".repeat(12)}end=29`;
    const r = await post("/api/jobs", { url, workerLabels: ["nobody-has-this"] });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    await waitFor("the job in GET /api/jobs/<id>", async () => (await api(`/api/jobs/${r.body.jobId}`)).status === 200, 15_000, 100);
    await page.goto(`${stack.uiUrl}/jobs/${r.body.jobId}`, { waitUntil: "networkidle0" });
    const box = await page.$eval("[data-testid=job-url]", (dd) => {
      const card = dd.closest(".card")!.getBoundingClientRect();
      const own = dd.getBoundingClientRect();
      return { text: dd.textContent, right: own.right, cardRight: card.right, overflow: dd.scrollWidth - dd.clientWidth };
    });
    expect(box.text).toBe(url);
    expect(box.right).toBeLessThanOrEqual(box.cardRight);
    expect(box.overflow).toBeLessThanOrEqual(0);
    await shot("job-long-url");
    expect((await post(`/api/jobs/${r.body.jobId}/cancel`, {})).status).toBe(200);
  });
});

describe("jobs no live worker can take", () => {
  it("the Overview and the job's page say which labels or browser no live worker has, and the note goes once the job is cancelled", async () => {
    const r = await post("/api/jobs", { url: `${stack.site.url}/product/31`, workerLabels: ["no-worker-has-this"] });
    const b = await post("/api/jobs", { url: `${stack.site.url}/product/32`, browser: "firefox" });
    expect([r.status, b.status], JSON.stringify([r.body, b.body])).toEqual([201, 201]);
    await waitFor("the jobs in the read models", async () => (await api(`/api/jobs/${b.body.jobId}`)).status === 200 && (await api(`/api/jobs/${r.body.jobId}`)).status === 200, 15_000, 100);
    await page.goto(stack.uiUrl, { waitUntil: "networkidle0" });
    const warnings = await page.$$eval("[data-testid=warning]", (els) => els.map((e) => e.textContent ?? ""));
    expect(warnings).toContainEqual(expect.stringMatching(/1 queued job asks for label no-worker-has-this, which no live worker has/));
    expect(warnings).toContainEqual(expect.stringMatching(/1 queued job asks for browser "firefox", which no live worker has/));
    // The store's use against nats-server's limit (from its monitoring endpoint: the account's own limit is -1).
    const jsz = (await (await fetch(`${stack.nats.monitorUrl}/jsz`)).json()) as { config: { max_storage: number } };
    expect(await page.$eval("[data-testid=storage]", (e) => e.textContent)).toMatch(new RegExp(`^[\\d.]+ (?:[KMGT]i)?B of ${formatBytes(jsz.config.max_storage).replace(".", "\\.")} \\(\\d+ %\\)$`));
    await page.goto(`${stack.uiUrl}/jobs/${r.body.jobId}`, { waitUntil: "networkidle0" });
    expect(await page.$eval("[data-testid=job-waiting-for]", (e) => e.textContent)).toMatch(/asks for label no-worker-has-this, which no live worker has/);
    // The API says it too (a CLI or API user could not see why a job waited).
    expect((await api(`/api/jobs/${r.body.jobId}`)).body.waitingFor).toBe("label no-worker-has-this");
    await shot("job-waiting-for");
    expect((await post(`/api/jobs/${r.body.jobId}/cancel`, { reason: "no such worker coming" })).status).toBe(200);
    expect((await post(`/api/jobs/${b.body.jobId}/cancel`, {})).status).toBe(200);
    // Live: the page follows the cancellation and drops the note.
    await page.waitForFunction(() => !document.querySelector("[data-testid=job-waiting-for]"), { timeout: 10_000 });
    // Why it ended is part of the job (it was only in the event).
    await waitFor("the cancellation in the read models", async () => (await api(`/api/jobs/${r.body.jobId}`)).body.job?.status === "cancelled", 15_000, 100);
    expect((await api(`/api/jobs/${r.body.jobId}`)).body.job.endReason).toBe("no such worker coming");
    expect((await api(`/api/jobs/${r.body.jobId}`)).body).not.toHaveProperty("waitingFor");
    await page.reload({ waitUntil: "networkidle0" });
    expect(await page.$eval("[data-testid=job-end-reason]", (e) => e.textContent)).toBe("no such worker coming");
  });
});

describe("job and worker actions", () => {
  it("Cancel stops a running job once confirmed in the page (Keep and Escape send nothing; no browser dialog) and Retry redrives a failed one, both from the job page, the status following live", async () => {
    const url = `${stack.site.url}/product/5`;
    const slow = await post("/api/jobs", { url, tags: ["e2e-cancel"], scenario: { steps: [{ type: "wait", ms: 30_000 }] } });
    expect(slow.status, JSON.stringify(slow.body)).toBe(201);
    await page.goto(`${stack.uiUrl}/jobs/${slow.body.jobId}`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector("[data-testid=job-status]")?.textContent === "running", { timeout: 30_000 });
    // The Overview counts its slot as busy from the log, not from the worker's next heartbeat.
    const overview = await stack.browser.newPage();
    try {
      await overview.goto(`${stack.uiUrl}/`, { waitUntil: "networkidle0" });
      await overview.waitForFunction(() => Number(document.querySelector("[data-testid=slots-busy]")?.textContent?.split("/")[0]) >= 1, { timeout: 15_000 });
    } finally {
      await overview.close();
    }
    // Cancel asks first, in the page, as Drain and the bulk actions do (a cancel is for good): kept (its button or
    // Escape), nothing is sent and the job runs on; confirmed, it cancels. No browser dialog at any point.
    const cancels: string[] = [];
    const dialogs: string[] = [];
    const onRequest = (r: HTTPRequest) => void (r.method() === "POST" && r.url().endsWith("/cancel") && cancels.push(r.url()));
    const onDialog = (d: Dialog) => void (dialogs.push(d.message()), d.dismiss());
    page.on("request", onRequest);
    page.on("dialog", onDialog);
    const asked = async () => {
      await page.click("[data-testid=cancel]");
      await page.waitForSelector("[data-testid=cancel-confirm]", { visible: true, timeout: 5000 });
      await expectFocus(page, "cancel-confirm-yes");
      expect(await page.$eval("[data-testid=cancel]", (e) => e.getAttribute("aria-expanded"))).toBe("true");
    };
    try {
      await asked();
      // The question names the job, its status and progress, what a cancel takes away, and both choices.
      expect(await page.$eval("#cancel-confirm-title", (e) => e.textContent)).toMatch(new RegExp(`^Cancel job ${slow.body.jobId} \\(running, \\d+ %\\)\\?$`));
      expect(await page.$eval("[data-testid=cancel-confirm]", (e) => e.textContent)).toContain("A cancelled job cannot be retried.");
      expect(await page.$$eval("[data-testid=cancel-confirm] button", (bs) => bs.map((b) => b.textContent))).toEqual(["Cancel job", "Keep it running"]);
      // A second click while it asks: still one question, focus back on its confirm button, nothing sent.
      await page.click("[data-testid=cancel]");
      expect(await page.$$("[data-testid=cancel-confirm]")).toHaveLength(1);
      await expectFocus(page, "cancel-confirm-yes");
      await shot("job-cancel-confirm");
      // Keep: the question goes, focus returns to Cancel, nothing was sent, the job still runs.
      await page.click("[data-testid=cancel-confirm-no]");
      await page.waitForSelector("[data-testid=cancel-confirm]", { hidden: true, timeout: 5000 });
      await expectFocus(page, "cancel");
      expect(await page.$eval("[data-testid=cancel]", (e) => e.getAttribute("aria-expanded"))).toBe("false");
      // Escape likewise.
      await asked();
      await page.keyboard.press("Escape");
      await page.waitForSelector("[data-testid=cancel-confirm]", { hidden: true, timeout: 5000 });
      await expectFocus(page, "cancel");
      expect(cancels).toEqual([]);
      expect(await page.$eval("[data-testid=job-status]", (e) => e.textContent)).toBe("running");
      expect((await api(`/api/jobs/${slow.body.jobId}`)).body.job.status).toBe("running");
      // Confirmed: it cancels.
      await asked();
      await page.click("[data-testid=cancel-confirm-yes]");
      await page.waitForFunction(() => document.querySelector("[data-testid=job-status]")?.textContent === "cancelled", { timeout: 15_000 });
      // Finished: no button left that cannot act (a disabled Cancel still looked like the page's main action).
      expect(await page.$eval("[data-testid=no-action]", (e) => e.textContent)).toBe("cancelled: nothing to cancel or retry");
      expect([await page.$("[data-testid=cancel]"), await page.$("[data-testid=retry]"), await page.$("[data-testid=cancel-confirm]")]).toEqual([null, null, null]);
      // One request: the kept questions sent none.
      expect(cancels).toEqual([`${stack.uiUrl}/api/jobs/${slow.body.jobId}/cancel`]);
      expect(dialogs).toEqual([]);
    } finally {
      page.off("request", onRequest);
      page.off("dialog", onDialog);
    }
    // The cancelled job keeps how far it got, shown stopped (greyed), not as a bar still under way: here and in the list.
    await page.waitForSelector("[data-testid=job-progress][data-stopped]", { timeout: 5000 });
    expect(await page.$eval("[data-testid=job-progress-text]", (e) => e.textContent)).toMatch(/^stopped at \d+ %$/);
    await page.goto(`${stack.uiUrl}/jobs?q=${slow.body.jobId}`, { waitUntil: "networkidle0" });
    // The row may come from a projector a moment behind: the page's catch-up turns it cancelled.
    const bar = await page.waitForSelector(`[data-job-id="${slow.body.jobId}"][data-status=cancelled] [data-testid=job-progress][data-stopped]`, { timeout: 15_000 });
    expect(await bar!.evaluate((e) => e.parentElement?.getAttribute("title"))).toMatch(/^stopped at \d+ %$/);

    const failing = await post("/api/jobs", { url, maxAttempts: 1, tags: ["e2e-retry"], scenario: { steps: [{ type: "assert", selector: "#checkout", timeout: 500 }] } });
    expect(failing.status, JSON.stringify(failing.body)).toBe(201);
    await page.goto(`${stack.uiUrl}/jobs/${failing.body.jobId}`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    await page.waitForFunction(() => ["failed", "dead"].includes(document.querySelector("[data-testid=job-status]")?.textContent ?? ""), { timeout: 30_000 }).catch(async (e: Error) => {
      // Say where the job got stuck (a fresh-clone run once timed out here, and did not tell why).
      const job = await api(`/api/jobs/${failing.body.jobId}`).catch(() => null);
      const shown = await page.$eval("[data-testid=job-status]", (el) => el.textContent).catch(() => "?");
      throw new Error(`${e.message}\npage shows ${shown}; API: ${JSON.stringify(job?.body.job ?? null).slice(0, 1500)}\nmaster:\n${tail(stack, "master", 40)}\n${[...stack.logs.keys()].filter((n) => n.startsWith("worker")).map((n) => `${n}:\n${tail(stack, n, 25)}`).join("\n")}`);
    });
    await shot("job-failed");
    // The step is named once (the message starts with it), not repeated after it.
    expect(await page.$eval("[data-testid=job-error]", (e) => e.textContent)).toMatch(/^\[assertion\] step 2 \(assert\): [^()]*#checkout[^()]*$/);
    await page.click("[data-testid=retry]");
    // The redrive requeues it as a new attempt, which runs (and fails) again: the page shows it in its attempts. (Waiting
    // for a status other than failed could miss it: a stall here can bring requeued…failed in one batch.)
    await page.waitForFunction(() => document.querySelectorAll("[data-testid=attempts] tbody tr").length >= 2, { timeout: 30_000 });
    // The page follows NATS directly; the API reads what the projector has folded, a moment later.
    await waitFor("the redrive's new attempt in GET /api/jobs/<id>", async () => (await api(`/api/jobs/${failing.body.jobId}`)).body.job.attempt > 1, 15_000, 100);
    expect(await page.$("[data-testid=action-error]")).toBeNull();
  }, 120_000);

  it("the Overview's Top errors groups the failed attempts by error, shows a new failure without a reload, its message as text, and links a job of it; GET /api/errors agrees", async () => {
    await page.goto(`${stack.uiUrl}/`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    // The job retried above failed twice with an assertion on #checkout: one group for both attempts.
    await page.waitForSelector("[data-testid=top-errors] [data-testid=error-group][data-code=assertion]", { timeout: 15_000 });
    const reloads = await page.evaluate(() => ((window as unknown as { e2eNoReload: number }).e2eNoReload = 1));
    // A failure whose message holds markup (its selector): a group of its own, shown as the text it is.
    // No digit in it: a word with one is normalised to <id>.
    const selector = '[data-top-error="<b>boom</b>"]';
    const failing = await post("/api/jobs", { url: `${stack.site.url}/product/7`, maxAttempts: 1, tags: ["e2e-top-error"], scenario: { steps: [{ type: "assert", selector, timeout: 500 }] } });
    expect(failing.status, JSON.stringify(failing.body)).toBe(201);
    // Without a reload: the Overview reloads its aggregates while events arrive. The row is the group whose message holds the selector.
    const rowOf = (s: string) => Array.from(document.querySelectorAll("[data-testid=top-errors] [data-testid=error-group]")).find((e) => e.querySelector("[data-testid=error-message]")?.textContent?.includes(s));
    await page.waitForFunction(`(${rowOf.toString()})(${JSON.stringify(selector)}) !== undefined`, { timeout: 30_000 });
    expect(await page.evaluate(() => (window as unknown as { e2eNoReload?: number }).e2eNoReload)).toBe(reloads);
    const shown = await page.evaluate(`(() => { const e = (${rowOf.toString()})(${JSON.stringify(selector)}); return {
      code: e.getAttribute("data-code"), count: e.getAttribute("data-count"), workers: e.getAttribute("data-workers"),
      markup: e.querySelector("[data-testid=error-message] b") !== null,
      text: e.querySelector("[data-testid=error-message]").textContent,
      href: e.querySelector("[data-testid=error-example]").getAttribute("href") }; })()`) as Record<string, unknown>;
    expect(shown).toMatchObject({ code: "assertion", count: "1", workers: "1", markup: false, href: `/jobs/${failing.body.jobId}` });
    await shot("overview-top-errors");
    // The API gives the same group.
    const errors = await api("/api/errors");
    expect(errors.status).toBe(200);
    const group = errors.body.groups.find((g: { message: string }) => g.message.includes(selector));
    expect(group).toMatchObject({ code: "assertion", count: 1, workers: 1, example: { jobId: failing.body.jobId, attempt: 1 } });
    expect(shown.text).toBe(group.message);
    // The example link opens the job, which says the same error.
    await page.click(`[data-testid=error-example][href="/jobs/${failing.body.jobId}"]`);
    await page.waitForFunction((id) => location.pathname === `/jobs/${id}`, { timeout: 10_000 }, failing.body.jobId);
    await page.waitForFunction((s) => document.querySelector("[data-testid=job-error]")?.textContent?.includes(s), { timeout: 10_000 }, selector);
  }, 60_000);

  it("Drain on the worker page asks first (the jobs it runs, live; Escape and Keep running send nothing), then turns the worker draining and its running job fails as retryable (drained) and is requeued; Resume turns it back (live); the API refuses an unknown worker", async () => {
    await workerListed("wn-e2e-03");
    await page.goto(`${stack.uiUrl}/workers/wn-e2e-03`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    // Every drain the page posts.
    const drains: string[] = [];
    const onRequest = (r: HTTPRequest) => {
      if (r.method() === "POST" && new URL(r.url()).pathname.endsWith("/drain")) drains.push(r.url());
    };
    page.on("request", onRequest);
    const asked = async () => {
      await page.click("[data-testid=drain]");
      await page.waitForSelector("[data-testid=drain-confirm]", { visible: true, timeout: 5000 });
      await expectFocus(page, "drain-confirm-yes");
      expect(await page.$eval("[data-testid=drain]", (e) => e.getAttribute("aria-expanded"))).toBe("true");
    };
    let jobId: string | undefined;
    try {
      // The first click only asks, and says what a drain does.
      await asked();
      // A second click while it asks: the same question, focus back on "Drain now".
      await page.click("[data-testid=drain]");
      expect(await page.$$("[data-testid=drain-confirm]")).toHaveLength(1);
      await expectFocus(page, "drain-confirm-yes");
      expect(await page.$eval("[data-testid=drain-running]", (e) => e.textContent)).toBe("0");
      const text = await page.$eval("[data-testid=drain-confirm]", (e) => e.textContent?.replace(/\s+/g, " ") ?? "");
      expect(text).toContain("takes no new jobs");
      expect(text).toMatch(/grace period.*fail as retryable.*requeued/);
      // A job only this worker can take (its label n=03) runs while the question is open: the figure follows it live.
      const r = await post("/api/jobs", { url: `${stack.site.url}/product/8`, tags: ["e2e-drain"], workerLabels: ["n=03"], scenario: { steps: [{ type: "wait", ms: 60_000 }] } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      jobId = r.body.jobId as string;
      await page.waitForFunction(() => document.querySelector("[data-testid=drain-running]")?.textContent === "1", { timeout: 30_000 });
      await page.waitForFunction((id) => document.querySelector(`[data-job-id="${id}"]`)?.getAttribute("data-status") === "running", { timeout: 30_000 }, jobId);
      await shot("worker-drain-confirm");
      // Escape takes it back, focus returns to Drain; so does Keep running. Nothing was sent.
      await page.keyboard.press("Escape");
      await page.waitForSelector("[data-testid=drain-confirm]", { hidden: true, timeout: 5000 });
      await expectFocus(page, "drain");
      await asked();
      await page.click("[data-testid=drain-confirm-no]");
      await page.waitForSelector("[data-testid=drain-confirm]", { hidden: true, timeout: 5000 });
      await expectFocus(page, "drain");
      expect(drains).toEqual([]);
      expect(["online", "busy"]).toContain(await page.$eval("[data-testid=worker-status]", (e) => e.textContent));
      // Drain now drains.
      await asked();
      await page.click("[data-testid=drain-confirm-yes]");
      await page.waitForFunction(() => document.querySelector("[data-testid=worker-status]")?.textContent === "draining", { timeout: 15_000 });
      expect(drains).toHaveLength(1);
      expect(await page.$("[data-testid=drain-confirm]")).toBeNull();
      await page.waitForFunction(() => document.activeElement?.getAttribute("data-testid") === "resume", { timeout: 5000 });
      // What the confirmation said: past the grace (2 s here) the running job failed as retryable and was requeued.
      const id = jobId;
      const job = await waitFor(`${id} requeued after the drain's grace`, async () => {
        const j = (await api(`/api/jobs/${id}`)).body.job as { status: string; history: { attempt: number; outcome?: string; error?: { code?: string; retryable?: boolean } }[] } | undefined;
        // Failed first, then requeued by the master (a moment later in the read models).
        return j && j.history[0]?.outcome === "failed" && j.status === "requeued" ? j : undefined;
      }, 30_000, 200);
      expect(job.history[0]?.error).toMatchObject({ code: "drained", retryable: true });
    } finally {
      page.off("request", onRequest);
      if (jobId) await post(`/api/jobs/${jobId}/cancel`, {});
    }
    expect(await page.$eval("[data-testid=worker-tokens]", (e) => e.textContent)).toBe("yes");
    // The e2e workers run without TROUPE_ALLOW_SCRIPT_STEPS: the master offers them no script job, and the page says so.
    expect(await page.$eval("[data-testid=worker-script-steps]", (e) => e.textContent)).toBe("not allowed (TROUPE_ALLOW_SCRIPT_STEPS): no job with a page-JavaScript step");
    await shot("worker-draining");
    expect(await page.$("[data-testid=drain]")).toBeNull();
    await page.click("[data-testid=resume]");
    await page.waitForFunction(() => ["online", "busy"].includes(document.querySelector("[data-testid=worker-status]")?.textContent ?? ""), { timeout: 15_000 });
    expect(await page.$("[data-testid=action-error]")).toBeNull();
    await waitFor("the API to show it online again", async () => ["online", "busy"].includes((await api("/api/workers/wn-e2e-03")).body.worker?.status), 15_000, 100);
    const r = await post("/api/workers/wn-nobody/drain", {});
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body).toMatchObject({ success: false, error: { code: expect.any(String), message: expect.any(String) } });
    expect(await post("/api/workers/wn-nobody/resume", {})).toMatchObject({ status: 404, body: { success: false, error: { code: "not-found" } } });
    expect(await post("/api/workers/wn-e2e-03/resume", { reason: "not a field of resume" })).toMatchObject({ status: 400, body: { success: false, error: { code: "invalid" } } });
  }, 120_000);
});

describe("bulk actions", () => {
  /** Runs `troupe <args>` against the stack (its NATS, and the data dir the projector writes its read models in). */
  const troupeCli = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
      execFile(process.execPath, [fileURLToPath(new URL("../../bin/troupe.mjs", import.meta.url)), ...args], { env: { ...process.env, ...stack.nats.env() } }, (e, stdout, stderr) =>
        res({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
  const statusesOf = async (ids: string[]) => Promise.all(ids.map(async (id) => (await api(`/api/jobs/${id}`)).body.job as { status: string; attempt: number; error?: { retryable?: boolean } }));
  // Failed for good (a retryable failure with attempts left is requeued next: a dry run a moment later missed it), or dead.
  const settled = (j: { status: string; error?: { retryable?: boolean } }) => (j.status === "failed" && j.error?.retryable === false) || j.status === "dead";

  it("\"Retry all\" on the Jobs page asks in the page (Keep sends nothing, a second click no second dry run), then redrives every failed job matching the search that it counted, and only those; the API refuses a bulk request without a status", async () => {
    const suffix = Date.now().toString(36);
    const tag = `e2e-bulk-${suffix}`;
    // A failed assert is final at once; two attempts so that a worker taken for lost on a loaded machine (heartbeat
    // 1 s here) does not make one of them dead instead (CI saw three failed and one dead).
    // 1 s: the first check of the page is answered on a loaded machine (else the step is a retryable timeout).
    const failing = (t: string) => post("/api/jobs", { url: `${stack.site.url}/product/6`, maxAttempts: 2, tags: [t], scenario: { steps: [{ type: "assert", selector: "#checkout", timeout: 1000 }] } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await failing(tag)).body.jobId);
    const other = (await failing(`e2e-keep-${suffix}`)).body.jobId as string;
    expect(ids.every(Boolean) && other).toBeTruthy();
    const ended = await waitFor("the four jobs failed in GET /api/jobs/<id>", async () => {
      const jobs = await statusesOf([...ids, other]);
      return jobs.every(settled) ? jobs : null;
    }, 60_000, 200);
    const status = ended[0]!.status;
    expect(ended.map((j) => j.status)).toEqual([status, status, status, status]);

    // The API: a dry run lists the matches and sends nothing.
    const dry = await post("/api/bulk/retry", { status, q: tag, dryRun: true });
    expect(dry.status, JSON.stringify(dry.body)).toBe(200);
    expect(dry.body).toMatchObject({ success: true, action: "retry", matched: 3, more: false, dryRun: true });
    expect([...dry.body.jobIds].sort()).toEqual([...ids].sort());
    // Bad requests name the field.
    expect(await post("/api/bulk/retry", { q: tag })).toMatchObject({ status: 400, body: { success: false, error: { code: "invalid", field: "status" } } });
    expect(await post("/api/bulk/retry", { status: "completed" })).toMatchObject({ status: 400, body: { error: { field: "status" } } });
    expect(await post("/api/bulk/cancel", { status: "queued", limit: 0 })).toMatchObject({ status: 400, body: { error: { field: "limit" } } });
    expect(await post("/api/bulk/delete", { status: "dead" })).toMatchObject({ status: 404, body: { error: { code: "not-found" } } });
    // Nothing was sent: every job still on the attempt it ended with.
    expect((await statusesOf([...ids, other])).map((j) => j.attempt)).toEqual(ended.map((j) => j.attempt));

    await page.goto(`${stack.uiUrl}/jobs?status=${status}&q=${tag}`, { waitUntil: "networkidle0" });
    // The filter says how many jobs each status holds (it said nowhere): at least the four above in theirs.
    const chosen = await page.$eval("[data-testid=job-status-filter]", (el) => (el as HTMLSelectElement).selectedOptions[0]?.textContent ?? "");
    expect(chosen).toMatch(new RegExp(`^${status} \\(\\d+\\)$`));
    expect(Number(/\((\d+)\)/.exec(chosen)![1])).toBeGreaterThanOrEqual(4);
    // Asked in the page: every bulk request the page sends (its dry runs send nothing), and any browser dialog.
    const sent: boolean[] = [];
    const dialogs: string[] = [];
    const onRequest = (r: HTTPRequest) => void (r.method() === "POST" && new URL(r.url()).pathname === "/api/bulk/retry" && sent.push(JSON.parse(r.postData() ?? "{}").dryRun === true));
    const onDialog = (d: Dialog) => void (dialogs.push(d.message()), d.dismiss());
    page.on("request", onRequest);
    page.on("dialog", onDialog);
    const asked = async () => {
      await page.click("[data-testid=bulk-retry]");
      await page.waitForSelector("[data-testid=bulk-confirm]", { visible: true, timeout: 10_000 });
      await expectFocus(page, "bulk-confirm-yes");
      expect(await page.$eval("[data-testid=bulk-retry]", (e) => e.getAttribute("aria-expanded"))).toBe("true");
      expect(await page.$eval("#bulk-confirm-title", (e) => e.textContent)).toBe(`Retry 3 ${status} jobs matching “${tag}”?`);
    };
    let late = "";
    try {
      await asked();
      expect(await page.$$eval("[data-testid=bulk-confirm] button", (bs) => bs.map((b) => b.textContent))).toEqual(["Retry 3 jobs", `Keep them ${status}`]);
      expect(await page.$eval("[data-testid=bulk-confirm]", (e) => e.textContent)).toContain(`Exactly the 3 jobs counted here: any that turns ${status} while this is open is left alone`);
      // A second click while it asks: the same question, no second dry run, focus back on its confirm button.
      await page.click("[data-testid=bulk-retry]");
      expect(await page.$$("[data-testid=bulk-confirm]")).toHaveLength(1);
      await expectFocus(page, "bulk-confirm-yes");
      // Keep: the question goes, focus returns to the button; only the dry run was sent, and no job moved.
      await page.click("[data-testid=bulk-confirm-no]");
      await page.waitForSelector("[data-testid=bulk-confirm]", { hidden: true, timeout: 5000 });
      await expectFocus(page, "bulk-retry");
      expect(sent).toEqual([true]);
      expect((await statusesOf([...ids, other])).map((j) => [j.status, j.attempt])).toEqual(ended.map((j) => [j.status, j.attempt]));

      await asked();
      // While the person reads the question, one more job with the tag fails: it was not counted, so it is not taken.
      late = (await failing(tag)).body.jobId;
      await waitFor("the late job failed in GET /api/jobs/<id>", async () => { const j = (await statusesOf([late]))[0]; return !!j && settled(j) && j.status === status; }, 60_000, 200);
      await shot("jobs-bulk-confirm");
      expect(sent).toEqual([true, true]);
      await page.click("[data-testid=bulk-confirm-yes]");
      await page.waitForFunction(() => document.querySelector("[data-testid=bulk-result]")?.textContent === "retried 3 of 3 jobs", { timeout: 90_000 });
      expect(sent).toEqual([true, true, false]);
      expect(await page.$("[data-testid=bulk-confirm]")).toBeNull();
      await expectFocus(page, "bulk-retry");
      expect(dialogs).toEqual([]);
    } finally {
      page.off("request", onRequest);
      page.off("dialog", onDialog);
    }
    await shot("jobs-bulk-retry");
    await waitFor("every redriven job on its next attempt in GET /api/jobs/<id>", async () => (await statusesOf(ids)).every((j, i) => j.attempt === ended[i]!.attempt + 1), 30_000, 200);
    const [keptOther, keptLate] = await statusesOf([other, late]);
    expect([keptOther!.status, keptOther!.attempt]).toEqual([status, ended[3]!.attempt]);
    expect(keptLate!.status).toBe(status);
    expect(await page.$("[data-testid=bulk-error]")).toBeNull();
  }, 180_000);

  it("\"Cancel all\" on the Jobs page asks in the page: Escape and Keep send nothing and the jobs stay queued; confirmed, it cancels them", async () => {
    const tag = `e2e-bulkui-${Date.now().toString(36)}`;
    // No worker has this label: the jobs wait.
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await post("/api/jobs", { url: `${stack.site.url}/product/7`, tags: [tag], workerLabels: ["nobody-has-this"] })).body.jobId);
    const keep = (await post("/api/jobs", { url: `${stack.site.url}/product/7`, tags: ["e2e-bulkui-keep"], workerLabels: ["nobody-has-this"] })).body.jobId as string;
    await waitFor("the jobs queued in the read models", async () => (await statusesOf([...ids, keep])).every((j) => j.status === "queued"), 30_000, 200);

    await page.goto(`${stack.uiUrl}/jobs?status=queued&q=${tag}`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    const sent: boolean[] = [];
    const dialogs: string[] = [];
    const onRequest = (r: HTTPRequest) => void (r.method() === "POST" && new URL(r.url()).pathname === "/api/bulk/cancel" && sent.push(JSON.parse(r.postData() ?? "{}").dryRun === true));
    const onDialog = (d: Dialog) => void (dialogs.push(d.message()), d.dismiss());
    page.on("request", onRequest);
    page.on("dialog", onDialog);
    const asked = async () => {
      await page.click("[data-testid=bulk-cancel]");
      await page.waitForSelector("[data-testid=bulk-confirm]", { visible: true, timeout: 10_000 });
      await expectFocus(page, "bulk-confirm-yes");
      expect(await page.$eval("#bulk-confirm-title", (e) => e.textContent)).toBe(`Cancel 2 queued jobs matching “${tag}”?`);
    };
    try {
      await asked();
      expect(await page.$$eval("[data-testid=bulk-confirm] button", (bs) => bs.map((b) => b.textContent))).toEqual(["Cancel 2 jobs", "Keep them queued"]);
      expect(await page.$eval("[data-testid=bulk-confirm]", (e) => e.textContent)).toContain("A cancelled job cannot be retried");
      // Escape takes it back, focus on the button again.
      await page.keyboard.press("Escape");
      await page.waitForSelector("[data-testid=bulk-confirm]", { hidden: true, timeout: 5000 });
      await expectFocus(page, "bulk-cancel");
      // So does Keep.
      await asked();
      await page.click("[data-testid=bulk-confirm-no]");
      await page.waitForSelector("[data-testid=bulk-confirm]", { hidden: true, timeout: 5000 });
      await expectFocus(page, "bulk-cancel");
      // Only the two dry runs were sent: the jobs still wait.
      expect(sent).toEqual([true, true]);
      expect((await statusesOf([...ids, keep])).map((j) => j.status)).toEqual(["queued", "queued", "queued"]);
      // Confirmed: it cancels the two.
      await asked();
      await page.click("[data-testid=bulk-confirm-yes]");
      await page.waitForFunction(() => document.querySelector("[data-testid=bulk-result]")?.textContent === "cancelled 2 of 2 jobs", { timeout: 30_000 });
      expect(sent).toEqual([true, true, true, false]);
      expect(dialogs).toEqual([]);
    } finally {
      page.off("request", onRequest);
      page.off("dialog", onDialog);
    }
    await waitFor("the two cancelled in GET /api/jobs/<id>", async () => (await statusesOf(ids)).every((j) => j.status === "cancelled"), 30_000, 200);
    expect((await statusesOf([keep]))[0]!.status).toBe("queued");
    expect((await post(`/api/jobs/${keep}/cancel`, {})).status).toBe(200);
  }, 120_000);

  it("troupe cancel --status queued --search cancels every matching queued job (--dry-run lists them first); a job id and --status together are refused", async () => {
    const tag = `e2e-bulkc-${Date.now().toString(36)}`;
    // No worker has this label: the jobs wait.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await post("/api/jobs", { url: `${stack.site.url}/product/7`, tags: [tag], workerLabels: ["nobody-has-this"] })).body.jobId);
    const keep = (await post("/api/jobs", { url: `${stack.site.url}/product/7`, tags: ["e2e-bulk-keep"], workerLabels: ["nobody-has-this"] })).body.jobId as string;
    await waitFor("the jobs queued in the read models", async () => (await statusesOf([...ids, keep])).every((j) => j.status === "queued"), 30_000, 200);

    const dry = await troupeCli("cancel", "--status", "queued", "--search", tag, "--dry-run");
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.trim().split("\n").sort()).toEqual([...ids].sort());
    expect(dry.stderr).toMatch(/3 queued jobs match; nothing sent \(--dry-run\)/);
    expect((await statusesOf(ids)).map((j) => j.status)).toEqual(["queued", "queued", "queued"]);

    const both = await troupeCli("cancel", ids[0]!, "--status", "queued");
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give a job id or --status, not both/);
    const wrong = await troupeCli("retry", "--status", "queued");
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--status: a bulk retry takes jobs that are failed, dead; got "queued"/);

    const r = await troupeCli("cancel", "--status", "queued", "--search", tag, "--reason", "bulk from the shell");
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^cancelled 3 of 3 jobs$/m);
    await waitFor("the three cancelled in GET /api/jobs/<id>", async () => (await statusesOf(ids)).every((j) => j.status === "cancelled"), 30_000, 200);
    expect((await statusesOf([keep]))[0]!.status).toBe("queued");
    // The reason is in the log with each cancellation.
    const jsm = await jetstreamManager(await stack.nats.connect("master", "test-bulk-reason"));
    const m = await jsm.streams.getMessage("TROUPE_EVENTS", { last_by_subj: subjects.job(ids[0]!, "cancelled") });
    expect(m?.json<TroupeEvent>()).toMatchObject({ type: "job.cancelled", data: { jobId: ids[0], reason: "bulk from the shell" } });
    expect((await post(`/api/jobs/${keep}/cancel`, {})).status).toBe(200);
  }, 120_000);
});

describe("Submit form", () => {
  it("shows the field error for a bad URL next to the field", async () => {
    await page.goto(`${stack.uiUrl}/submit`, { waitUntil: "networkidle0" });
    await page.type("[data-testid=url]", "ftp://example.com/file");
    await page.click("[data-testid=submit]");
    await page.waitForSelector("[data-testid=error-url]", { timeout: 5000 });
    expect(await page.$eval("[data-testid=error-url]", (e) => e.textContent)).toMatch(/http\(s\) URL/);
    await shot("submit-error");
  });

  it("submits with priority, attempts and timeout typed in (typing in a number field made Submit do nothing), and shows a bad priority next to its field", async () => {
    await page.goto(`${stack.uiUrl}/submit`, { waitUntil: "networkidle0" });
    const errors: string[] = [];
    const onError = (e: unknown) => void errors.push((e as Error).message);
    page.on("pageerror", onError);
    try {
      const retype = async (testid: string, text: string) => {
        await page.click(`[data-testid=${testid}]`, { clickCount: 3 });
        await page.keyboard.press("Backspace");
        await page.type(`[data-testid=${testid}]`, text);
      };
      await page.type("[data-testid=url]", `${stack.site.url}/product/8`);
      // Text the browser cannot read as a number ("60000-") is said to be wrong, not dropped for the default.
      await retype("timeoutMs", "60000-");
      await page.click("[data-testid=submit]");
      await page.waitForSelector("[data-testid=error-timeoutMs]", { timeout: 5000 });
      expect(await page.$eval("[data-testid=error-timeoutMs]", (e) => e.textContent)).toBe("timeoutMs: expected a whole number");
      expect(new URL(page.url()).pathname).toBe("/submit");
      await retype("timeoutMs", "60000");
      await retype("priority", "11");
      await page.click("[data-testid=submit]");
      await page.waitForSelector("[data-testid=error-priority]", { timeout: 5000 });
      expect(await page.$eval("[data-testid=error-priority]", (e) => e.textContent)).toMatch(/^priority: /);
      await retype("priority", "8");
      await retype("maxAttempts", "2");
      await retype("timeoutMs", "60000");
      await page.click("[data-testid=submit]");
      await page.waitForFunction(() => /^\/jobs\/[A-Za-z0-9_-]+$/.test(location.pathname), { timeout: 10_000 });
      const jobId = new URL(page.url()).pathname.split("/").pop()!;
      const job = await waitFor("the job in GET /api/jobs/<id>", async () => (await api(`/api/jobs/${jobId}`)).body.job as { priority: number; spec: { maxAttempts: number; timeoutMs: number } } | undefined, 15_000, 100);
      expect(job).toMatchObject({ priority: 8, spec: { maxAttempts: 2, timeoutMs: 60_000 } });
      expect(errors).toEqual([]);
    } finally {
      page.off("pageerror", onError);
    }
  });

  it("a job submitted while the projector is behind opens its page once the projector has folded it, without a reload (it showed 404)", async () => {
    await page.goto(`${stack.uiUrl}/submit`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    await page.type("[data-testid=url]", `${stack.site.url}/product/9`);
    await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true));
    const projector = stack.procs.get("projector")!.child.pid!;
    process.kill(projector, "SIGSTOP");
    let resumed = false;
    try {
      await page.click("[data-testid=submit]");
      await page.waitForFunction(() => /^\/jobs\/[A-Za-z0-9_-]+$/.test(location.pathname), { timeout: 30_000 });
      const jobId = new URL(page.url()).pathname.split("/").pop()!;
      expect((await api(`/api/jobs/${jobId}`)).status, "the projector folded the job before it was paused: this run tests nothing").toBe(404);
      process.kill(projector, "SIGCONT");
      resumed = true;
      await page.waitForSelector("[data-testid=job-status]", { timeout: 40_000 });
      expect(await page.$eval("h1 code", (e) => e.textContent)).toBe(jobId);
      expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
    } finally {
      if (!resumed) process.kill(projector, "SIGCONT");
    }
  }, 120_000);

  it("a job submitted while the projector lags a moment goes straight to its page, never to \"no job\"", async () => {
    await page.goto(`${stack.uiUrl}/submit`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    await page.type("[data-testid=url]", `${stack.site.url}/product/10`);
    // Every error page rendered from here on is remembered (the document stays: client-side navigation).
    await page.evaluate(() => {
      const w = window as unknown as { __errorPages: string[] };
      w.__errorPages = [];
      new MutationObserver(() => {
        const e = document.querySelector("[data-testid=page-error]");
        if (e && w.__errorPages.at(-1) !== e.textContent) w.__errorPages.push(e.textContent ?? "");
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const requests: string[] = [];
    const onRequest = (req: HTTPRequest) => {
      const path = new URL(req.url()).pathname;
      if (path === "/api/jobs" || path === "/api/catch-up" || path.endsWith("/__data.json")) requests.push(path);
    };
    page.on("request", onRequest);
    const projector = stack.procs.get("projector")!.child.pid!;
    process.kill(projector, "SIGSTOP");
    let resumed = false;
    try {
      const posted = page.waitForResponse((res) => new URL(res.url()).pathname === "/api/jobs" && res.request().method() === "POST", { timeout: 30_000 });
      await page.click("[data-testid=submit]");
      expect((await posted).status()).toBe(201);
      // The form asks whether the read models hold the job (waiting at most 5 s) before it loads the job's page.
      const after = () => requests.slice(requests.indexOf("/api/jobs") + 1);
      await waitFor("the form to ask whether the read models hold the job", () => after().length > 0, 10_000, 20);
      expect(after()[0]).toBe("/api/catch-up");
      expect(new URL(page.url()).pathname).toBe("/submit");
      process.kill(projector, "SIGCONT");
      resumed = true;
      await page.waitForFunction(() => /^\/jobs\/[A-Za-z0-9_-]+$/.test(location.pathname), { timeout: 30_000 });
      await page.waitForSelector("[data-testid=job-status]", { timeout: 10_000 });
      expect(await page.evaluate(() => (window as unknown as { __errorPages: string[] }).__errorPages)).toEqual([]);
    } finally {
      page.off("request", onRequest);
      if (!resumed) process.kill(projector, "SIGCONT");
    }
  }, 120_000);
});

describe("REST API", () => {
  it("returns the error shape and status codes for bad requests", async () => {
    const cases: [string, Promise<{ status: number; body: Record<string, any> }>, number, string, string?][] = [
      ["bad JSON", post("/api/jobs", "{nope"), 400, "invalid"],
      ["bad URL", post("/api/jobs", { url: "ftp://x" }), 400, "invalid", "url"],
      ["unknown field", post("/api/jobs", { url: "https://example.com", colour: "red" }), 400, "invalid", "colour"],
      ["no url or scenario", post("/api/jobs", {}), 400, "invalid", "url"],
      ["oversized body", post("/api/jobs", { url: "https://example.com", tags: ["x".repeat(600_000)] }), 413, "too-large"],
      // No Content-Length: the body streams in chunks past the limit.
      ["oversized chunked body", api("/api/jobs", { method: "POST", headers: { "content-type": "application/json" }, body: chunked(JSON.stringify({ url: "https://example.com", tags: ["x".repeat(600_000)] })), duplex: "half" } as RequestInit), 413, "too-large"],
      ["body not UTF-8", api("/api/jobs", { method: "POST", headers: { "content-type": "application/json" }, body: Buffer.concat([Buffer.from('{"url":"https://example.com/'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]) }), 400, "invalid"],
      ["unknown job", api("/api/jobs/j-does-not-exist"), 404, "not-found"],
      ["invalid job id", api("/api/jobs/bad.id"), 400, "invalid", "jobId"],
      ["bad limit", api("/api/jobs?limit=0"), 400, "invalid", "limit"],
      ["bad status", api("/api/jobs?status=sleeping"), 400, "invalid", "status"],
      ["bad cursor", api("/api/jobs?cursor=zzz"), 400, "invalid", "cursor"],
      // A typo in a filter or a second value was ignored, and the answer held every job.
      ["unknown query parameter", api("/api/jobs?stauts=dead"), 400, "invalid", "stauts"],
      ["repeated query parameter", api("/api/jobs?status=failed&status=dead"), 400, "invalid", "status"],
      ["unknown query parameter (workers)", api("/api/workers?worker=x"), 400, "invalid", "worker"],
      ["control character in the workers' search, as in the jobs'", api("/api/workers?q=%00"), 400, "invalid", "q"],
      ["control character in the jobs' search", api("/api/jobs?q=%01"), 400, "invalid", "q"],
      ["one bad status of several", api("/api/jobs?status=failed,sleeping"), 400, "invalid", "status"],
      ["blank statuses", api("/api/jobs?status=,"), 400, "invalid", "status"],
      ["unknown worker", api("/api/workers/wn-nobody"), 404, "not-found"],
      ["wrong method", api("/api/workers", { method: "DELETE" }), 405, "method-not-allowed"],
      ["unknown endpoint", api("/api/nothing-here"), 404, "not-found"],
      ["unknown artifact", api("/artifacts/nothing.png"), 404, "not-found"],
      ["catch-up wait of 0", api("/api/catch-up?waitMs=0"), 400, "invalid", "waitMs"],
      ["catch-up wait past its bound", api("/api/catch-up?waitMs=10001"), 400, "invalid", "waitMs"],
      ["catch-up wait not a number", api("/api/catch-up?waitMs=5s"), 400, "invalid", "waitMs"],
      ["catch-up with a parameter it does not take", api("/api/catch-up?wait=5"), 400, "invalid", "wait"],
      ["catch-up posted", post("/api/catch-up", {}), 405, "method-not-allowed"],
      ["stats with a range the charts do not take", api("/api/stats?range=7d"), 400, "invalid", "range"],
      ["a worker with a range the charts do not take", api("/api/workers/wn-e2e-01?range=1d"), 400, "invalid", "range"],
      // A write from another site (a page the operator visits): no body, so no preflight and no form CSRF check.
      ["retry with a field it does not take", post("/api/jobs/j-any/retry", { priority: 1 }), 400, "invalid", "priority"],
      // An action's body is read as a submit's: a key given twice cancelled for real (`dryRun` true, then false), deep
      // nesting was a 500 (the validator's JSON.stringify overflowed), and an id in the body lost to the path's silently.
      ["bulk body with a key twice", post("/api/bulk/cancel", '{"status":"queued","dryRun":true,"dryRun":false}'), 400, "invalid", "dryRun"],
      ["action body nested too deep", post("/api/jobs/j-any/cancel", `{"reason":${"[".repeat(5000)}${"]".repeat(5000)}}`), 400, "invalid"],
      ["action body that is no object", post("/api/jobs/j-any/cancel", "[1]"), 400, "invalid"],
      ["cancel body naming another job", post("/api/jobs/j-any/cancel", { jobId: "j-other" }), 400, "invalid", "jobId"],
      ["retry body with a job id that is no string", post("/api/jobs/j-any/retry", { jobId: 123 }), 400, "invalid", "jobId"],
      ["drain body naming another worker", post("/api/workers/wn-e2e-01/drain", { workerId: "wn-other" }), 400, "invalid", "workerId"],
      // `curl -d` sends a form content type and no Origin: told what to send (SvelteKit's check answered 403 text/plain).
      ["form-encoded body from a tool", api("/api/jobs", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: '{"url":"https://example.com"}' }), 415, "unsupported-media-type"],
      ["cross-site form post", api("/api/jobs", { method: "POST", headers: { "content-type": "text/plain", origin: "https://evil.example" }, body: '{"url":"https://example.com"}' }), 403, "forbidden"],
      ["cross-site action", api("/api/jobs/j-any/cancel", { method: "POST", headers: { origin: "http://evil.example" } }), 403, "forbidden"],
      ["cross-site drain", api("/api/workers/wn-e2e-01/drain", { method: "POST", headers: { origin: "http://evil.example" } }), 403, "forbidden"],
      ["cross-site bulk", post("/api/bulk/cancel", { status: "queued" }, { "content-type": "application/json", origin: "https://evil.example" }), 403, "forbidden"],
      // SvelteKit routes on the decoded path: /%61pi/ is /api/ to it (a check on the raw path let this through).
      ["cross-site action, encoded path", api("/%61pi/jobs/j-any/cancel", { method: "POST", headers: { origin: "http://evil.example" } }), 403, "forbidden"],
      // DNS rebinding: a site's name pointed at 127.0.0.1 reads the token-less API as same-origin; only loopback names are served.
      ["rebound host, API", getWithHost("/api/workers", "evil.example:3000"), 403, "forbidden"],
      ["rebound host, page", getWithHost("/", "localhost.evil.example"), 403, "forbidden"],
      // A link in the artifacts store (a worker may write any metadata) would serve another bucket's object: not followed.
      ["artifact that is a link", linkArtifact().then(() => api("/artifacts/job-x/1/000-link.png")), 404, "not-found"],
    ];
    for (const [name, pending, status, code, field] of cases) {
      const r = await pending;
      expect(r.status, name).toBe(status);
      expect(r.body.success, name).toBe(false);
      expect(r.body.error.code, name).toBe(code);
      expect(typeof r.body.error.message, name).toBe("string");
      if (field) expect(r.body.error.field, name).toBe(field);
      expect(Object.keys(r.body.error).every((k) => ["code", "message", "field"].includes(k)), name).toBe(true);
    }
    // A 405 names what the route takes, in the header HTTP asks for.
    for (const [method, path, allow] of [["DELETE", "/api/workers", "GET, HEAD"], ["PUT", "/api/jobs", "GET, HEAD, POST"], ["GET", "/api/jobs/j-any/cancel", "POST"]] as const) {
      const r = await fetch(`${stack.uiUrl}${path}`, { method });
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.get("allow"), `${method} ${path}`).toBe(allow);
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain(`it takes ${allow}`);
    }
    // The catch-up check: the streams' heads and the projector's checkpoints, caught up when none lacks anything.
    const caught = await api("/api/catch-up?waitMs=10000");
    expect(caught.status, JSON.stringify(caught.body)).toBe(200);
    expect(Object.keys(caught.body.heads).sort()).toEqual(["TROUPE_EVENTS", "TROUPE_HEARTBEATS"]);
    expect(caught.body.caughtUp).toBe(caught.body.behind === 0);
    if (caught.body.caughtUp) for (const [stream, head] of Object.entries(caught.body.heads as Record<string, number>)) expect(caught.body.checkpoints[stream]).toBeGreaterThanOrEqual(head);
    // Several statuses, comma-separated.
    const several = await api("/api/jobs?status=cancelled,queued&limit=500");
    expect(several.status).toBe(200);
    expect((several.body.jobs as { status: string }[]).every((j) => ["cancelled", "queued"].includes(j.status))).toBe(true);
    // The names this machine's browser uses are served (an SSH tunnel's localhost:<any port> included).
    for (const host of ["localhost:9999", "127.0.0.1", "[::1]:3000"]) expect((await getWithHost("/api/stats", host)).status, host).toBe(200);
  });

  it("GET /api/workers matches the documented shape field by field", async () => {
    const w = await workerListed("wn-e2e-01");
    const r = await api("/api/workers");
    expect(r.status).toBe(200);
    expect(r.body.success).toBe(true);
    expect(Object.keys(w).sort()).toEqual(["capabilities", "connection", "currentJobs", "id", "jobIds", "maxJobs", "name", "performance", "status", "type", "version"]);
    expect(w.id).toBe("wn-e2e-01");
    expect(w.name).toBe("Worker Node E2E 01");
    expect(w.type).toBe("puppeteer");
    expect(typeof w.version).toBe("string");
    // A live worker's status: this stack calls a heartbeat 200 ms late suspect, which a loaded machine produces (CI did);
    // the Workers page test covers the turns between them.
    expect(["online", "busy", "suspect"]).toContain(w.status);
    expect(Number.isInteger(w.currentJobs)).toBe(true);
    expect(w.maxJobs).toBe(2);
    expect(Array.isArray(w.jobIds)).toBe(true);
    expect(w.capabilities.maxConcurrentJobs).toBe(2);
    expect(w.capabilities.supportedBrowsers[0].name).toBe("chromium");
    expect(Object.keys(w.connection).sort()).toEqual(["ip", "lastSeen", "port", "registeredAt"]);
    expect(typeof w.connection.ip).toBe("string");
    expect(w.connection.port).toBeGreaterThan(0);
    expect(Date.parse(w.connection.lastSeen)).toBeGreaterThan(Date.now() - 60_000);
    expect(Date.parse(w.connection.registeredAt)).toBeLessThanOrEqual(Date.parse(w.connection.lastSeen));
    expect(Object.keys(w.performance).sort()).toEqual([
      "averageJobDuration", "averageResponseTime", "cpuUsage", "diskUsage", "jobsCompleted", "jobsFailed", "memoryTotal", "memoryUsage", "networkUsage", "recent", "successRate",
    ]);
    // The last 60 min (the minute in progress and the 59 before it), from the projector's per-minute series.
    expect(Object.keys(w.performance.recent).sort()).toEqual(["from", "jobsCompleted", "jobsFailed", "successRate", "windowMinutes"]);
    expect(w.performance.recent.windowMinutes).toBe(60);
    expect(Date.now() - Date.parse(w.performance.recent.from)).toBeGreaterThanOrEqual(59 * 60_000);
    expect(Date.now() - Date.parse(w.performance.recent.from)).toBeLessThan(61 * 60_000);
    expect(w.performance.recent.jobsCompleted + w.performance.recent.jobsFailed).toBeLessThanOrEqual(w.performance.jobsCompleted + w.performance.jobsFailed);
    expect(w.performance.recent.successRate === null || (w.performance.recent.successRate >= 0 && w.performance.recent.successRate <= 100)).toBe(true);
    for (const k of ["averageJobDuration", "averageResponseTime", "cpuUsage", "diskUsage", "jobsCompleted", "jobsFailed", "memoryUsage", "networkUsage", "successRate"]) {
      expect(typeof w.performance[k], k).toBe("number");
    }
    expect(w.performance.cpuUsage).toBeGreaterThanOrEqual(0);
    expect(w.performance.cpuUsage).toBeLessThanOrEqual(100);
    expect(w.performance.memoryUsage).toBeGreaterThan(0);
    expect(w.performance.successRate).toBeGreaterThanOrEqual(0);
    expect(w.performance.successRate).toBeLessThanOrEqual(100);
    const one = await api("/api/workers/wn-e2e-01");
    expect(one.body.worker.id).toBe("wn-e2e-01");
    expect(Array.isArray(one.body.series)).toBe(true);
    expect(one.body).toMatchObject({ range: "1h", bucketMs: 60_000 });
    // A range: its buckets, each point at its bucket's start.
    for (const [path, range, bucketMs] of [["/api/workers/wn-e2e-01?range=6h", "6h", 300_000], ["/api/stats?range=24h", "24h", 900_000]] as const) {
      const r = await api(path);
      expect(r.status, path).toBe(200);
      expect(r.body, path).toMatchObject({ range, bucketMs });
      expect((r.body.series as { minute: number }[]).length, path).toBeGreaterThan(0);
      expect((r.body.series as { minute: number }[]).every((p) => p.minute % bucketMs === 0), path).toBe(true);
    }
  });
});

describe("a worker's Recent jobs", () => {
  it("a job whose worker dies under it stays on that worker's page, live, as lost there and then completed on another; both pages say so after a reload too", async () => {
    // At least two workers: the job's own, which is killed, and one to finish the job.
    stack.startWorker(4);
    await waitFor("wn-e2e-04 online", async () => ["online", "busy"].includes((await api("/api/workers/wn-e2e-04")).body.worker?.status), 60_000, 100);
    const r = await post("/api/jobs", { url: `${stack.site.url}/product/7`, tags: ["e2e-attempts"], scenario: { steps: [{ type: "wait", ms: 15_000 }] } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const jobId = r.body.jobId as string;
    const victim = await waitFor("the job running", async () => {
      const j = (await api(`/api/jobs/${jobId}`)).body.job;
      return j?.status === "running" ? (j.workerId as string) : undefined;
    }, 60_000, 100);
    const victimProc = stack.procs.get(`worker-${victim.slice(-2)}`)!;
    const row = `[data-testid=job-row][data-job-id="${jobId}"]`;
    try {
      await page.goto(`${stack.uiUrl}/workers/${victim}`, { waitUntil: "networkidle0" });
      await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
      await page.waitForSelector(`${row}[data-outcome=running]`, { timeout: 10_000 });
      // A marker a reload would wipe, and a watch for the row leaving the page at any moment.
      await page.evaluate((sel) => {
        const w = window as unknown as { __noReload: boolean; __rowGone: boolean };
        w.__noReload = true;
        w.__rowGone = false;
        new MutationObserver(() => {
          if (!document.querySelector(sel)) w.__rowGone = true;
        }).observe(document.body, { subtree: true, childList: true, attributes: true });
      }, row);
      victimProc.child.kill("SIGKILL");
      // The master declares it lost (3 missed heartbeats of 1 s) and requeues the job; another worker runs it.
      await page.waitForSelector(`${row}[data-outcome=requeued][data-reason=worker-lost]`, { timeout: 30_000 });
      expect(await page.$eval(`${row} [data-testid=attempt-outcome]`, (e) => e.textContent)).toBe("lost (the worker stopped answering)");
      const finisher = await waitFor("the job running elsewhere", async () => {
        const j = (await api(`/api/jobs/${jobId}`)).body.job;
        return j?.attempt === 2 && j.workerId && j.workerId !== victim ? (j.workerId as string) : undefined;
      }, 60_000, 100);
      await page.waitForSelector(`${row}[data-status=completed]`, { timeout: 60_000 });
      expect(await page.$eval(`${row} [data-testid=job-later]`, (e) => e.textContent?.replace(/\s+/g, " ").trim())).toBe(`completed on ${finisher}, attempt 2`);
      expect(await page.evaluate(() => (window as unknown as { __rowGone: boolean }).__rowGone), "the row left the page while the job moved").toBe(false);
      expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
      await shot("worker-detail-lost-job");

      // From SQLite (job_attempts) once the projector has folded the completion: the same on a fresh load.
      await waitFor("the job completed in the read models", async () => (await api(`/api/jobs/${jobId}`)).body.job?.status === "completed", 30_000, 100);
      // The API gives the same list: the job with both attempts, lost here and completed on the other.
      const recent = (await api(`/api/workers/${victim}`)).body.recentJobs as { job: { id: string; status: string }; attempts: { attempt: number; workerId: string; outcome: string }[] }[];
      expect(recent.find((r) => r.job.id === jobId)).toMatchObject({ job: { status: "completed" }, attempts: [
        { attempt: 1, workerId: victim, outcome: "requeued" }, { attempt: 2, workerId: finisher, outcome: "completed" }] });
      await page.goto(`${stack.uiUrl}/workers/${victim}`, { waitUntil: "networkidle0" });
      await page.waitForSelector(`${row}[data-outcome=requeued][data-reason=worker-lost][data-status=completed][data-attempt="1"]`, { timeout: 10_000 });
      await page.goto(`${stack.uiUrl}/workers/${finisher}`, { waitUntil: "networkidle0" });
      await page.waitForSelector(`${row}[data-outcome=completed][data-status=completed][data-attempt="2"]`, { timeout: 10_000 });
      expect(await page.$eval(`${row} [data-testid=job-later]`, (e) => e.textContent?.trim())).toBe("–");
    } finally {
      // Later tests use wn-e2e-01 (and 03): a killed one of them comes back under its id.
      if (victim !== "wn-e2e-04") {
        stack.startWorker(Number(victim.slice(-2)));
        await waitFor(`${victim} online again`, async () => ["online", "busy"].includes((await api(`/api/workers/${victim}`)).body.worker?.status), 60_000, 100);
      }
    }
  }, 240_000);
});

describe("screenshots of every page", () => {
  it("saves the Overview, Workers, worker detail, Jobs, job detail and Submit pages", async () => {
    for (const [name, path] of [["overview", "/"], ["workers-page", "/workers"], ["worker-detail", "/workers/wn-e2e-01"], ["jobs-page", "/jobs"], ["submit", "/submit"]] as const) {
      const res = await page.goto(`${stack.uiUrl}${path}`, { waitUntil: "networkidle0" });
      expect([200, 304], path).toContain(res?.status());
      await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
      await shot(name);
    }
  });
});

// Last: the heartbeat below puts a worker that never runs anything into the fleet.
describe("times on the page", () => {
  it("a browser whose clock runs 10 min fast still shows a heartbeating worker online and seen seconds ago (the page runs on the server's clock)", async () => {
    const fast = await stack.browser.newPage();
    try {
      await fast.evaluateOnNewDocument(() => {
        const Real = Date;
        const shift = 600_000;
        class Fast extends Real {
          constructor(...a: unknown[]) {
            if (a.length === 0) super(Real.now() + shift);
            else super(...(a as [string]));
          }
          static override now() {
            return Real.now() + shift;
          }
        }
        (window as unknown as { Date: DateConstructor }).Date = Fast as unknown as DateConstructor;
      });
      await fast.goto(`${stack.uiUrl}/workers`, { waitUntil: "networkidle0" });
      await fast.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
      expect(await fast.evaluate(() => Date.now() - performance.timeOrigin - performance.now())).toBeGreaterThan(590_000);
      const card = '[data-worker-id="wn-e2e-01"]';
      await fast.waitForSelector(`${card}[data-status=online], ${card}[data-status=busy]`, { timeout: 5000 });
      const seen = await fast.$eval(`${card} [data-testid=worker-last-seen]`, (e) => e.textContent ?? "");
      expect(seen).toMatch(/^\d s ago$/);
    } finally {
      await fast.close();
    }
  });

  it("a heartbeat dated an hour ahead does not keep its worker online on an open page: it turns suspect when no other follows", async () => {
    await page.goto(`${stack.uiUrl}/workers`, { waitUntil: "networkidle0" });
    await page.waitForSelector('[data-testid=connection][data-status=live]', { timeout: 10_000 });
    const { js } = await stack.nats.js("worker");
    const hb = createEvent("worker.heartbeat", {
      workerId: "wn-e2e-future", instanceId: "i-future", status: "online", currentJobs: 0, maxConcurrentJobs: 1, jobIds: [],
      metrics: { memoryUsage: 100, cpuUsage: 1, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 100, averageJobDuration: 0 },
    }, "wn-e2e-future", new Date(Date.now() + 3600_000));
    await publishEvent(js, hb as TroupeEvent);
    const card = '[data-worker-id="wn-e2e-future"]';
    await page.waitForSelector(card, { timeout: 5000 });
    // The suspect window is SUSPECT_AFTER_MS (1.2 s) and the page's clock ticks each second.
    await page.waitForSelector(`${card}[data-status=suspect]`, { timeout: 5000 });
  });
});
