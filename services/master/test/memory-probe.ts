/**
 * Heap the master's state holds per finished job: folds N jobs (submitted →
 * assigned → started → progress → completed, each event decoded fresh as from
 * the wire) and prints heap used after/before ÷ N. Not a test (sizes vary by
 * V8 version); the figure in docs/master.md comes from it:
 *   cd services/master && node --expose-gc --import tsx test/memory-probe.ts 50000
 */
import { emptyState } from "../src/state.ts";
import { logBuilder, registration } from "../src/testing.ts";

const N = Number(process.argv[2] ?? 50_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const fresh = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

const s = emptyState();
const log = logBuilder(s);
log.add("worker.registered", registration("wn-bench-01", 10));
gc();
const before = process.memoryUsage().heapUsed;
const spec = { url: "https://example.com/some/page?x=1", priority: 5, maxAttempts: 3, timeoutMs: 60_000, browser: "chromium", tags: ["bench"] };
const result = { success: true as const, data: { title: "Example Domain" }, dataExtracted: 1, screenshots: [], logs: [{ time: "2026-01-01T00:00:00.000Z", level: "info" as const, message: "goto https://example.com/some/page" }] };
for (let i = 0; i < N; i++) {
  const jobId = `j${String(i).padStart(8, "0")}xxxxxxxxxxxx`;
  const w = { jobId, workerId: "wn-bench-01", attempt: 1 };
  log.add("job.submitted", fresh({ jobId, spec, idempotencyKey: `key-${i}` }));
  log.add("job.assigned", fresh({ ...w, epoch: 1 }));
  log.add("job.started", fresh(w));
  log.add("job.progress", fresh({ ...w, progress: 50 }));
  log.add("job.completed", fresh({ ...w, result, metrics: { totalDuration: 812, responseTime: 120, memoryUsed: 64 } }));
  log.advance(1);
}
gc();
const after = process.memoryUsage().heapUsed;
console.log(JSON.stringify({ jobs: N, open: s.jobs.size, finished: (s as { finished?: Map<string, unknown> }).finished?.size ?? 0, subjectKeys: s.subjectSeq.size, rejected: Object.fromEntries(s.rejected), bytesPerJob: Math.round((after - before) / N) }));
