/**
 * The raw rates of the layers Troupe sits on, measured on the same machine in
 * the same run as the Troupe benchmarks: JetStream async publish and
 * ordered-consumer read, core request-reply round trips, and a bare Puppeteer
 * loop. `bench all` divides each Troupe figure by its limit.
 */
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import puppeteer, { type Browser } from "puppeteer-core";
import { parsePubAck, Requests, storeNames } from "@troupe/events/node";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { chromiumPath } from "./machine.ts";
import type { Bench, BenchReport, Figure } from "./report.ts";
import { latencySummary } from "./stats.ts";
import { CHROMIUM_IGNORED_DEFAULT_ARGS, chromiumArgs } from "../services/worker/src/browser-pool.ts";
import { readStreamPush } from "../services/projector/src/push-read.ts";

/** A body the size of a typical Troupe event envelope (a job.submitted with a small scenario is ~0.5 kB). */
export function eventSizedBody(bytes: number): Uint8Array {
  const head = `{"id":"bench","type":"job.submitted","v":1,"time":"2026-01-01T00:00:00.000Z","source":"bench","data":{"pad":"`;
  const tail = `"}}`;
  return new TextEncoder().encode(head + "x".repeat(Math.max(0, bytes - head.length - tail.length)) + tail);
}

export interface Rate {
  count: number;
  seconds: number;
  perSecond: number;
}

const rate = (count: number, ms: number): Rate => ({ count, seconds: ms / 1000, perSecond: count / (ms / 1000) });

/**
 * Appends `count` messages to the events stream with at most `inFlight`
 * unacknowledged publishes, each with a unique Nats-Msg-Id (as Troupe's
 * publishEvent sends, so the server pays the same de-duplication cost), spread
 * over many job subjects.
 */
export async function jetstreamPublish(js: JetStreamClient, o: { count: number; inFlight: number; body: Uint8Array; prefix?: string; idTag?: string }): Promise<Rate> {
  const prefix = o.prefix ?? "troupe";
  const tag = o.idTag ?? `${process.pid}-${Date.now()}`;
  // Through the cheapest client path (Troupe's Requests: one inbox, no timer or error object per
  // publish), so the figure is the server's limit and not nats.js's js.publish (~40 µs of client
  // CPU per message here, which made the client the bottleneck).
  const nc = (js as JetStreamClient & { nc: NatsConnection }).nc;
  const requests = new Requests(nc);
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < o.count) {
      const i = next++;
      const h = headers();
      h.set("Nats-Msg-Id", `${tag}-${i}`);
      const ack = parsePubAck(await requests.request(`${prefix}.evt.job.bench-${i % 1000}.submitted`, o.body, { timeoutMs: 10_000, headers: h }));
      if (ack.duplicate) throw new Error(`publish ${i} was taken for a duplicate: the benchmark's message ids collide`);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.inFlight, o.count) }, lane));
  } finally {
    requests.close();
  }
  return rate(o.count, performance.now() - t0);
}

/**
 * Reads the first `count` messages of a stream through the ordered consumer a
 * rebuild reads with (`readStreamPush`: an ordered push consumer over a core
 * subscription, the client path with the least CPU), touching nothing.
 */
export async function orderedRead(nc: NatsConnection, o: { stream: string; count: number }): Promise<Rate> {
  const t0 = performance.now();
  let n = 0;
  await readStreamPush({ nc, stream: o.stream, first: 1, last: o.count, full: () => false, onMessage: () => void n++ }).done;
  if (n < o.count) throw new Error(`ordered consumer on ${o.stream} stopped after ${n} of ${o.count} messages`);
  return rate(n, performance.now() - t0);
}

/**
 * Core request-reply between two connections (master requests, worker
 * replies, as an assignment does), with `inFlight` requests outstanding.
 * Returns the rate and the round-trip latencies in ms.
 */
export async function requestReply(requester: NatsConnection, responder: NatsConnection, o: { count: number; inFlight: number; body: Uint8Array; prefix?: string }): Promise<Rate & { p50Ms: number; p99Ms: number }> {
  const subject = `${o.prefix ?? "troupe"}.worker.bench-limits.assign`;
  const reply = new TextEncoder().encode('{"ok":true}');
  const sub = responder.subscribe(subject, { callback: (err, m) => { if (!err) m.respond(reply); } });
  await responder.flush();
  const lat: number[] = [];
  let next = 0;
  // Troupe's Requests, as the master asks workers.
  const requests = new Requests(requester);
  const t0 = performance.now();
  try {
    const lane = async () => {
      while (next < o.count) {
        next++;
        const s = performance.now();
        await requests.request(subject, o.body, { timeoutMs: 10_000 });
        lat.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.inFlight, o.count) }, lane));
  } finally {
    sub.unsubscribe();
    requests.close();
  }
  const l = latencySummary(lat);
  return { ...rate(o.count, performance.now() - t0), p50Ms: l.p50, p99Ms: l.p99 };
}


/** A local page to load: small, static, with a title to read back. */
export async function startLocalPage(): Promise<{ url: string; close(): Promise<void> }> {
  const html = "<!doctype html><html><head><title>troupe bench</title></head><body><h1>bench</h1><p>A static page.</p></body></html>";
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-length": Buffer.byteLength(html) });
    res.end(html);
  });
  await new Promise<void>((res, rej) => server.once("error", rej).listen(0, "127.0.0.1", () => res()));
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("local page server has no address");
  return {
    url: `http://127.0.0.1:${addr.port}/`,
    close: () => new Promise<void>((res) => { server.closeAllConnections(); server.close(() => res()); }),
  };
}

export async function launchBareChromium(executablePath = chromiumPath()): Promise<{ browser: Browser; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "troupe-bench-chromium-"));
  let browser: Browser;
  try {
    browser = await puppeteer.launch({ executablePath, headless: true, args: chromiumArgs(dir), ignoreDefaultArgs: CHROMIUM_IGNORED_DEFAULT_ARGS, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot start Chromium at ${executablePath} (set TROUPE_CHROMIUM_PATH): ${(e as Error).message}`, { cause: e });
  }
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The bare Puppeteer loop: per iteration a fresh browser context (as a worker
 * gives each job), a page, load the local page, read its title, close the
 * context. `concurrency` loops share the one browser.
 */
export async function barePuppeteer(browser: Browser, o: { url: string; count: number; concurrency: number }): Promise<Rate> {
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < o.count) {
      next++;
      const ctx = await browser.createBrowserContext();
      try {
        const page = await ctx.newPage();
        await page.goto(o.url, { waitUntil: "load" });
        const title = await page.title();
        if (title !== "troupe bench") throw new Error(`bare puppeteer loop read title ${JSON.stringify(title)}`);
      } finally {
        await ctx.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.count) }, lane));
  return rate(o.count, performance.now() - t0);
}

/** Figure names, shared with `bench all` (which divides Troupe figures by them). */
export const LIMIT = {
  publish: "jetstream async publish",
  read: "ordered-consumer read",
  rr1: "request-reply, 1 in flight",
  rrMany: "request-reply, pipelined",
  rr1p50: "request-reply p50, 1 in flight",
  browser1: "bare puppeteer, 1 at a time",
  browser2: "bare puppeteer, 2 at a time",
} as const;

export interface LimitSizes {
  messages: number;
  publishInFlight: number;
  payloadBytes: number;
  requests: number;
  requestsInFlight: number;
  pages: number;
}

export function limitSizes(quick: boolean): LimitSizes {
  return quick
    ? { messages: 2_000, publishInFlight: 256, payloadBytes: 512, requests: 1_000, requestsInFlight: 64, pages: 3 }
    : { messages: 50_000, publishInFlight: 256, payloadBytes: 512, requests: 20_000, requestsInFlight: 64, pages: 60 };
}

export async function withNats<T>(fn: (t: TestNats) => Promise<T>): Promise<T> {
  const t = await startTestNats({ init: true, log: !!process.env.BENCH_NATS_LOG });
  try {
    return await fn(t);
  } finally {
    await t.stop();
  }
}

export const bench: Bench = async ({ quick, log }) => {
  const z = limitSizes(quick);
  const body = eventSizedBody(z.payloadBytes);
  const figures: Figure[] = [];
  const notes: string[] = [];
  await withNats(async (t) => {
    const { js: pubJs } = await t.js("master");
    log(`limits: publishing ${z.messages} messages, ${z.publishInFlight} in flight`);
    const pub = await jetstreamPublish(pubJs, { count: z.messages, inFlight: z.publishInFlight, body });
    figures.push({ name: LIMIT.publish, value: Math.round(pub.perSecond), unit: "msgs/s" });
    const readNc = await t.connect("projector");
    log(`limits: reading them back through an ordered consumer`);
    const read = await orderedRead(readNc, { stream: storeNames().events, count: z.messages });
    figures.push({ name: LIMIT.read, value: Math.round(read.perSecond), unit: "msgs/s" });
    const requester = await t.connect("master", "bench-requester");
    const responder = await t.connect("worker", "bench-responder");
    log(`limits: ${z.requests} request-reply round trips, 1 then ${z.requestsInFlight} in flight`);
    const rr1 = await requestReply(requester, responder, { count: Math.ceil(z.requests / 4), inFlight: 1, body });
    figures.push({ name: LIMIT.rr1, value: Math.round(rr1.perSecond), unit: "round trips/s" });
    figures.push({ name: LIMIT.rr1p50, value: rr1.p50Ms, unit: "ms" });
    const rrN = await requestReply(requester, responder, { count: z.requests, inFlight: z.requestsInFlight, body });
    figures.push({ name: LIMIT.rrMany, value: Math.round(rrN.perSecond), unit: "round trips/s" });
  });
  const page = await startLocalPage();
  try {
    const chromium = await launchBareChromium();
    try {
      log(`limits: bare puppeteer loop, ${z.pages} pages at 1 then 2 at a time`);
      // One warm-up page: the first context pays Chromium's lazy start-up.
      await barePuppeteer(chromium.browser, { url: page.url, count: 1, concurrency: 1 });
      const b1 = await barePuppeteer(chromium.browser, { url: page.url, count: z.pages, concurrency: 1 });
      figures.push({ name: LIMIT.browser1, value: Math.round(b1.perSecond * 10) / 10, unit: "pages/s" });
      const b2 = await barePuppeteer(chromium.browser, { url: page.url, count: z.pages, concurrency: 2 });
      figures.push({ name: LIMIT.browser2, value: Math.round(b2.perSecond * 10) / 10, unit: "pages/s" });
    } finally {
      await chromium.close();
    }
  } finally {
    await page.close();
  }
  notes.push("publish: unique Nats-Msg-Id per message into TROUPE_EVENTS (file storage, R1) as publishEvent sends, no validation or encoding, through Troupe's Requests (request-reply also): the client path with the least CPU, so the figure is the server's");
  notes.push("bare puppeteer: fresh browser context + page per load of a local static page, same Chromium flags as the worker");
  const report: BenchReport = {
    bench: "limits",
    params: { messages: z.messages, payloadBytes: z.payloadBytes, publishInFlight: z.publishInFlight, requests: z.requests, requestsInFlight: z.requestsInFlight, pages: z.pages },
    figures,
    notes,
  };
  return report;
};
