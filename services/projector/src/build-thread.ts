import { parentPort, workerData } from "node:worker_threads";
import { subjectsFor } from "@troupe/events";
import type { BuildFinish, BuildReply, BuildRequest, BuildThreadData } from "./build-writer.ts";
import { unpack } from "./packed.ts";
import { createIndexes } from "./schema.ts";
import { threadCpuMs } from "./thread-cpu.ts";
import { openWriterDb, ReadModelWriter } from "./writer.ts";

/**
 * The rebuild's writer thread: owns the new generation file and folds the
 * packed batches the main thread reads from NATS, in the order they arrive.
 * Reading and folding then run on two cores.
 */

const port = parentPort;
if (!port) throw new Error("build-thread.ts runs only as a worker thread");
const d = workerData as BuildThreadData;
// Subjects is a set of functions (not cloneable): rebuilt here from its prefix.
const s = subjectsFor(d.prefix);
let writer: ReadModelWriter | null = null;
const cpu0 = threadCpuMs();
try {
  writer = new ReadModelWriter(openWriterDb(d.file, "build"), { subjects: s, seriesRetentionMs: d.seriesRetentionMs, clockMs: () => d.clockMs ?? Date.now(), holdRows: true });
  port.postMessage({ type: "ready" } satisfies BuildReply);
} catch (e) {
  port.postMessage({ type: "error", message: (e as Error).message } satisfies BuildReply);
}

/** Time spent folding batches: how busy this thread was (the rebuild reports it). */
let busyMs = 0;

function finish(w: ReadModelWriter, f: BuildFinish): Record<string, number> {
  w.flushHeld();
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
      const r = w.applyBatch(req.batch.stream, unpack(req.batch, s));
      busyMs += performance.now() - t0;
      port.postMessage({ type: "applied", read: req.batch.count, bytes: req.batch.data.length, applied: r.applied, skipped: r.skipped } satisfies BuildReply);
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
