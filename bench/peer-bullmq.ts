/**
 * The peer, side by side: BullMQ 5 on a local redis-server, running the same
 * no-op jobs with the same number of workers and concurrency as Troupe's
 * dispatch benchmark. Redis runs with `appendonly yes` / `appendfsync
 * everysec`, so like JetStream it keeps jobs across a crash.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Queue, Worker } from "bullmq";
import { freePort } from "@troupe/events/node";
import type { Bench, BenchOptions, BenchReport, Figure } from "./report.ts";
import { processCpuMicros } from "./dispatch.ts";
import { latencySummary } from "./stats.ts";

export const REDIS_INSTALL = "apt-get install -y redis-server";

/**
 * The work both sides run, as bench/dispatch.ts does it: phase 1 submits
 * `jobs` no-op jobs with `inFlight` submissions outstanding to `workers` ×
 * `concurrency` slots (throughput); phase 2 offers `offeredRate` jobs/s until
 * `rateJobs` were sent (latency, away from saturation).
 */
export interface JobShape {
  jobs: number;
  workers: number;
  concurrency: number;
  inFlight: number;
  offeredRate: number;
  rateJobs: number;
}

/** bench/dispatch.ts's own defaults, for when its report is not there to copy. */
export function defaultShape(quick: boolean): JobShape {
  return quick
    ? { jobs: 500, workers: 10, concurrency: 10, inFlight: 256, offeredRate: 200, rateJobs: 200 }
    : { jobs: 20_000, workers: 50, concurrency: 10, inFlight: 256, offeredRate: 500, rateJobs: 5_000 };
}

/** What Troupe's dispatch benchmark measured, read from its report's figures. */
export interface TroupeDispatch {
  jobsPerSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
}

const MS_PER: Record<string, number> = { ms: 1, s: 1000, "µs": 0.001, us: 0.001 };

function latencyMs(f: Figure | undefined): number | undefined {
  if (!f) return undefined;
  const k = MS_PER[f.unit.trim()];
  return k === undefined ? undefined : f.value * k;
}

function numParam(params: BenchReport["params"], ...patterns: RegExp[]): number | undefined {
  for (const re of patterns) {
    for (const [k, v] of Object.entries(params)) if (re.test(k) && typeof v === "number" && v > 0) return v;
  }
  return undefined;
}

/**
 * Reads the job shape and the Troupe figures from `bench/dispatch.ts`'s report
 * (the only coordination between the two): params named like workers /
 * concurrency (or slots) / jobs; a "jobs/s" figure; latency figures named
 * with p50 / p99. Anything missing falls back to the default shape.
 */
export function fromDispatchReport(r: BenchReport | undefined, quick: boolean): { shape: JobShape; troupe: TroupeDispatch; matched: string[] } {
  const shape = defaultShape(quick);
  if (!r) return { shape, troupe: {}, matched: [] };
  const matched: string[] = [];
  const take = (key: keyof JobShape, v: number | undefined) => {
    if (v !== undefined) {
      shape[key] = Math.round(v);
      matched.push(key);
    }
  };
  take("workers", numParam(r.params, /^workers$/i, /workers/i));
  take("concurrency", numParam(r.params, /^concurrency$/i, /concurrency|slots|perWorker|maxConcurrent/i));
  take("jobs", numParam(r.params, /^jobs$/i, /^(size|count)$/i, /jobs/i));
  take("inFlight", numParam(r.params, /inFlight|in-flight|submitters|clients/i));
  take("offeredRate", numParam(r.params, /^offeredRate$/i, /rate$/i));
  take("rateJobs", numParam(r.params, /^rateJobs$/i));
  const byName = (re: RegExp) => r.figures.find((f) => re.test(f.name));
  const throughput = r.figures.find((f) => /^jobs\/s$/i.test(f.unit.trim())) ?? byName(/jobs\/s|throughput/i);
  const lat = (p: string) => r.figures.find((f) => new RegExp(p, "i").test(f.name) && latencyMs(f) !== undefined && /start|assign|latency|dispatch/i.test(f.name))
    ?? r.figures.find((f) => new RegExp(p, "i").test(f.name) && latencyMs(f) !== undefined);
  return {
    shape,
    troupe: { jobsPerSecond: throughput?.value, p50Ms: latencyMs(lat("p50")), p99Ms: latencyMs(lat("p99")) },
    matched,
  };
}

/** Finds redis-server; as root installs it from Debian when missing, otherwise says how. */
export function ensureRedisServer(log: (l: string) => void): { ok: true; version: string } | { ok: false; why: string } {
  const probe = () => spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  let r = probe();
  if (r.error || r.status !== 0) {
    if (process.getuid?.() !== 0) {
      return { ok: false, why: `redis-server is not installed; install it with: sudo ${REDIS_INSTALL}` };
    }
    log(`peer: redis-server missing, running: ${REDIS_INSTALL}`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let inst = spawnSync("apt-get", ["install", "-y", "redis-server"], { encoding: "utf8", env });
    if (inst.status !== 0) {
      // A fresh container has no package lists yet.
      spawnSync("apt-get", ["update"], { encoding: "utf8", env });
      inst = spawnSync("apt-get", ["install", "-y", "redis-server"], { encoding: "utf8", env });
    }
    if (inst.status !== 0) return { ok: false, why: `${REDIS_INSTALL} failed: ${(inst.stderr || inst.stdout || "").trim().split("\n").slice(-3).join(" / ")}` };
    r = probe();
    if (r.error || r.status !== 0) return { ok: false, why: `redis-server still not runnable after ${REDIS_INSTALL}` };
  }
  return { ok: true, version: r.stdout.trim() };
}

export interface RunningRedis {
  port: number;
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

/** Starts a private redis-server on a free port with durable AOF settings; resolves once it accepts connections. */
export async function startRedis(): Promise<RunningRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "troupe-bench-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--dir", dir, "--daemonize", "no"];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  let out = "";
  await new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`redis-server did not become ready within 10 s: ${out.slice(-500)}`)), 10_000);
    const feed = (b: Buffer) => {
      out += b.toString("utf8");
      if (/Ready to accept connections/.test(out)) {
        clearTimeout(t);
        res();
      }
    };
    child.stdout.on("data", feed);
    child.stderr.on("data", feed);
    void exited.then((code) => {
      clearTimeout(t);
      rej(new Error(`redis-server exited (${code}) during start-up: ${out.slice(-500)}`));
    });
  }).catch(async (e) => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  return {
    port,
    pid: child.pid as number,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PeerResult {
  jobsPerSecond: number;
  /** Phase 1 CPU per job (µs): redis-server, and this process (producer + BullMQ workers); when the server's pid is known. */
  cpu?: { redis: number; node: number };
  /** Phase 1 commands redis-server ran per job (`INFO stats` total_commands_processed: one per round trip, plus each redis.call inside BullMQ's Lua scripts). */
  redisCommandsPerJob: number;
  p50Ms: number;
  p99Ms: number;
  offeredPerSecond: number;
}

/**
 * Runs the shape on BullMQ: `workers` Worker instances (each with its own
 * Redis connections) at `concurrency` each, a no-op processor. Phase 1:
 * jobs ÷ (first add → last completion). Phase 2: adds paced at the offered
 * rate in 10 ms ticks; latency = add called → processor started, per job.
 */
export async function runBullmq(port: number, shape: JobShape, log: (l: string) => void, redisPid?: number): Promise<PeerResult> {
  const connection = { host: "127.0.0.1", port, maxRetriesPerRequest: null };
  const name = `troupe-bench-${Date.now()}`;
  const queue = new Queue(name, { connection });
  const started = new Map<number, number>();
  let completed = 0;
  let lastCompletion = 0;
  const failures: string[] = [];
  const workers = Array.from({ length: shape.workers }, () => {
    const w = new Worker(name, async (job) => {
      started.set((job.data as { i: number }).i, performance.now());
      return null;
    }, { connection, concurrency: shape.concurrency });
    w.on("completed", () => {
      completed++;
      lastCompletion = performance.now();
    });
    w.on("failed", (_job, err) => failures.push(err.message));
    w.on("error", (err) => log(`peer: bullmq worker error: ${err.message}`));
    return w;
  });
  const until = async (what: string, cond: () => boolean, timeoutMs: number) => {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (failures.length) throw new Error(`${failures.length} bullmq jobs failed: ${failures[0]}`);
      if (Date.now() > end) throw new Error(`bullmq: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  try {
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    await queue.waitUntilReady();
    log(`peer: bullmq ${shape.jobs} jobs, ${shape.workers} workers × ${shape.concurrency}, ${shape.inFlight} adds in flight`);
    let next = 0;
    const cpuNow = () => {
      const own = process.cpuUsage();
      return { redis: redisPid ? processCpuMicros(redisPid) : NaN, node: own.user + own.system };
    };
    const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await ((await queue.client) as unknown as { info(section: string): Promise<string> }).info("stats"))?.[1] ?? NaN);
    const cpu0 = cpuNow();
    const commands0 = await commands();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: Math.min(shape.inFlight, shape.jobs) }, async () => {
      while (next < shape.jobs) await queue.add("noop", { i: next++ });
    }));
    await until("every job completed", () => completed >= shape.jobs, 600_000);
    const jobsPerSecond = shape.jobs / ((lastCompletion - t0) / 1000);
    const cpu1 = cpuNow();
    const redisCommandsPerJob = ((await commands()) - commands0) / shape.jobs;
    const cpu = { redis: (cpu1.redis - cpu0.redis) / shape.jobs, node: (cpu1.node - cpu0.node) / shape.jobs };

    log(`peer: bullmq latency at ${shape.offeredRate} jobs/s offered, ${shape.rateJobs} jobs`);
    const sent = new Map<number, number>();
    const pending: Promise<unknown>[] = [];
    const start = performance.now();
    let k = 0;
    while (k < shape.rateJobs) {
      const due = Math.min(shape.rateJobs, Math.floor(((performance.now() - start) / 1000) * shape.offeredRate));
      for (; k < due; k++) {
        const i = shape.jobs + k;
        sent.set(i, performance.now());
        pending.push(queue.add("noop", { i }));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(pending);
    const offeredPerSecond = shape.rateJobs / ((performance.now() - start) / 1000);
    await until("latency jobs started", () => started.size >= shape.jobs + shape.rateJobs, 120_000);
    const l = latencySummary([...sent].map(([i, t]) => (started.get(i) as number) - t));
    return { jobsPerSecond, redisCommandsPerJob, p50Ms: l.p50, p99Ms: l.p99, offeredPerSecond, ...(redisPid ? { cpu } : {}) };
  } finally {
    await Promise.allSettled(workers.map((w) => w.close()));
    await queue.close();
  }
}

const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

/** Figure names, shared with `bench all`. */
export const PEER = {
  bullmqRate: "bullmq jobs/s",
  bullmqP50: "bullmq add→processor start p50",
  bullmqP99: "bullmq add→processor start p99",
  troupeRate: "troupe jobs/s (dispatch)",
  troupeP50: "troupe submit→assigned p50 (dispatch)",
  troupeP99: "troupe submit→assigned p99 (dispatch)",
  rateRatio: "troupe ÷ bullmq jobs/s",
  p50Ratio: "troupe ÷ bullmq p50 latency",
  p99Ratio: "troupe ÷ bullmq p99 latency",
} as const;

/**
 * The peer benchmark. Given the dispatch report of the same run, mirrors its
 * shape and reports the pair and the ratios; alone, runs BullMQ with the
 * default shape and leaves the Troupe side n/a.
 */
export async function peerBench(o: BenchOptions & { dispatch?: BenchReport }): Promise<BenchReport> {
  const { shape, troupe, matched } = fromDispatchReport(o.dispatch, o.quick);
  const notes: string[] = [];
  const params: BenchReport["params"] = { ...shape, redis: "appendonly yes, appendfsync everysec" };
  if (!o.dispatch) notes.push("no dispatch report in this run: BullMQ ran standalone with the default shape; Troupe side n/a");
  else if (matched.length < 6) notes.push(`dispatch report gave only ${matched.join(", ") || "none"} of the job shape; the rest is dispatch's default shape`);
  const redis = ensureRedisServer(o.log);
  if (!redis.ok) {
    notes.push(`peer skipped: ${redis.why}`);
    return { bench: "peer", params, figures: [], notes };
  }
  params.redisVersion = /v=(\S+)/.exec(redis.version)?.[1] ?? redis.version;
  const server = await startRedis();
  let res: PeerResult;
  try {
    res = await runBullmq(server.port, shape, o.log, server.pid);
  } finally {
    await server.stop();
  }
  const figures: Figure[] = [
    { name: PEER.bullmqRate, value: Math.round(res.jobsPerSecond), unit: "jobs/s" },
    { name: PEER.bullmqP50, value: round(res.p50Ms, 2), unit: "ms" },
    { name: PEER.bullmqP99, value: round(res.p99Ms, 2), unit: "ms" },
    { name: "redis commands per job", value: round(res.redisCommandsPerJob), unit: "commands" },
    ...(res.cpu ? [
      { name: "redis-server CPU per job", value: round(res.cpu.redis), unit: "µs" },
      { name: "producer + bullmq workers CPU per job", value: round(res.cpu.node), unit: "µs" },
    ] : []),
  ];
  if (troupe.jobsPerSecond !== undefined) {
    figures.push({ name: PEER.troupeRate, value: Math.round(troupe.jobsPerSecond), unit: "jobs/s" });
    figures.push({ name: PEER.rateRatio, value: round(troupe.jobsPerSecond / res.jobsPerSecond, 2), unit: "×", target: ">= 1.0" });
  } else if (o.dispatch) notes.push("dispatch report has no jobs/s figure: throughput ratio n/a");
  if (troupe.p50Ms !== undefined) {
    figures.push({ name: PEER.troupeP50, value: round(troupe.p50Ms, 2), unit: "ms" });
    figures.push({ name: PEER.p50Ratio, value: round(troupe.p50Ms / res.p50Ms, 2), unit: "×" });
  }
  if (troupe.p99Ms !== undefined) {
    figures.push({ name: PEER.troupeP99, value: round(troupe.p99Ms, 2), unit: "ms" });
    figures.push({ name: PEER.p99Ratio, value: round(troupe.p99Ms / res.p99Ms, 2), unit: "×" });
  }
  notes.push(`bullmq phase 2 offered ${res.offeredPerSecond.toFixed(0)} jobs/s`);
  notes.push("BullMQ workers, queue and producer share one Node process; completed jobs are kept (BullMQ's default), as Troupe keeps its log");
  return { bench: "peer", params, figures, notes };
}

export const bench: Bench = (o) => peerBench(o);
