// How long a state snapshot blocks the master: `npx tsx services/master/test/snapshot-block.ts [jobs]`.
// Builds a state of that many jobs (90 % finished, 10 % queued), then times encodeSnapshot (one piece)
// against encodeSnapshotSliced (the longest stretch between two pauses, which is what the leader feels).
import { emptyState } from "../src/state.ts";
import { encodeSnapshot, encodeSnapshotSliced } from "../src/snapshot.ts";
import { logBuilder, registration, SPEC } from "../src/testing.ts";
const s = emptyState(); const log = logBuilder(s);
const result = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
const metrics = { totalDuration: 1, responseTime: 1, memoryUsed: 1 };
for (let w = 0; w < 50; w++) log.add("worker.registered", registration(`w${w}`, 1000));
const N = Number(process.argv[2] ?? 50000);
for (let i = 0; i < N; i++) {
  const jobId = `job-${i}`; const workerId = `w${i % 50}`;
  log.add("job.submitted", { jobId, spec: SPEC, idempotencyKey: `k${i}` });
  if (i % 10 === 0) continue; // queued
  log.add("job.assigned", { jobId, workerId, attempt: 1, epoch: 1 });
  log.add("job.started", { jobId, workerId, attempt: 1 });
  log.add("job.completed", { jobId, workerId, attempt: 1, result, metrics });
}
const M = { prefix: "troupe", writtenBy: "m", writtenAt: new Date().toISOString() };
for (let r = 0; r < 3; r++) {
  let t = performance.now(); const a = encodeSnapshot(s, M); const whole = performance.now() - t;
  let max = 0; let last = performance.now(); t = last;
  const b = await encodeSnapshotSliced(s, M, { pause: async () => { const now = performance.now(); max = Math.max(max, now - last); await new Promise<void>((res) => setImmediate(res)); last = performance.now(); } });
  max = Math.max(max, performance.now() - last);
  console.log(`${N} jobs (${s.finished.size} finished, ${s.jobs.size} held), ${(a.length / 1e6).toFixed(1)} MB: one piece ${whole.toFixed(0)} ms; sliced ${(performance.now() - t).toFixed(0)} ms in all, longest block ${max.toFixed(1)} ms; same bytes: ${Buffer.compare(a, b) === 0}`);
}
