import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import type { NatsConnection } from "@nats-io/nats-core";
import { decodeReply, subjects } from "@troupe/events";
import { connectAs, Requests } from "@troupe/events/node";
import { startTestNats, type TestNats } from "@troupe/tests/harness";
import { FakeWorker } from "../services/master/test/fake-worker.ts";
import { spawnChild } from "../services/master/test/helpers.ts";
import type { Bench, BenchReport } from "./report.ts";

/**
 * Dispatch: no-op jobs through a real master (`troupe master`, its own
 * process) to simulated workers (the protocol test doubles: accept,
 * job.started, job.completed; in this process with the clients) on a real
 * nats-server. Phase 1 submits every job as fast as the clients can and
 * measures jobs/s end to end and assignments/s; phase 2 offers a fixed rate
 * and measures submit→assigned latency.
 */

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};

/**
 * Times (performance.now) at which each job was accepted by a simulated worker and its
 * job.completed was stored (the append acknowledged). The benchmark's stopwatch, timed in
 * process as BullMQ's side is (its processor starting, its `completed` events): until
 * 2026-11-29 a separate subscriber to the assigned and completed subjects was the stopwatch,
 * which cost nats-server two deliveries per job and this process their handling, work BullMQ's
 * side did not have.
 */
function stopwatch() {
  const assigned = new Map<string, number>();
  const completed = new Map<string, number>();
  return {
    assigned, completed,
    onAccepted: (id: string) => void assigned.set(id, performance.now()),
    onCompleted: (id: string) => void completed.set(id, performance.now()),
  };
}

/** Submits job i; on "unavailable" (JetStream overloaded) retries with the same idempotency key, as a client should. */
async function submitOne(requests: Requests, i: number): Promise<string> {
  const body = JSON.stringify({ url: `https://example.com/noop/${i}`, tags: ["bench"], idempotencyKey: `bench-${i}` });
  for (let attempt = 1; ; attempt++) {
    const r = await requests.request(subjects.rpc("jobs.submit"), body, { timeoutMs: 30_000 });
    const d = decodeReply("jobs.submit", r.data);
    if (d.ok && d.value.ok) return d.value.jobId;
    const unavailable = d.ok && !d.value.ok && d.value.error.code === "unavailable";
    if (!unavailable || attempt >= 5) throw new Error(`submit refused: ${JSON.stringify(d.ok ? d.value : d.error)}`);
  }
}

/** CPU time (user + system, µs) a process has used so far, from /proc/<pid>/stat (clock ticks). */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 (utime, stime) are at 11 and 12 once pid and name are cut off.
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU of the three parties of a dispatch run: the master, nats-server, and this process (clients + simulated workers). */
function cpuSnapshot(masterPid: number, natsPid: number) {
  const own = process.cpuUsage();
  return { master: processCpuMicros(masterPid), nats: processCpuMicros(natsPid), bench: own.user + own.system };
}

/** Messages the server has taken in and sent out so far (`/varz`): what a job costs in protocol traffic, whoever sent it. */
export async function serverMessages(monitorUrl: string): Promise<{ in: number; out: number }> {
  const v = (await (await fetch(`${monitorUrl}/varz`)).json()) as { in_msgs: number; out_msgs: number };
  return { in: v.in_msgs, out: v.out_msgs };
}

async function until(what: string, cond: () => boolean, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`dispatch bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const bench: Bench = async (o) => {
  const jobs = o.size ?? (o.quick ? 500 : 20_000);
  const nWorkers = o.quick ? 10 : 50;
  const slots = 10;
  const inFlight = 256;
  const rate = o.quick ? 200 : 500;
  const rateSeconds = o.quick ? 1 : 10;
  const nats: TestNats = await startTestNats({ init: true });
  // TROUPE_BENCH_CPU_PROF=<dir>: the master writes a V8 CPU profile there when it stops (where its time goes).
  const prof = process.env.TROUPE_BENCH_CPU_PROF;
  const master = spawnChild([...(prof ? ["--cpu-prof", "--cpu-prof-dir", prof] : []), "bin/troupe.mjs", "master"], {
    ...nats.env(), TROUPE_MASTER_ID: "bench-master", TROUPE_MASTER_PORT: "0", TROUPE_HEARTBEAT_MS: "2000", TROUPE_JOB_LEASE_MS: "60000",
    TROUPE_MASTER_MAX_INFLIGHT: "512", TROUPE_LOG_LEVEL: "warn",
    ...(process.env.TROUPE_BENCH_MASTER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.TROUPE_BENCH_MASTER_NODE_OPTIONS } : {}),
  });
  const workers: FakeWorker[] = [];
  const seen = stopwatch();
  let ui: NatsConnection | undefined;
  try {
    for (let i = 0; i < nWorkers; i++) {
      workers.push(await new FakeWorker({ id: `sim-${i}`, url: nats.url, env: nats.env(), slots, heartbeatMs: 2000, startDelayMs: 0, behaviour: () => ({ kind: "complete", afterMs: 0 }),
        onAccepted: seen.onAccepted, onCompleted: seen.onCompleted }).start());
    }
    // A client as a service would make one: no async stack trace captured per request.
    const client = await connectAs({ url: nats.url, role: "ui", dataDir: nats.dataDir, name: "bench-client", env: {}, noAsyncTraces: true });
    ui = client;
    // Submissions go through Troupe's request helper (one inbox, no timer per request), as a busy client would.
    const rq = new Requests(client);
    // The master is up and leading once a probe job is assigned.
    let probe: string | undefined;
    for (let i = 0; probe === undefined; i++) {
      probe = await submitOne(rq, -1).catch((e) => {
        if (i > 600) throw e; // no master answered for a minute
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 100));
      });
    }
    await until("the master to lead", () => seen.assigned.has(probe) && seen.completed.has(probe), 60_000);
    seen.assigned.clear();
    seen.completed.clear();

    // Phase 1: throughput, every job submitted by `inFlight` concurrent clients.
    o.log(`dispatch: ${jobs} jobs, ${nWorkers} workers × ${slots} slots`);
    const cpu0 = cpuSnapshot(master.proc.pid as number, nats.server.process.pid as number);
    const msgs0 = await serverMessages(nats.monitorUrl);
    const t0 = performance.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < jobs) ids.push(await submitOne(rq, next++));
    }));
    const submittedAt = performance.now();
    await until("every job completed", () => seen.completed.size >= jobs, 600_000);
    const cpu1 = cpuSnapshot(master.proc.pid as number, nats.server.process.pid as number);
    const msgs1 = await serverMessages(nats.monitorUrl);
    const cpuPerJob = (k: keyof typeof cpu0) => (cpu1[k] - cpu0[k]) / jobs;
    const assignedTimes = ids.map((id) => seen.assigned.get(id) as number);
    const firstAssigned = Math.min(...assignedTimes);
    const lastAssigned = Math.max(...assignedTimes);
    const lastCompleted = Math.max(...ids.map((id) => seen.completed.get(id) as number));
    const jobsPerSec = jobs / ((lastCompleted - t0) / 1000);
    const assignPerSec = jobs / (Math.max(1, lastAssigned - firstAssigned) / 1000);
    const submitPerSec = jobs / ((submittedAt - t0) / 1000);
    const masterRss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${master.proc.pid}/status`, "utf8"))?.[1] ?? NaN) / 1024;
    o.log(`dispatch: phase 1 done, ${jobsPerSec.toFixed(0)} jobs/s`);

    // Phase 2: latency at a fixed offered rate (paced in 10 ms ticks).
    const sent = new Map<string, number>();
    const total = rate * rateSeconds;
    const pending: Promise<void>[] = [];
    const start = performance.now();
    let k = 0;
    while (k < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      for (; k < due; k++) {
        const t = performance.now();
        pending.push(submitOne(rq, jobs + k).then((id) => void sent.set(id, t)));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(pending);
    await until("latency jobs assigned", () => seen.assigned.size >= jobs + total, 120_000);
    const lat = [...sent].map(([id, t]) => (seen.assigned.get(id) as number) - t);
    const offered = total / ((performance.now() - start) / 1000);

    const report: BenchReport = {
      bench: "dispatch",
      params: { jobs, workers: nWorkers, concurrency: slots, inFlight, offeredRate: rate, rateJobs: total, ...(o.size !== undefined ? { size: o.size } : {}) },
      figures: [
        { name: "jobs/s (submit → completed)", value: jobsPerSec, unit: "jobs/s" },
        { name: "assignments/s", value: assignPerSec, unit: "assignments/s", target: ">= 2000" },
        { name: "submissions/s", value: submitPerSec, unit: "submits/s" },
        { name: "master CPU per job", value: cpuPerJob("master"), unit: "µs" },
        { name: "nats-server CPU per job", value: cpuPerJob("nats"), unit: "µs" },
        { name: "clients + simulated workers CPU per job", value: cpuPerJob("bench"), unit: "µs" },
        { name: "messages into nats-server per job", value: (msgs1.in - msgs0.in) / jobs, unit: "msgs" },
        { name: "messages out of nats-server per job", value: (msgs1.out - msgs0.out) / jobs, unit: "msgs" },
        { name: `master RSS after ${jobs} jobs`, value: masterRss, unit: "MB" },
        { name: `submit→assigned p50 @${rate}/s`, value: pct(lat, 50), unit: "ms" },
        { name: `submit→assigned p99 @${rate}/s`, value: pct(lat, 99), unit: "ms", target: "< 50" },
      ],
      notes: [
        `phase 2 offered ${offered.toFixed(0)} jobs/s for ${rateSeconds} s`,
        `phase 1 CPU is per job, all processes on ${cpus().length} cores: master, nats-server, and this process (submitting clients, simulated workers); load average at the start ${loadavg()[0]?.toFixed(1)}`,
        "simulated workers answer at once and publish job.started + job.completed (4 appends per job); master, workers and nats-server share this machine",
        "timed in process: assigned = a simulated worker accepts the assignment, completed = its job.completed append is acknowledged (as BullMQ's side: processor start, completed event)",
      ],
    };
    return report;
  } finally {
    await ui?.close();
    for (const w of workers) await w.stop().catch((e) => o.log(`dispatch: stopping ${w.id}: ${(e as Error).message}`));
    await master.stop();
    await nats.stop();
    if (master.proc.exitCode !== 0 && master.proc.signalCode === null) o.log(`dispatch: master exited with ${master.proc.exitCode}: ${master.output().slice(-2000)}`);
  }
};
