// Offline fold timing (no NATS): `npx tsx services/projector/test/fold-offline.ts [events] [workers]`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeEvent, encodeEvent, subjectOf, subjects } from "@troupe/events";
import { generateEvents } from "./generate.ts";
import { createIndexes } from "../src/schema.ts";
import { openWriterDb, ReadModelWriter, type RawMessage } from "../src/writer.ts";

const total = Number(process.argv[2] ?? 200_000);
const workers = Number(process.argv[3] ?? 1000);
const BATCH = Number(process.argv[4] ?? 5000);
const stepMs = Math.max(1, Math.floor((20 * 3600_000) / total));
const evs = [...generateEvents({ workers, events: total, startMs: Date.now() - total * stepMs - 60_000, stepMs, seed: 11 })];
const byStream: Record<string, RawMessage[]> = { E: [], H: [] };
const now = Date.now();
for (const e of evs) {
  const s = e.type === "worker.heartbeat" ? "H" : "E";
  const list = byStream[s] as RawMessage[];
  list.push({ seq: list.length + 1, subject: subjectOf(e, subjects), data: encodeEvent(e), publishedMs: now });
}
let t = performance.now();
let bad = 0;
for (const list of Object.values(byStream)) for (const m of list) if (!decodeEvent(m.subject, m.data, { subjects }).ok) bad++;
const decodeMs = performance.now() - t;
console.log(`decode only: ${(total / decodeMs * 1000).toFixed(0)} events/s (${(decodeMs * 1000 / total).toFixed(2)} µs/event, ${bad} bad)`);
const dir = mkdtempSync(join(tmpdir(), "fold-"));
const w = new ReadModelWriter(openWriterDb(join(dir, "db"), "build"), { subjects, seriesRetentionMs: 24 * 3600_000, clockMs: () => Date.now() });
const q = (w as unknown as { q: Record<string, { run: (p: unknown) => void }> }).q;
const counts: Record<string, number> = {};
const runMs: Record<string, number> = {};
for (const k of Object.keys(q)) {
  const orig = q[k]!.run;
  q[k]!.run = (p) => { counts[k] = (counts[k] ?? 0) + 1; const r0 = performance.now(); orig(p); runMs[k] = (runMs[k] ?? 0) + performance.now() - r0; };
}
const wf = w as unknown as { flush: () => void };
const origFlush = wf.flush.bind(w);
let flushMs = 0;
wf.flush = () => { const f0 = performance.now(); origFlush(); flushMs += performance.now() - f0; };
let foldMs = 0;
for (const [s, list] of Object.entries(byStream)) {
  t = performance.now();
  for (let i = 0; i < list.length; i += BATCH) {
    const batch = list.slice(i, i + BATCH);
    // Like the rebuild's writer thread: bodies validated elsewhere, only parsed here.
    if (process.env.TRUSTED) for (const m of batch) m.decoded = { ok: true, value: JSON.parse(Buffer.from(m.data).toString()) };
    w.applyBatch(s, batch);
  }
  const ms = performance.now() - t;
  foldMs += ms;
  console.log(`${s}: ${list.length} events ${(ms * 1000 / list.length).toFixed(2)} µs/event, of which row writes ${(flushMs * 1000 / list.length).toFixed(2)} µs/event`, JSON.stringify(counts));
  flushMs = 0;
  console.log("  µs per run:", Object.fromEntries(Object.entries(runMs).map(([k, v]) => [k, ((v * 1000) / (counts[k] ?? 1)).toFixed(1)])));
  for (const k of Object.keys(counts)) delete counts[k];
  for (const k of Object.keys(runMs)) delete runMs[k];
}
t = performance.now();
createIndexes(w.db);
const indexMs = performance.now() - t;
foldMs += indexMs;
console.log(`indexes after the load: ${indexMs.toFixed(0)} ms`);
console.log(`decode+fold+write: ${(total / foldMs * 1000).toFixed(0)} events/s (${(foldMs * 1000 / total).toFixed(2)} µs/event)`);
w.close();
if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true }); else console.log(dir);
