import { parentPort, workerData } from "node:worker_threads";
import { subjectsFor, type Decoded, type TroupeEvent } from "@troupe/events";
import type { BuildFinish, BuildReply, BuildRequest, BuildThreadData, PackedBatch } from "./build-writer.ts";
import { createIndexes } from "./schema.ts";
import { threadCpuMs } from "./thread-cpu.ts";
import { openWriterDb, ReadModelWriter, type RawMessage } from "./writer.ts";

/**
 * The rebuild's writer thread: owns the new generation file and folds the
 * packed batches the main thread reads from NATS, in the order they arrive.
 * Reading and folding then run on two cores.
 */

/** The batch as messages with their decode results (the reading thread validated every body). */
function unpack(b: PackedBatch): RawMessage[] {
  const subjects = b.subjects.split("\n");
  const text = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  const invalid = new Map(b.invalid.map((x) => [x.i, x.error]));
  const out: RawMessage[] = new Array(b.seqs.length);
  for (let i = 0; i < b.seqs.length; i++) {
    const start = b.offsets[i] as number;
    const end = b.offsets[i + 1] as number;
    const error = invalid.get(i);
    // Valid UTF-8 JSON of a valid event (checked by decodeEvent): parsing it is all decodeEvent would add.
    const decoded: Decoded<TroupeEvent> = error ? { ok: false, error } : { ok: true, value: JSON.parse(text.toString("utf8", start, end)) as TroupeEvent };
    out[i] = { seq: b.seqs[i] as number, subject: subjects[i] as string, data: b.data.subarray(start, end), publishedMs: b.publishedMs[i] as number, decoded };
  }
  return out;
}

const port = parentPort;
if (!port) throw new Error("build-thread.ts runs only as a worker thread");
const d = workerData as BuildThreadData;
// Subjects is a set of functions (not cloneable): rebuilt here from its prefix.
const s = subjectsFor(d.prefix);
let writer: ReadModelWriter | null = null;
const cpu0 = threadCpuMs();
try {
  writer = new ReadModelWriter(openWriterDb(d.file, "build"), { subjects: s, seriesRetentionMs: d.seriesRetentionMs, clockMs: () => d.clockMs ?? Date.now() });
  port.postMessage({ type: "ready" } satisfies BuildReply);
} catch (e) {
  port.postMessage({ type: "error", message: (e as Error).message } satisfies BuildReply);
}

/** Time spent folding batches: how busy this thread was (the rebuild reports it). */
let busyMs = 0;

function finish(w: ReadModelWriter, f: BuildFinish): Record<string, number> {
  w.pruneSeries(true);
  createIndexes(w.db);
  const checkpoints = w.checkpoints();
  w.writeStatus({ mode: "rebuild", updatedAt: new Date().toISOString(), lagMs: 0, lagP99Ms: 0, applied: f.applied, skipped: f.skipped, checkpoints });
  // The finished file becomes a normal WAL database before anyone sees it.
  w.db.pragma("journal_mode = WAL");
  w.close();
  return checkpoints;
}

port.on("message", (req: BuildRequest) => {
  const w = writer;
  if (!w) return;
  try {
    if (req.type === "batch") {
      const t0 = performance.now();
      const r = w.applyBatch(req.batch.stream, unpack(req.batch));
      busyMs += performance.now() - t0;
      port.postMessage({ type: "applied", read: req.batch.seqs.length, bytes: req.batch.data.length, applied: r.applied, skipped: r.skipped } satisfies BuildReply);
    } else if (req.type === "finish") {
      writer = null;
      const checkpoints = finish(w, req);
      const cpu = threadCpuMs();
      port.postMessage({ type: "finished", checkpoints, busyMs, cpuMs: cpu === null || cpu0 === null ? null : cpu - cpu0 } satisfies BuildReply);
    } else {
      writer = null;
      w.close();
      port.postMessage({ type: "closed" } satisfies BuildReply);
    }
  } catch (e) {
    writer = null;
    try { w.close(); } catch { /* already failing: the first error is the one reported */ }
    port.postMessage({ type: "error", message: (e as Error).message } satisfies BuildReply);
  }
});
