// Offline fold timing (no NATS), what the rebuild's writer thread does per batch:
// `npx tsx services/projector/test/fold-offline.ts [events] [workers] [batch] [runs]`.
// Reports thread CPU per event (the machine is shared: CPU time is steadier than wall time) and the min over the runs.
// VALIDATE=1 also times the reading thread's validation (decodeEvent) per event.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeEvent, encodeEvent, subjectOf, subjects, type TroupeEvent } from "@troupe/events";
import { generateEvents } from "./generate.ts";
import { createIndexes } from "../src/schema.ts";
import { threadCpuMs } from "../src/thread-cpu.ts";
import { openWriterDb, ReadModelWriter, type RawMessage } from "../src/writer.ts";

const total = Number(process.argv[2] ?? 200_000);
const workers = Number(process.argv[3] ?? 1000);
const BATCH = Number(process.argv[4] ?? 20_000);
const runs = Number(process.argv[5] ?? 3);
const stepMs = Math.max(1, Math.floor((20 * 3600_000) / total));
const evs = [...generateEvents({ workers, events: total, startMs: Date.now() - total * stepMs - 60_000, stepMs, seed: 11 })];
const byStream: Record<string, RawMessage[]> = { E: [], H: [] };
const now = Date.now();
for (const e of evs) {
  const s = e.type === "worker.heartbeat" ? "H" : "E";
  const list = byStream[s] as RawMessage[];
  list.push({ seq: list.length + 1, subject: subjectOf(e, subjects), data: encodeEvent(e), publishedMs: now });
}
const cpu = () => threadCpuMs() ?? performance.now();
const best: Record<string, number> = {};
const keep = (k: string, v: number) => (best[k] = Math.min(best[k] ?? Infinity, v));
for (let run = 0; run < runs; run++) {
  if (process.env.VALIDATE) {
    const c0 = cpu();
    let bad = 0;
    for (const list of Object.values(byStream)) for (const m of list) if (!decodeEvent(m.subject, m.data, { subjects }).ok) bad++;
    keep("validate", ((cpu() - c0) * 1000) / total);
    if (bad) console.log(`${bad} invalid`);
  }
  const dir = mkdtempSync(join(tmpdir(), "fold-"));
  const w = new ReadModelWriter(openWriterDb(join(dir, "db"), "build"), { subjects, seriesRetentionMs: 24 * 3600_000, clockMs: () => now, holdRows: !process.env.NO_HOLD });
  const line: string[] = [];
  const w0 = performance.now();
  let all = 0;
  for (const [s, list] of Object.entries(byStream)) {
    const c0 = cpu();
    for (let i = 0; i < list.length; i += BATCH) {
      // Like the rebuild's writer thread: bodies validated elsewhere, only parsed here.
      const batch = list.slice(i, i + BATCH).map((m) => ({ ...m, decoded: { ok: true as const, value: JSON.parse(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength).toString()) as TroupeEvent } }));
      w.applyBatch(s, batch);
    }
    const ms = cpu() - c0;
    all += ms;
    keep(s, (ms * 1000) / list.length);
    line.push(`${s} ${((ms * 1000) / list.length).toFixed(2)}`);
  }
  const c0 = cpu();
  w.flushHeld();
  createIndexes(w.db);
  const fin = cpu() - c0;
  all += fin;
  keep("finish", (fin * 1000) / total);
  keep("all", (all * 1000) / total);
  console.log(`run ${run + 1}: CPU µs/event: ${line.join(", ")}, finish ${((fin * 1000) / total).toFixed(2)}, all ${((all * 1000) / total).toFixed(2)} (wall ${((performance.now() - w0) * 1000 / total).toFixed(2)})`);
  w.close();
  if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  else console.log(dir);
}
console.log(`min over ${runs} runs, CPU µs/event:`, Object.fromEntries(Object.entries(best).map(([k, v]) => [k, Number(v.toFixed(2))])));
