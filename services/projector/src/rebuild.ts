import { resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { isExpectedSkip } from "./fold.ts";
import type { Subjects } from "@troupe/events";
import { retryWithBackoff, startOutage, type Logger } from "@troupe/events/node";
import { buildThreadEntry, removeAbandonedBundles, tsxEntry } from "./build-thread-bundle.ts";
import { BuildWriter } from "./build-writer.ts";
import { currentTarget, newGenerationPath, removeDatabaseFiles, removeStaleGenerations, swapIn } from "./db-file.ts";
import { assertReadModelPath } from "./init-file.ts";
import type { Progress, Until } from "./progress.ts";
import { readStreamPush } from "./push-read.ts";
import { threadCpuMs } from "./thread-cpu.ts";

/**
 * Rebuild: fold the whole log into a fresh generation file with an ordered
 * consumer per stream, then swap it in with one rename. Readers and a running
 * live projector keep using the old file until the swap and then move (they
 * check which file the path points at). Nothing is acknowledged: ordered
 * consumers are ephemeral.
 */

export interface RebuildOptions {
  nc: NatsConnection;
  path: string;
  /** Events stream first: `--until <seq>` counts in it. */
  streams: readonly [events: string, ...rest: string[]];
  subjects: Subjects;
  batchMax: number;
  seriesRetentionMs: number;
  until?: Until;
  log: Logger;
  onProgress?: (p: Progress) => void;
  /**
   * Where every message is validated (`decodeEvent`): on the reading thread
   * (the writer thread then parses each valid body again), on the writer
   * thread (each body parsed once), or `auto` (default): batch by batch, on
   * the reading thread while the writer thread has batches waiting, else on
   * the writer thread. TROUPE_REBUILD_VALIDATE sets the default.
   */
  validateOn?: "reader" | "writer" | "auto";
  /** How long the previous file stays for readers that still have it open before it is deleted (default 5 s). */
  graceMs?: number;
  /** Stops the rebuild (SIGTERM): it rejects with RebuildAborted, the unfinished file removed, the read models unchanged. */
  abort?: AbortSignal;
}

/** A rebuild stopped through its abort signal. */
export class RebuildAborted extends Error {
  constructor() {
    super("rebuild stopped before it finished; the read models are unchanged");
    this.name = "RebuildAborted";
  }
}

export interface RebuildResult {
  events: number;
  skipped: number;
  ms: number;
  /** Time the writer thread spent folding (the rest of `ms` it waited for the reading thread). */
  writerBusyMs: number;
  /** CPU time of the writer thread (after loading its code) and of the reading (calling) thread during the rebuild; null where not measurable. */
  writerCpuMs: number | null;
  readerCpuMs: number | null;
  file: string;
  checkpoints: Record<string, number>;
  /** Resolves once the previous generation is deleted. */
  cleanup: Promise<void>;
  /** Removes the previous file now instead of after the grace (a process on its way out: the unref'd timer would never fire). */
  removePrevious(): void;
}

interface Target {
  stream: string;
  first: number;
  last: number;
  /** Stop before a message published after this (epoch ms). */
  untilMs?: number;
}

async function targets(nc: NatsConnection, o: RebuildOptions): Promise<Target[]> {
  const jsm = await jetstreamManager(nc);
  const out: Target[] = [];
  let untilMs = o.until && "timeMs" in o.until ? o.until.timeMs : undefined;
  for (const [i, stream] of o.streams.entries()) {
    const info = await jsm.streams.info(stream);
    let last = info.state.last_seq;
    if (i === 0 && o.until && "seq" in o.until) {
      if (o.until.seq < last) {
        last = o.until.seq;
        // The other streams stop at the time of that event.
        const m = await jsm.streams.getMessage(stream, { seq: last });
        if (!m) throw new Error(`--until ${last}: ${stream} has no message with that sequence`);
        untilMs = m.time.getTime();
      }
    }
    out.push({ stream, first: info.state.messages === 0 ? last + 1 : info.state.first_seq, last, ...(untilMs !== undefined ? { untilMs } : {}) });
  }
  return out;
}

/**
 * Reads one stream up to its target (`readStreamPush`) and hands full batches
 * to the writer thread. Messages are packed as they arrive; while the writer
 * thread has `maxInFlightBytes` waiting, the read holds its flow control, so
 * waiting on the writer slows the read instead of buffering.
 */
async function readStream(nc: NatsConnection, writer: BuildWriter, t: Target, batchMax: number, validateOn: "reader" | "writer" | "auto", log: Logger, abort?: AbortSignal): Promise<void> {
  if (abort?.aborted) throw new RebuildAborted();
  if (t.first > t.last) return;
  const batch = writer.packer(t.stream, batchMax, validateOn === "reader");
  const read = readStreamPush({
    nc, stream: t.stream, first: t.first, last: t.last, ...(t.untilMs !== undefined ? { untilMs: t.untilMs } : {}),
    full: () => writer.full,
    onRestart: (why) => log.warn({ stream: t.stream }, `rebuild read: ${why}`),
    onMessage: (subject, data, seq, publishedMs) => {
      batch.add(subject, data, seq, publishedMs);
      if (batch.full) {
        writer.post(batch);
        // The writer thread is behind (a batch waits besides the one it folds): this thread takes the validation of the next batch.
        if (validateOn === "auto") batch.setValidate(writer.queued >= 2);
      }
    },
  });
  writer.onRoom = () => read.resume();
  // Also when NATS is gone and nothing arrives: the read would otherwise wait for its own watchdog (a minute).
  const onAbort = () => read.cancel(new RebuildAborted());
  abort?.addEventListener("abort", onAbort, { once: true });
  try {
    await read.done;
  } finally {
    writer.onRoom = null;
    abort?.removeEventListener("abort", onAbort);
  }
  await writer.apply(batch);
}

const VALIDATE_ON = ["reader", "writer", "auto"] as const;

/** TROUPE_REBUILD_VALIDATE (a measurement knob): unset means auto; anything but the three names is refused, not ignored. */
export function validateDefault(env: Record<string, string | undefined> = process.env): "reader" | "writer" | "auto" {
  const v = env.TROUPE_REBUILD_VALIDATE;
  if (v === undefined || v === "") return "auto";
  if ((VALIDATE_ON as readonly string[]).includes(v)) return v as (typeof VALIDATE_ON)[number];
  throw new Error(`TROUPE_REBUILD_VALIDATE: expected one of ${VALIDATE_ON.join(", ")}, got ${JSON.stringify(v.slice(0, 40))}`);
}

/** Removes what killed rebuilds left (their generation files, their writer thread's bundle): on every rebuild and on the projector's start. */
export function removeRebuildLeftovers(path: string, log: Logger): void {
  for (const f of removeStaleGenerations(path, 60_000)) log.info({ file: f }, "removed an unfinished or abandoned read-model generation");
  const b = removeAbandonedBundles();
  for (const d of b.removed) log.info({ dir: d }, "removed the writer-thread bundle of a rebuild that died");
  for (const f of b.failed) log.warn({ dir: f.dir, err: f.error }, "could not remove the writer-thread bundle of a rebuild that died");
}

export async function rebuild(o: RebuildOptions): Promise<RebuildResult> {
  assertReadModelPath(o.path); // the swap replaces it and deletes what it pointed at
  removeRebuildLeftovers(o.path, o.log);
  const validateOn = o.validateOn ?? validateDefault();
  const started = Date.now();
  const cpu0 = threadCpuMs();
  // Bundled while the streams are asked for their bounds.
  const entry = buildThreadEntry().catch((e: unknown) => {
    o.log.warn({ err: (e as Error).message }, "could not bundle the rebuild's writer thread; loading it through tsx instead (about a second more CPU)");
    return tsxEntry;
  });
  // Stopped while the streams are asked for their bounds (with NATS away, until that request times out): a stop, not a failure.
  const stoppedHere = (e: unknown) => (o.abort?.aborted ? new RebuildAborted() : e);
  if (o.abort?.aborted) throw new RebuildAborted();
  // A JetStream that does not answer is waited out for a minute, as the reads below wait out an outage.
  const ts = await retryWithBackoff(() => targets(o.nc, o), {
    maxWaitMs: 2000,
    giveUpAfterMs: 60_000,
    retryIf: startOutage(o.nc),
    stopped: () => o.abort?.aborted ?? false,
    onRetry: (e, wait) => o.log.warn({ err: e.message, retryInMs: wait }, "could not read where the streams end yet"),
  }).catch((e: unknown) => Promise.reject(stoppedHere(e)));
  if (o.abort?.aborted || !ts) throw new RebuildAborted();
  const file = newGenerationPath(o.path);
  const clock = o.until && "timeMs" in o.until ? o.until.timeMs : ts.find((t) => t.untilMs !== undefined)?.untilMs;
  const total = ts.reduce((s, t) => s + Math.max(0, t.last - t.first + 1), 0);
  let checkpoints: Record<string, number> = {};
  let writerBusyMs = 0;
  let writerCpuMs: number | null = null;
  let done = 0;
  let skipped = 0;
  let lastReport = 0;
  // Every stream read to its end: done is the whole. A time bound (--until) stops a stream before its last message,
  // and the bar ended at "35.1% 100/285", as if stopped half-way (a new user's walkthrough).
  let complete = false;
  const report = (force = false) => {
    const now = Date.now();
    if (!o.onProgress || (!force && now - lastReport < 500)) return;
    lastReport = now;
    o.onProgress({ done, total: complete ? done : Math.max(total, done), elapsedMs: now - started });
  };
  const writer = new BuildWriter(await entry, { file, prefix: o.subjects.prefix, seriesRetentionMs: o.seriesRetentionMs, clockMs: clock ?? null }, (r) => {
    for (const s of r.skipped) (isExpectedSkip(s.reason) ? o.log.info : o.log.warn).call(o.log, { seq: s.seq, subject: s.subject, reason: s.reason }, `skipped event: ${s.detail}`);
    done += r.read;
    skipped += r.skipped.length;
    report();
  });
  try {
    for (const t of ts) {
      o.log.info({ stream: t.stream, from: t.first, to: t.last, ...(t.untilMs !== undefined ? { until: new Date(t.untilMs).toISOString() } : {}) }, "rebuilding from stream");
      await readStream(o.nc, writer, t, o.batchMax, validateOn, o.log, o.abort);
    }
    if (o.abort?.aborted) throw new RebuildAborted();
    await writer.drain();
    if (o.abort?.aborted) throw new RebuildAborted();
    complete = true;
    report(true);
    ({ checkpoints, busyMs: writerBusyMs, cpuMs: writerCpuMs } = await writer.finish(done - skipped, skipped));
  } catch (e) {
    // The first error is the one thrown; closing the unfinished file must not hide it.
    await writer.abort().catch((closeErr: unknown) => o.log.warn({ err: closeErr }, "closing the unfinished rebuild file failed"));
    removeDatabaseFiles(file);
    throw e;
  }
  const cpu1 = threadCpuMs();
  const readerCpuMs = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
  let previous: string | null;
  try {
    previous = swapIn(o.path, file);
  } catch (e) {
    // Failed before the link changed (the file could not be flushed): the generation is nobody's, so it goes now,
    // not at this process's exit. After the link changed it is the read models.
    if (currentTarget(o.path) !== resolve(file)) removeDatabaseFiles(file);
    throw e;
  }
  const ms = Date.now() - started;
  let removeNow = () => {};
  const cleanup = previous
    ? new Promise<void>((r) => {
      const remove = () => {
        clearTimeout(timer);
        removeNow = () => {};
        removeDatabaseFiles(previous);
        r();
      };
      const timer = setTimeout(remove, o.graceMs ?? 5000).unref();
      removeNow = remove;
    })
    : Promise.resolve();
  return { events: done, skipped, ms, writerBusyMs, writerCpuMs, readerCpuMs, file, checkpoints, cleanup, removePrevious: () => removeNow() };
}
