import { readFileSync, rmSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname } from "node:path";
import { DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { subjects } from "@troupe/events";
import { startTestNats } from "../tests/harness/index.ts";
import { DEFAULT_REBUILD_BATCH } from "../services/projector/src/config.ts";
import { LiveProjector } from "../services/projector/src/live.ts";
import { ProjectorMetrics } from "../services/projector/src/metrics.ts";
import { formatProgress } from "../services/projector/src/progress.ts";
import { readStreamPush } from "../services/projector/src/push-read.ts";
import { rebuild } from "../services/projector/src/rebuild.ts";
import { generateEvents, publishAll } from "../services/projector/test/generate.ts";
import { quietLog, STREAMS, tempDbPath } from "../services/projector/test/helpers.ts";
import type { Bench } from "./report.ts";

/**
 * `pnpm bench projector`: publish a realistic log (heartbeats and job
 * lifecycles over many workers), then time (a) a bare ordered consumer that
 * only reads and JSON-parses every message and (b) the projector's rebuild
 * (decode, validate, fold, SQLite); then the live fold's lag at a steady rate.
 */

/** CPU time (ms) a process has used, from /proc (Linux); null elsewhere. */
function processCpuMsOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

/** Reads every message of the streams with ordered consumers, JSON-parsing each; returns messages read. */
async function bareRead(nc: NatsConnection, streams: readonly string[]): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let n = 0;
  for (const stream of streams) {
    const last = (await jsm.streams.info(stream)).state.last_seq;
    if (last === 0) continue;
    const consumer = await jetstream(nc).consumers.get(stream, { deliver_policy: DeliverPolicy.All });
    const decoder = new TextDecoder();
    let done!: () => void;
    const seenLast = new Promise<void>((resolve) => (done = resolve));
    const msgs = await consumer.consume({
      max_messages: 4000,
      callback: (m: JsMsg) => {
        (JSON.parse(decoder.decode(m.data)) as { v: number }).v;
        n++;
        if (m.seq >= last) done();
      },
    });
    await seenLast;
    // Stopped, so its idle pulls do not run beside the rebuild that is timed next.
    await msgs.close();
  }
  return n;
}

/**
 * The same, through the rebuild's own reader (`readStreamPush`: an ordered
 * push consumer over a core subscription), which costs less per message than
 * the library's pull-based ordered consumer: the stricter baseline, reported
 * beside the issue's.
 */
async function barePushRead(nc: NatsConnection, streams: readonly string[]): Promise<number> {
  const jsm = await jetstreamManager(nc);
  let n = 0;
  for (const stream of streams) {
    const info = (await jsm.streams.info(stream)).state;
    if (info.last_seq === 0) continue;
    const decoder = new TextDecoder();
    await readStreamPush({ nc, stream, first: info.first_seq, last: info.last_seq, full: () => false, onMessage: (_s, data) => {
      (JSON.parse(decoder.decode(data)) as { v: number }).v;
      n++;
    } }).done;
  }
  return n;
}

/** Workers for a log of `events` events: 1,000 for the full 1,000,000, one per 1,000 events for other sizes (10 to 1,000). */
export function workersFor(events: number, quick: boolean, size?: number): number {
  if (size === undefined) return quick ? 100 : 1000;
  return Math.max(10, Math.min(1000, Math.round(events / 1000)));
}

export const bench: Bench = async ({ quick, log, size }) => {
  if (size !== undefined && !(Number.isInteger(size) && size > 0)) throw new Error(`size must be a positive whole number of events, got ${size}`);
  const total = size ?? (quick ? 20_000 : 1_000_000);
  const workers = workersFor(total, quick, size);
  const lagSeconds = quick ? 3 : 15;
  const rate = 2000;
  const nats = await startTestNats({ init: true });
  const paths: string[] = [];
  try {
    const master = await nats.js("master");
    const worker = await nats.js("worker");
    const hb = await nats.js("worker");
    const js = { master: master.js, worker: worker.js, heartbeats: hb.js };
    // Simulated time ends now, so every series minute is inside the kept window.
    const stepMs = Math.max(1, Math.floor((20 * 3600_000) / total));
    const t0 = Date.now();
    const published = await publishAll(generateEvents({ workers, events: total, startMs: Date.now() - total * stepMs - 60_000, stepMs, seed: 11 }), js, 1000,
      (n) => n % 100_000 === 0 && log(`published ${n.toLocaleString("en-US")} events`));
    log(`published ${published} events in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const nc = await nats.connect("projector");
    const b0 = performance.now();
    const read = await bareRead(nc, STREAMS);
    const bareMs = performance.now() - b0;
    const bareRate = (read / bareMs) * 1000;
    log(`bare read: ${read} messages in ${bareMs.toFixed(0)} ms`);
    const p0 = performance.now();
    const pushRead = await barePushRead(nc, STREAMS);
    const pushRate = (pushRead / (performance.now() - p0)) * 1000;
    log(`bare push read: ${pushRead} messages in ${(performance.now() - p0).toFixed(0)} ms`);

    const path = tempDbPath();
    paths.push(path);
    let lastLine = "";
    const natsCpu0 = processCpuMsOf(nats.server.process.pid);
    const cpu0 = process.cpuUsage();
    // Peak memory of the process while it rebuilds: the reading thread may run ahead of the writer thread by at most 64 MB of bodies.
    const rss0 = process.memoryUsage().rss;
    let rssMax = rss0;
    const rssSampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 100);
    const r0 = performance.now();
    const r = await rebuild({
      nc, path, streams: [...STREAMS], subjects, batchMax: DEFAULT_REBUILD_BATCH, seriesRetentionMs: 24 * 3600_000, log: quietLog, graceMs: 0,
      onProgress: (p) => {
        const line = `rebuild ${formatProgress(p)}`;
        if (line.slice(0, 40) !== lastLine.slice(0, 40)) log(line);
        lastLine = line;
      },
    });
    const rebuildMs = performance.now() - r0;
    clearInterval(rssSampler);
    const cpu = process.cpuUsage(cpu0);
    const processCpuMs = (cpu.user + cpu.system) / 1000;
    const natsCpuMs = natsCpu0 === null ? null : (processCpuMsOf(nats.server.process.pid) ?? NaN) - natsCpu0;
    const perEvent = (ms: number | null) => (ms === null || !Number.isFinite(ms) ? "n/a" : `${((ms * 1000) / Math.max(1, r.events)).toFixed(1)} µs`);
    const rebuildRate = (r.events / rebuildMs) * 1000;
    log(`rebuild: ${r.events} events (${r.skipped} skipped) in ${rebuildMs.toFixed(0)} ms`);

    // Live lag at a steady offered rate, folding into the rebuilt file.
    const lags: number[] = [];
    const metrics = new ProjectorMetrics();
    const live = new LiveProjector({
      nc, path, streams: STREAMS, durable: "bench", subjects, batchMax: 1000, seriesRetentionMs: 24 * 3600_000, metrics, log: quietLog,
      onCommit: (_s, _r, l) => lags.push(...l),
    });
    await live.start();
    const liveEvents = generateEvents({ workers: 50, events: rate * lagSeconds, startMs: Date.now(), stepMs: 1000 / rate, seed: 12, idPrefix: "live" });
    const tickMs = 10;
    const perTick = (rate * tickMs) / 1000;
    const start = performance.now();
    let sent = 0;
    const it = liveEvents[Symbol.iterator]();
    for (let tick = 0; sent < rate * lagSeconds; tick++) {
      const due = start + tick * tickMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
      const batch: ReturnType<typeof it.next>["value"][] = [];
      for (let i = 0; i < perTick; i++) {
        const n = it.next();
        if (n.done) break;
        batch.push(n.value);
      }
      sent += batch.length;
      await publishAll(batch, js, 1000);
    }
    const offered = (sent / (performance.now() - start)) * 1000;
    const deadline = Date.now() + 30_000;
    while (lags.length < sent && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    await live.stop();
    lags.sort((a, b) => a - b);
    const pct = (p: number) => lags[Math.min(lags.length - 1, Math.ceil((p / 100) * lags.length) - 1)] ?? NaN;

    return {
      bench: "projector",
      params: { events: published, workers, bareRead: read, pushRead, liveRate: rate, liveSeconds: lagSeconds, liveEvents: lags.length, quick, ...(size !== undefined ? { size } : {}) },
      figures: [
        { name: "bare ordered read+parse events/s", value: Math.round(bareRate), unit: "events/s" },
        { name: "rebuild events/s", value: Math.round(rebuildRate), unit: "events/s", target: ">= 50000" },
        { name: "rebuild / bare read", value: rebuildRate / bareRate, unit: "x", target: ">= 0.6" },
        { name: "bare push read+parse events/s", value: Math.round(pushRate), unit: "events/s" },
        { name: "rebuild peak RSS above its start", value: Math.round((rssMax - rss0) / 1048576), unit: "MB" },
        { name: "rebuild / bare push read", value: rebuildRate / pushRate, unit: "x" },
        { name: "live offered rate", value: Math.round(offered), unit: "events/s" },
        { name: "live lag p50", value: pct(50), unit: "ms" },
        { name: "live lag p99", value: pct(99), unit: "ms", target: "< 100" },
      ],
      notes: [
        "bare read = the issue's baseline: @nats-io/jetstream's ordered consumer, reading and JSON-parsing every message; bare push read = the rebuild's own leaner reader (an ordered push consumer over a core subscription) doing the same, the stricter baseline",
        `rebuild folded ${r.events} messages (${r.skipped} skipped, ${((r.skipped / Math.max(1, r.events)) * 100).toFixed(2)} %: stale completions the generator emits on purpose)`,
        `rebuild writer thread busy ${(r.writerBusyMs / 1000).toFixed(1)} s of ${(rebuildMs / 1000).toFixed(1)} s (parse, fold, SQLite); the reading thread reads, validates and packs`,
        `rebuild CPU per event: reading thread ${perEvent(r.readerCpuMs)}, writer thread ${perEvent(r.writerCpuMs)}, whole process ${perEvent(processCpuMs)} (GC helpers and the writer thread's start-up included), nats-server ${perEvent(natsCpuMs)}`,
        `load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(" ")} on ${cpus().length} cores`,
        "lag = stream publish time to the batch's SQLite commit, measured in the same process that publishes",
      ],
    };
  } finally {
    await nats.stop();
    for (const p of paths) rmSync(dirname(p), { recursive: true, force: true });
  }
};
