// Rebuild timing through real NATS, per thread: `npx tsx services/projector/test/rebuild-profile.ts [events] [workers] [runs]`.
// Publishes a generated log once, then rebuilds it `runs` times (A/B comparisons on a shared machine: look at CPU per event, not wall time).
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname } from "node:path";
import { subjects } from "@troupe/events";
import { startTestNats } from "@troupe/tests/harness";
import { DEFAULT_REBUILD_BATCH } from "../src/config.ts";
import { rebuild } from "../src/rebuild.ts";
import { generateEvents, publishAll } from "./generate.ts";
import { quietLog, STREAMS, tempDbPath } from "./helpers.ts";

const total = Number(process.argv[2] ?? 200_000);
const workers = Number(process.argv[3] ?? 1000);
const runs = Number(process.argv[4] ?? 3);
const batchMax = Number(process.env.BATCH ?? DEFAULT_REBUILD_BATCH);

/** utime + stime (ms) of a process, from /proc. */
function processCpuMs(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

/** CPU ms of every thread of this process (TASKS=1: printed per thread, to see GC helpers and loader threads). */
function taskCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of readdirSync("/proc/self/task")) {
    try {
      const s = readFileSync(`/proc/self/task/${t}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      out.set(t, ((Number(f[11]) + Number(f[12])) * 1000) / 100);
    } catch { /* gone */ }
  }
  return out;
}

const nats = await startTestNats({ init: true });
try {
  const master = await nats.js("master");
  const worker = await nats.js("worker");
  const hb = await nats.js("worker");
  const stepMs = Math.max(1, Math.floor((20 * 3600_000) / total));
  const t0 = Date.now();
  const n = await publishAll(generateEvents({ workers, events: total, startMs: Date.now() - total * stepMs - 60_000, stepMs, seed: 11 }), { master: master.js, worker: worker.js, heartbeats: hb.js }, 1000);
  console.log(`published ${n} events in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const nc = await nats.connect("projector");
  const natsPid = nats.server.process.pid as number;
  const us = (ms: number | null, events: number) => (ms === null ? "?" : ((ms * 1000) / events).toFixed(2));
  for (let i = 0; i < runs; i++) {
    const path = tempDbPath();
    const load0 = loadavg()[0] as number;
    const p0 = process.cpuUsage();
    const n0 = processCpuMs(natsPid);
    const before = taskCpu();
    const last = new Map<string, number>();
    const sampler = process.env.TASKS ? setInterval(() => { for (const [t, ms] of taskCpu()) last.set(t, ms); }, 50) : undefined;
    const w0 = performance.now();
    const r = await rebuild({ nc, path, streams: [...STREAMS], subjects, batchMax, seriesRetentionMs: 24 * 3600_000, log: quietLog, graceMs: 0 });
    const wall = performance.now() - w0;
    if (sampler) {
      clearInterval(sampler);
      for (const [t, ms] of taskCpu()) last.set(t, ms);
      const rows = [...last].map(([t, ms]) => [t, ms - (before.get(t) ?? 0)] as const).filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]);
      console.log("  threads (tid: cpu ms):", rows.map(([t, ms]) => `${t === String(process.pid) ? "main" : t}${before.has(t) ? "" : "*"}: ${ms}`).join(", "), "(* started during the rebuild)");
    }
    const p = process.cpuUsage(p0);
    const procMs = (p.user + p.system) / 1000;
    const natsMs = processCpuMs(natsPid) - n0;
    const other = procMs - (r.readerCpuMs ?? 0) - (r.writerCpuMs ?? 0);
    console.log(
      `run ${i + 1}: ${r.events} events in ${wall.toFixed(0)} ms = ${Math.round((r.events / wall) * 1000)} events/s | µs/event: reader ${us(r.readerCpuMs, r.events)}, writer ${us(r.writerCpuMs, r.events)} (busy ${us(r.writerBusyMs, r.events)}), ` +
        `other threads ${us(other, r.events)}, nats-server ${us(natsMs, r.events)} | load ${load0.toFixed(1)} → ${(loadavg()[0] as number).toFixed(1)}`,
    );
    rmSync(dirname(path), { recursive: true, force: true });
  }
} finally {
  await nats.stop();
}
