import type { NatsConnection } from "@nats-io/nats-core";
import { subjectsFor } from "@troupe/events";
import { connectAs, createLogger, serveMetricsHttp, shutdownSignal, storeNames, UsageError, type MetricsHttp, type OptionValues } from "@troupe/events/node";
import type { liveOptions, replayOptions } from "./config.ts";
import { dbPathFor } from "./db-file.ts";
import { assertReadModelPath, prepareFile } from "./init-file.ts";
import { LiveProjector } from "./live.ts";
import { ProjectorMetrics } from "./metrics.ts";
import { formatProgress, parseUntil, type Progress } from "./progress.ts";
import { rebuild, RebuildAborted, removeRebuildLeftovers } from "./rebuild.ts";
import { waitForStreams } from "./wait-streams.ts";
import { acquireWriterLock, WriterLockError, type WriterLock } from "./writer-lock.ts";

/** Entry module: config → connection → rebuild and/or live fold → metrics → shutdown. */

type LiveConfig = OptionValues<typeof liveOptions>;

/** How often the running projector removes what killed rebuilds left (a readdir of the data dir and of the temporary dir). */
const LEFTOVER_SWEEP_MS = 10_000;
type ReplayConfig = OptionValues<typeof replayOptions>;

/** Progress on stderr: one rewritten line on a terminal, a line every few seconds otherwise. */
function progressPrinter(): (p: Progress) => void {
  let last = 0;
  return (p) => {
    if (process.stderr.isTTY) process.stderr.write(`\rrebuild ${formatProgress(p)}${p.done >= p.total ? "\n" : ""}`);
    else if (Date.now() - last > 2000 || p.done >= p.total) {
      last = Date.now();
      process.stderr.write(`rebuild ${formatProgress(p)}\n`);
    }
  };
}

function common(v: LiveConfig | ReplayConfig) {
  const s = subjectsFor(v.prefix);
  const names = storeNames(v.prefix);
  return {
    subjects: s,
    path: dbPathFor(v.dataDir, v.db),
    streams: [names.events, names.heartbeats] as [string, string],
    seriesRetentionMs: v.seriesRetentionHours * 3600_000,
  };
}

export async function runReplay(v: ReplayConfig): Promise<number> {
  // Warnings only, unless asked: its info lines (JSON) came between the lines of the progress bar.
  const log = createLogger("projector", process.env.TROUPE_LOG_LEVEL ?? "warn");
  const c = common(v);
  const until = v.until !== undefined ? parseUntil(v.until) : undefined;
  assertReadModelPath(c.path);
  // A past state needs the file to itself: a live projector would fold the rest of the log on top of it after the
  // swap, and the replay changed nothing, without a word (a new user's walkthrough). Held until the swap is done.
  let lock: WriterLock | undefined;
  if (until) {
    try {
      lock = acquireWriterLock(c.path);
    } catch (e) {
      if (!(e instanceof WriterLockError)) throw e;
      throw new UsageError(`--until: ${e.message.replace(/; run one projector per database.*$/, "")}, which would fold the rest of the log on top of the past state: stop it first, or write the past state elsewhere with --db <file>`);
    }
  }
  try {
    const nc = await connectAs({ url: v.natsUrl, ca: v.natsCa, role: "projector", dataDir: v.dataDir, name: "troupe-replay", log });
    const abort = new AbortController();
    void shutdownSignal().then(() => abort.abort());
    try {
      const r = await rebuild({ nc, path: c.path, streams: c.streams, subjects: c.subjects, batchMax: v.rebuildBatch, seriesRetentionMs: c.seriesRetentionMs, ...(until ? { until } : {}), log, onProgress: progressPrinter(), abort: abort.signal });
      const perSecond = Math.round((r.events / Math.max(1, r.ms)) * 1000);
      log.info({ path: c.path, events: r.events, skipped: r.skipped, ms: r.ms, eventsPerSecond: perSecond, checkpoints: r.checkpoints }, "rebuild swapped in");
      console.log(`swapped in ${c.path}: ${r.events} events (${r.skipped} skipped) in ${(r.ms / 1000).toFixed(1)} s, ${perSecond}/s${v.until !== undefined ? `, up to ${v.until}` : ""}`);
      await r.cleanup;
      return 0;
    } catch (e) {
      if (!(e instanceof RebuildAborted)) throw e;
      log.warn(e.message);
      return 1;
    } finally {
      await nc.close();
    }
  } finally {
    lock?.release();
  }
}

export async function runProjector(v: LiveConfig): Promise<number> {
  const log = createLogger("projector");
  const c = common(v);
  assertReadModelPath(c.path); // before the lock file is made beside it
  let lock: WriterLock;
  try {
    lock = acquireWriterLock(c.path);
  } catch (e) {
    if (!(e instanceof WriterLockError)) throw e;
    log.error({ path: c.path }, e.message);
    return 1;
  }
  const stopping = shutdownSignal();
  // A stop during the start-up rebuild ends it (a big log takes minutes, and with NATS gone its read waits for a minute),
  // and so does one while the first connect waits for NATS (the signal killed the process on the spot).
  const abort = new AbortController();
  void stopping.then(() => abort.abort());
  let nc: NatsConnection;
  try {
    nc = await connectAs({ url: v.natsUrl, ca: v.natsCa, role: "projector", dataDir: v.dataDir, name: "troupe-projector", log, waitOnFirstConnect: true, abort: abort.signal });
  } catch (e) {
    lock.release();
    if (!abort.signal.aborted) throw e;
    log.info({ signal: await stopping }, "shutting down while connecting to NATS");
    return 0;
  }
  const metrics = new ProjectorMetrics();
  let live: LiveProjector | null = null;
  let http: MetricsHttp | null = null;
  /** Removes the file a start-up rebuild replaced (due a few seconds after the swap) now, on the way out; else it stays on disk. */
  let removePrevious = () => {};
  let sweep: NodeJS.Timeout | null = null;
  try {
    const mustRebuild = prepareFile(c.path, log) || v.rebuild;
    // What killed rebuilds left (a rebuild sweeps it itself when it starts).
    if (!mustRebuild) removeRebuildLeftovers(c.path, log);
    // Healthy while the live fold follows the streams (it answered 200 during a start-up rebuild, the live fold's start
    // and a reopen after a swap).
    let starting: string | null = "waiting for the streams (troupe init)";
    http = await serveMetricsHttp({ host: v.host, port: v.port, metrics: () => metrics.render(), healthy: () => starting === null && !live?.notFollowing, unhealthy: () => starting ?? live?.notFollowing ?? "" }).catch((e: Error) => {
      throw new Error(`projector metrics: cannot listen on ${v.host}:${v.port}: ${e.message}`, { cause: e });
    });
    log.info({ url: `http://${v.host}:${http.port}/metrics` }, "metrics listening");
    const waitingFor = { streams: "waiting for the streams (troupe init)", jetstream: "waiting for JetStream to answer" } as const;
    if (!(await waitForStreams(nc, c.streams, log, abort.signal, { onWaiting: (what) => (starting = waitingFor[what]) }))) {
      log.info({ signal: await stopping }, "shutting down while waiting for the streams");
      return 0;
    }
    if (mustRebuild) {
      starting = "rebuilding the read models from the log";
      try {
        const r = await rebuild({ nc, path: c.path, streams: c.streams, subjects: c.subjects, batchMax: v.rebuildBatch, seriesRetentionMs: c.seriesRetentionMs, log, onProgress: progressPrinter(), abort: abort.signal });
        removePrevious = r.removePrevious;
        log.info({ events: r.events, skipped: r.skipped, ms: r.ms, checkpoints: r.checkpoints }, "rebuild swapped in");
      } catch (e) {
        if (!(e instanceof RebuildAborted)) throw e;
        log.info({ signal: await stopping }, `shutting down: ${e.message}`);
        return 0;
      }
    }
    live = new LiveProjector({ nc, path: c.path, streams: c.streams, durable: v.durable, subjects: c.subjects, batchMax: v.batch, seriesRetentionMs: c.seriesRetentionMs, metrics, log, signal: abort.signal });
    starting = "starting to follow the streams";
    await live.start();
    if (abort.signal.aborted) {
      log.info({ signal: await stopping }, "shutting down while waiting to follow the streams");
      return 0;
    }
    starting = null;
    // A `troupe replay` killed beside the running projector leaves its generation (as big as the read models) and bundle.
    sweep = setInterval(() => {
      try {
        removeRebuildLeftovers(c.path, log);
      } catch (e) {
        log.warn({ err: (e as Error).message, path: c.path }, "could not remove what killed rebuilds left");
      }
    }, LEFTOVER_SWEEP_MS).unref();
    log.info({ path: c.path }, "projector running");
    const outcome = await Promise.race([stopping.then((sig) => ({ sig })), live.failure, nc.closed().then((e) => ({ closed: e }))]);
    if ("closed" in outcome) {
      log.error({ err: outcome.closed }, "NATS connection closed");
      return 1;
    }
    log.info({ signal: outcome.sig }, "shutting down");
    return 0;
  } catch (e) {
    log.error({ err: e }, "projector failed");
    return 1;
  } finally {
    if (sweep) clearInterval(sweep);
    await live?.stop().catch((e: unknown) => log.error({ err: e }, "stopping the fold"));
    await http?.close();
    await nc.close().catch(() => {});
    removePrevious();
    lock.release();
  }
}
