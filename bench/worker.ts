import { createServer } from "node:http";
import { cpus, loadavg } from "node:os";
import type { Msg } from "@nats-io/nats-core";
import { decodeEvent, type AssignReply, type Command, type Step } from "@troupe/events";
import { createLogger, parseOptions } from "@troupe/events/node";
import { startTestNats } from "@troupe/tests/harness";
import type { Browser } from "puppeteer-core";
import { launchChromium } from "../services/worker/src/browser-pool.ts";
import { resolveConfig, workerOptions } from "../services/worker/src/config.ts";
import { startWorker } from "../services/worker/src/worker.ts";
import type { Bench, Figure } from "./report.ts";
import { median } from "./stats.ts";

/**
 * `pnpm bench worker`: the same 5-step scenario on a local page run N times
 * (a) by a Troupe worker through NATS (assign request → job events in
 * JetStream) and (b) by a bare Puppeteer loop with the same browser flags and
 * a fresh context per job, at concurrency 1 and 4. Target: Troupe ≥ 0.9 × bare.
 */

const PAGE = `<!doctype html><html><head><title>bench</title></head><body>
<input id="q"><button id="go" onclick="const p=document.createElement('p');p.id='out';p.textContent='got '+document.getElementById('q').value;document.body.appendChild(p)">Go</button>
<ul>${Array.from({ length: 20 }, (_, i) => `<li class="row">row ${i}</li>`).join("")}</ul></body></html>`;

const scenario = (url: string): Step[] => [
  { type: "navigate", url },
  { type: "type", selector: "#q", text: "troupe" },
  { type: "click", selectors: [["#go"]] },
  { type: "waitForElement", selectors: [["#out"]] },
  { type: "extract", fields: { out: { selector: "#out" }, rows: { selector: ".row", all: true } } },
];

/** The same five steps written directly against Puppeteer. */
async function bareJob(browser: Browser, url: string): Promise<void> {
  const ctx = await browser.createBrowserContext();
  try {
    const page = await ctx.newPage();
    await page.goto(url, { waitUntil: "load" });
    const input = await page.waitForSelector("#q");
    await input!.type("troupe");
    await page.locator("#go").click();
    await page.locator("#out").setVisibility("visible").wait();
    const out = await page.$eval("#out", (e) => e.textContent);
    const rows = await page.$$eval(".row", (els) => els.map((e) => e.textContent));
    if (out !== "got troupe" || rows.length !== 20) throw new Error(`bare job extracted the wrong data: ${out} / ${rows.length}`);
  } finally {
    await ctx.close();
  }
}

/** Runs `n` jobs keeping `concurrency` in flight; resolves to the elapsed ms. */
async function pool(n: number, concurrency: number, job: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await job(next++);
  }));
  return performance.now() - t0;
}

/** Bare and Troupe runs alternate this many times per concurrency level (short rounds: load drift on a shared machine hits both alike). */
const ROUNDS = 6;
const QUICK_ROUNDS = 1;

export const bench: Bench = async ({ quick, log, size }) => {
  const jobs = size ?? (quick ? 2 : 60);
  const rounds = quick ? QUICK_ROUNDS : ROUNDS;
  const levels = [1, 4];
  const guarded = process.env.TROUPE_BENCH_GUARDED === "1";
  if (guarded) log("TROUPE_BENCH_GUARDED=1: the worker runs with the SSRF guard on (the job's egress proxy checks every target)");
  const server = createServer((_req, res) => { res.writeHead(200, { "content-type": "text/html" }); res.end(PAGE); });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const load = loadavg()[0]!.toFixed(1);
  const nats = await startTestNats({ init: true });
  const figures: Figure[] = [];
  const perLevel: { c: number; troupe: number; bare: number; medianRatio: number }[] = [];
  try {
    const chromiumPath = process.env.TROUPE_CHROMIUM_PATH ?? "/usr/bin/chromium";
    for (const c of levels) {
      // Both set up once (warm browser, registered worker); then rounds alternate bare and Troupe so load drift hits both alike.
      const browser = await launchChromium(chromiumPath);
      const env = { ...nats.env(), TROUPE_WORKER_NAME: `Worker Node Bench ${c}`, TROUPE_WORKER_PORT: "0", TROUPE_WORKER_HOST: "127.0.0.1", TROUPE_MAX_JOBS: String(c), TROUPE_MAX_CPU: "100", TROUPE_RECYCLE_AFTER: "100000",
        // The page is on loopback: either the SSRF guard is off, or (TROUPE_BENCH_GUARDED=1) it lets just that address
        // through, so the job's requests take the guarded path (interception and egress proxy).
        ...(guarded ? { TROUPE_ALLOWED_TARGETS: "127.0.0.1" } : { TROUPE_ALLOW_PRIVATE_TARGETS: "1" }) };
      const worker = await startWorker(resolveConfig(parseOptions(workerOptions, [], env).values), { log: createLogger("bench-worker", "warn"), env });
      const nc = await nats.connect("master", "bench-driver");
      const waiting = new Map<string, { ok: () => void; fail: (e: Error) => void }>();
      const onFinal = (_e: Error | null, m: Msg) => {
        const d = decodeEvent(m.subject, m.data);
        if (!d.ok || (d.value.type !== "job.completed" && d.value.type !== "job.failed")) return;
        const w = waiting.get(d.value.data.jobId);
        if (!w) return;
        waiting.delete(d.value.data.jobId);
        if (d.value.type === "job.completed") w.ok();
        else w.fail(new Error(`bench job failed: ${d.value.data.error.message}`));
      };
      nc.subscribe("troupe.evt.job.*.completed", { callback: onFinal });
      nc.subscribe("troupe.evt.job.*.failed", { callback: onFinal });
      await nc.flush();
      let seq = 0;
      // What the master does: request the assignment, then follow the job's events to its end.
      const troupeJob = async () => {
        const jobId = `bench-${c}-${++seq}`;
        const body: Command<"worker.assign"> = { jobId, attempt: 1, epoch: 1, spec: { scenario: { steps: scenario(url) }, priority: 5, maxAttempts: 1, timeoutMs: 60_000 } };
        const done = new Promise<void>((ok, fail) => waiting.set(jobId, { ok, fail }));
        const reply = (await nc.request(`troupe.worker.${worker.config.workerId}.assign`, JSON.stringify(body), { timeout: 10_000 })).json<AssignReply>();
        if (!reply.accepted) throw new Error(`assignment refused: ${reply.reason} ${reply.message ?? ""}`);
        await done;
      };
      const bare = () => bareJob(browser, url);
      let bareMs = 0;
      let troupeMs = 0;
      const roundRatios: number[] = [];
      try {
        await pool(c, c, bare);
        await pool(c, c, troupeJob);
        const perRound = Math.ceil(jobs / rounds);
        for (let r = 0; r < rounds; r++) {
          // Which one goes first alternates too.
          let b: number;
          let t: number;
          if (r % 2 === 0) {
            b = await pool(perRound, c, bare);
            t = await pool(perRound, c, troupeJob);
          } else {
            t = await pool(perRound, c, troupeJob);
            b = await pool(perRound, c, bare);
          }
          bareMs += b;
          troupeMs += t;
          roundRatios.push(b / t);
        }
      } finally {
        await worker.stop("bench over");
        await nc.close();
        await browser.close();
      }
      const total = Math.ceil(jobs / rounds) * rounds;
      const perMin = (ms: number) => Math.round((total / ms) * 60_000 * 10) / 10;
      const medianRatio = median(roundRatios);
      perLevel.push({ c, troupe: perMin(troupeMs), bare: perMin(bareMs), medianRatio });
      log(`concurrency ${c}: troupe ${perMin(troupeMs)} jobs/min, bare ${perMin(bareMs)} jobs/min (${total} jobs each); per-round ratios ${roundRatios.map((x) => x.toFixed(2)).join(" ")}`);
    }
  } finally {
    await nats.stop();
    server.closeAllConnections();
    server.close();
  }
  for (const l of perLevel) figures.push({ name: `troupe worker, concurrency ${l.c}`, value: Math.round((l.troupe / 60) * 100) / 100, unit: "jobs/s" });
  for (const l of perLevel) {
    figures.push(
      { name: `troupe worker, concurrency ${l.c}`, value: l.troupe, unit: "jobs/min" },
      { name: `bare puppeteer, concurrency ${l.c}`, value: l.bare, unit: "jobs/min" },
      { name: `ratio troupe/bare, concurrency ${l.c}`, value: Math.round((l.troupe / l.bare) * 1000) / 1000, unit: "×", target: ">= 0.9" },
      { name: `median round ratio, concurrency ${l.c}`, value: Math.round(l.medianRatio * 1000) / 1000, unit: "×" },
    );
  }
  return {
    bench: "worker",
    params: { jobs: Math.ceil(jobs / rounds) * rounds, rounds: rounds, concurrency: 1, levels: levels.join(","), steps: 5, ...(size !== undefined ? { size } : {}) },
    figures,
    notes: [`load average ${load} on ${cpus().length} cores at the start${Number(load) > cpus().length ? ": other work was running, figures are noisy" : ""}`, "5 steps: navigate, type, click, waitForElement, extract; one fresh browser context per job in both loops; warm browser; the worker publishes started, 5 progress and completed events per job through JetStream"],
  };
};
