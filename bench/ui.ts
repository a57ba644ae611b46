import { fileURLToPath } from "node:url";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { createEvent, encodeEvent, subjectOf, type EventData, type TroupeEvent } from "@troupe/events";
import { freePort, publishEvent } from "@troupe/events/node";
import { startTestNats, waitFor } from "@troupe/tests/harness";
import { openReadModels } from "../services/projector/src/read-models.ts";
import { launchChromium } from "../tests/e2e/stack.ts";
import { ensureUiBuild } from "../ui/launch/build.ts";
import { startProcess, type Managed } from "../ui/launch/processes.ts";
import type { Bench } from "./report.ts";

/**
 * `pnpm bench ui`: W workers and J jobs in the read model (published as real
 * events and folded by the real projector), the real UI server, real Chromium.
 * Prints first contentful paint of the Workers and Jobs pages, then offers
 * heartbeats at R events/s for D seconds while the Workers page is open and
 * measures event → DOM latency (event time → MutationObserver seeing the new
 * `data-last-seen` on the worker's card) and whether the page ends with every
 * worker's last heartbeat (no update lost).
 */

const TROUPE = fileURLToPath(new URL("../bin/troupe.mjs", import.meta.url));

const wid = (i: number) => `wn-bench-${String(i).padStart(4, "0")}`;
const jid = (i: number) => `j-bench-${String(i).padStart(6, "0")}`;

function heartbeat(i: number, t: Date, cpu: number): TroupeEvent {
  const data: EventData<"worker.heartbeat"> = {
    workerId: wid(i), instanceId: `i-${wid(i)}`, status: "online", currentJobs: 0, maxConcurrentJobs: 4, jobIds: [],
    metrics: { memoryUsage: 900 + (i % 300), memoryTotal: 8192, cpuUsage: cpu, diskUsage: 40, networkUsage: 1, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
    performance: { successRate: 100, averageJobDuration: 0 },
  };
  return createEvent("worker.heartbeat", data, wid(i), t) as TroupeEvent;
}

/** Appends events with many publishes in flight (acks awaited in windows). */
async function publishAll(js: JetStreamClient, events: Iterable<TroupeEvent>, window = 500): Promise<number> {
  let pending: Promise<unknown>[] = [];
  let n = 0;
  for (const e of events) {
    pending.push(publishEvent(js, e));
    n++;
    if (pending.length >= window) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  return n;
}

function* seedEvents(workers: number, jobs: number, t0: number): Generator<TroupeEvent> {
  const t = (ms: number) => new Date(t0 + ms);
  for (let i = 0; i < workers; i++) {
    yield createEvent("worker.registered", {
      workerId: wid(i), instanceId: `i-${wid(i)}`, name: `Worker Node Bench ${String(i).padStart(4, "0")}`, type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "bench",
      capabilities: { maxConcurrentJobs: 4, memory: 8192, cpu: 4, supportedBrowsers: [{ name: "chromium", version: "120" }] },
    }, wid(i), t(0)) as TroupeEvent;
    yield heartbeat(i, t(1), 10);
  }
  for (let j = 0; j < jobs; j++) {
    const jobId = jid(j);
    const workerId = wid(j % workers);
    const base = 2 + j;
    yield createEvent("job.submitted", { jobId, spec: { url: `https://example.com/p/${j}`, priority: 1 + (j % 10), maxAttempts: 3, timeoutMs: 60_000, tags: ["bench"] } }, "bench-master", t(base)) as TroupeEvent;
    if (j % 10 === 0) continue; // 10 % stay queued
    yield createEvent("job.assigned", { jobId, workerId, attempt: 1, epoch: 1 }, "bench-master", t(base + 1)) as TroupeEvent;
    yield createEvent("job.started", { jobId, workerId, attempt: 1 }, workerId, t(base + 2)) as TroupeEvent;
    if (j % 10 === 1) continue; // 10 % running
    yield createEvent("job.completed", {
      jobId, workerId, attempt: 1,
      result: { success: true, data: { title: `Product ${j}` }, dataExtracted: 1, screenshots: [], logs: [] },
      metrics: { totalDuration: 800 + (j % 500), responseTime: 120, memoryUsed: 40 },
    }, workerId, t(base + 3)) as TroupeEvent;
  }
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
};

export const bench: Bench = async ({ quick, log }) => {
  const W = quick ? 50 : 1000;
  const J = quick ? 500 : 10_000;
  const RATE = quick ? 200 : 1000;
  const SECONDS = quick ? 3 : 10;
  await ensureUiBuild(log);
  const nats = await startTestNats({ init: true });
  const procs: Managed[] = [];
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
  try {
    const { js } = await nats.js("master");
    const wk = await nats.js("worker");
    // Master events as master, worker events as worker: the permissions are real.
    const master: TroupeEvent[] = [];
    const worker: TroupeEvent[] = [];
    for (const e of seedEvents(W, J, Date.now() - 3_600_000)) (["job.submitted", "job.assigned"].includes(e.type) ? master : worker).push(e);
    log(`publishing ${master.length + worker.length} seed events (${W} workers, ${J} jobs)`);
    // Order matters per job (submitted before started): masters' events first, then the workers'.
    await publishAll(js, master);
    await publishAll(wk.js, worker);

    const env = { ...process.env, ...nats.env(), TROUPE_PROJECTOR_PORT: "0", TROUPE_UI_BUILD: "false", TROUPE_NATS_WS_PORT: nats.wsUrl.split(":").pop() as string, TROUPE_LOG_LEVEL: "warn" };
    const uiPort = await freePort();
    const quiet = (name: string) => (l: string) => (/ERROR|WARN|FATAL|Error/.test(l) ? log(`[${name}] ${l}`) : undefined);
    procs.push(startProcess("projector", process.execPath, [TROUPE, "projector"], env, quiet("projector")));
    const rm = openReadModels(`${nats.dataDir}/readmodels.sqlite`);
    const foldStart = Date.now();
    await waitFor("the projector to fold the seed", () => rm.ready() && rm.stats().jobs.total === J && rm.stats().workers.total === W, 300_000, 200);
    log(`projector folded the seed in ${Date.now() - foldStart} ms`);
    rm.close();
    procs.push(startProcess("ui", process.execPath, [TROUPE, "ui", "--port", String(uiPort)], env, quiet("ui")));
    const ui = `http://127.0.0.1:${uiPort}`;
    await waitFor("the UI", async () => (await fetch(`${ui}/api/stats`).catch(() => null))?.ok, 60_000, 100);

    chromium = await launchChromium();
    const fcp = async (path: string, ready: string) => {
      const page = await chromium!.browser.newPage();
      await page.goto(`${ui}${path}`, { waitUntil: "load" });
      await page.waitForSelector(ready);
      // The element can be in the DOM before the frame that shows it is painted: wait for the entry (buffered) rather than read it at once.
      const v = await page.evaluate(() => new Promise<number>((resolve) => {
        const t = setTimeout(() => resolve(Number.NaN), 10_000);
        new PerformanceObserver((list, obs) => {
          const e = list.getEntriesByName("first-contentful-paint")[0];
          if (!e) return;
          clearTimeout(t);
          obs.disconnect();
          resolve(e.startTime);
        }).observe({ type: "paint", buffered: true });
      }));
      await page.close();
      return v;
    };
    // A warm-up load (server caches, Chromium's code cache) then the measured ones.
    await fcp("/workers", "[data-testid=worker-card]");
    const workersFcp = pct(await Promise.resolve([await fcp("/workers", "[data-testid=worker-card]"), await fcp("/workers", "[data-testid=worker-card]"), await fcp("/workers", "[data-testid=worker-card]")]), 50);
    const jobsFcp = pct([await fcp("/jobs", "[data-testid=job-row]"), await fcp("/jobs", "[data-testid=job-row]"), await fcp("/jobs", "[data-testid=job-row]")], 50);
    log(`first contentful paint: workers ${workersFcp.toFixed(0)} ms, jobs ${jobsFcp.toFixed(0)} ms`);

    const page = await chromium.browser.newPage();
    await page.goto(`${ui}/workers`, { waitUntil: "load" });
    await page.waitForSelector("[data-testid=connection][data-status=live]", { timeout: 20_000 });
    const cards = await page.$$eval("[data-testid=worker-card]", (els) => els.length);
    if (cards !== W) throw new Error(`the Workers page shows ${cards} cards, expected ${W}`);
    await page.evaluate(() => {
      const w = window as unknown as { __lat: number[]; __last: Map<string, string> };
      w.__lat = [];
      w.__last = new Map();
      new MutationObserver((muts) => {
        const now = Date.now();
        for (const m of muts) {
          const el = m.target as Element;
          const seen = el.getAttribute?.("data-last-seen");
          const id = el.getAttribute?.("data-worker-id");
          if (!seen || !id || m.attributeName !== "data-last-seen") continue;
          w.__lat.push(now - Date.parse(seen));
          w.__last.set(id, seen);
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-last-seen"] });
    });
    const appliedBefore = Number(await page.$eval("[data-testid=applied]", (e) => e.textContent));

    // Baseline: the same events seen by a plain NATS subscriber in this process (network + server + load).
    const baseline: number[] = [];
    const liveNc = await nats.connect("live");
    liveNc.subscribe("troupe.hb.>", {
      callback: (_e, m) => {
        baseline.push(Date.now() - Date.parse((m.json() as { time: string }).time));
      },
    });
    await liveNc.flush();
    // Offer RATE heartbeats/s, round-robin over the workers, published as the workers do (JetStream).
    const total = RATE * SECONDS;
    const lastSent = new Map<string, string>();
    const pending: Promise<unknown>[] = [];
    const start = Date.now();
    const tickMs = 10;
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((Date.now() - start) / 1000) * RATE));
      for (; sent < due; sent++) {
        const i = sent % W;
        const e = heartbeat(i, new Date(), (sent * 7) % 100);
        lastSent.set(wid(i), e.time);
        pending.push(wk.js.publish(subjectOf(e), encodeEvent(e), { msgID: e.id }));
      }
      await new Promise((r) => setTimeout(r, tickMs));
    }
    const offered = total / ((Date.now() - start) / 1000);
    await Promise.all(pending);
    log(`offered ${total} heartbeats at ${offered.toFixed(0)}/s`);
    // Every event applied, and every card ends on its worker's last heartbeat.
    const appliedOk = await waitFor("the page to apply every event", async () => Number(await page.$eval("[data-testid=applied]", (e) => e.textContent)) - appliedBefore >= total, 30_000, 50).then(() => true, () => false);
    const applied = Number(await page.$eval("[data-testid=applied]", (e) => e.textContent)) - appliedBefore;
    const domLast = new Map(await page.$$eval("[data-testid=worker-card]", (els) => els.map((e) => [e.getAttribute("data-worker-id") ?? "", e.getAttribute("data-last-seen") ?? ""] as [string, string])));
    let lost = 0;
    for (const [id, t] of lastSent) if (domLast.get(id) !== t) lost++;
    const lat = await page.evaluate(() => (window as unknown as { __lat: number[] }).__lat);
    return {
      bench: "ui",
      params: { workers: W, jobs: J, "events/s offered": RATE, seconds: SECONDS, quick },
      figures: [
        { name: "workers page first contentful paint", value: workersFcp, unit: "ms", target: "< 1000" },
        { name: "jobs page first contentful paint", value: jobsFcp, unit: "ms", target: "< 1000" },
        { name: "event→DOM p50", value: pct(lat, 50), unit: "ms" },
        { name: "event→DOM p95", value: pct(lat, 95), unit: "ms", target: "< 250" },
        { name: "event→node subscriber p95 (baseline)", value: pct(baseline, 95), unit: "ms" },
        { name: "heartbeats offered", value: Math.round(offered), unit: "events/s" },
        { name: "events applied in the page", value: applied, unit: "events" },
        { name: "cards not on their last heartbeat (lost updates)", value: lost, unit: "workers", target: "0" },
      ],
      notes: [
        `${lat.length} DOM updates observed for ${total} events (updates to one card within a frame coalesce)`,
        appliedOk ? "every offered event was applied" : `only ${applied} of ${total} events were applied within 30 s`,
      ],
    };
  } finally {
    await chromium?.close().catch(() => {});
    await Promise.all(procs.map((p) => p.stop("SIGTERM", 10_000)));
    await nats.stop();
  }
};
