import { DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Subjects } from "@troupe/events";
import type { Logger } from "@troupe/events/node";
import { Batcher, rawOf } from "./batcher.ts";
import { newGenerationPath, removeDatabaseFiles, swapIn } from "./db-file.ts";
import type { Progress, Until } from "./progress.ts";
import { openWriterDb, ReadModelWriter } from "./writer.ts";

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
  /** How long the previous file stays for readers that still have it open before it is deleted (default 5 s). */
  graceMs?: number;
}

export interface RebuildResult {
  events: number;
  skipped: number;
  ms: number;
  file: string;
  checkpoints: Record<string, number>;
  /** Resolves once the previous generation is deleted. */
  cleanup: Promise<void>;
}

/** A rebuild batch closes after this long even when not full (the log is read as fast as it comes). */
const REBUILD_LINGER_MS = 25;

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

/** Folds one stream into the writer; resolves with the number of messages read. */
function foldStream(nc: NatsConnection, writer: ReadModelWriter, t: Target, o: RebuildOptions, onBatch: (n: number, skipped: number) => void): Promise<void> {
  if (t.first > t.last) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    let messages: { close(): Promise<void | Error> } | null = null;
    const finish = (e?: Error) => {
      if (finished) return;
      finished = true;
      batcher.stop();
      void messages?.close();
      if (e) reject(e);
      else resolve();
    };
    const batcher = new Batcher(o.batchMax, (msgs: JsMsg[]) => {
      if (finished) return;
      let end = msgs.length;
      let done = false;
      for (let i = 0; i < msgs.length; i++) {
        const m = msgs[i] as JsMsg;
        if (t.untilMs !== undefined && Math.floor(m.info.timestampNanos / 1e6) > t.untilMs) { end = i; done = true; break; }
        if (m.seq >= t.last || m.info.pending === 0) { end = i + 1; done = true; break; }
      }
      try {
        const r = writer.applyBatch(t.stream, msgs.slice(0, end).map(rawOf));
        for (const s of r.skipped) o.log.warn({ stream: t.stream, seq: s.seq, subject: s.subject, reason: s.reason }, `skipped event: ${s.detail}`);
        onBatch(end, r.skipped.length);
      } catch (e) {
        finish(e as Error);
        return;
      }
      if (done) finish();
    }, REBUILD_LINGER_MS);
    void (async () => {
      const consumer = await jetstream(nc).consumers.get(t.stream, { opt_start_seq: t.first, deliver_policy: DeliverPolicy.StartSequence });
      const ms = await consumer.consume({ max_messages: Math.min(o.batchMax * 2, 10_000), callback: (m) => batcher.push(m) });
      messages = ms;
      if (finished) void ms.close();
    })().catch((e: unknown) => finish(new Error(`reading ${t.stream}: ${(e as Error).message}`, { cause: e })));
  });
}

export async function rebuild(o: RebuildOptions): Promise<RebuildResult> {
  const started = Date.now();
  const ts = await targets(o.nc, o);
  const file = newGenerationPath(o.path);
  const clock = o.until && "timeMs" in o.until ? o.until.timeMs : ts.find((t) => t.untilMs !== undefined)?.untilMs;
  const writer = new ReadModelWriter(openWriterDb(file, "build"), {
    subjects: o.subjects, seriesRetentionMs: o.seriesRetentionMs, clockMs: () => clock ?? Date.now(),
  });
  const total = ts.reduce((s, t) => s + Math.max(0, t.last - t.first + 1), 0);
  let checkpoints: Record<string, number> = {};
  let done = 0;
  let skipped = 0;
  let lastReport = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (!o.onProgress || (!force && now - lastReport < 500)) return;
    lastReport = now;
    o.onProgress({ done, total: Math.max(total, done), elapsedMs: now - started });
  };
  try {
    for (const t of ts) {
      o.log.info({ stream: t.stream, from: t.first, to: t.last, ...(t.untilMs !== undefined ? { until: new Date(t.untilMs).toISOString() } : {}) }, "rebuilding from stream");
      await foldStream(o.nc, writer, t, o, (n, s) => {
        done += n;
        skipped += s;
        report();
      });
    }
    report(true);
    writer.pruneSeries(true);
    checkpoints = writer.checkpoints();
    writer.writeStatus({ mode: "rebuild", updatedAt: new Date().toISOString(), lagMs: 0, lagP99Ms: 0, applied: done - skipped, skipped, checkpoints });
    // The finished file becomes a normal WAL database before anyone sees it.
    writer.db.pragma("journal_mode = WAL");
    writer.close();
  } catch (e) {
    writer.close();
    removeDatabaseFiles(file);
    throw e;
  }
  const previous = swapIn(o.path, file);
  const ms = Date.now() - started;
  const cleanup = previous
    ? new Promise<void>((r) => setTimeout(() => { removeDatabaseFiles(previous); r(); }, o.graceMs ?? 5000).unref())
    : Promise.resolve();
  return { events: done, skipped, ms, file, checkpoints, cleanup };
}
