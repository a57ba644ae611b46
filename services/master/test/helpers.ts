import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { decodeEvent, decodeReply, evolveJob, type AckReply, type JobView, type SubmitReply, type TroupeEvent } from "@troupe/events";
import { createLogger } from "@troupe/events/node";
import { descendants, startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, afterEach, beforeAll } from "vitest";
import { startMaster, type RunningMaster } from "../src/main.ts";
import type { MasterConfig } from "../src/master.ts";
import { FakeWorker, type FakeWorkerOptions } from "./fake-worker.ts";

export const REPO = resolve(fileURLToPath(new URL("../../..", import.meta.url)));

/**
 * A test file's server, master and `ui` connection (set once its beforeAll ran); fake workers pushed to
 * `workers` deregister after each test, so the next starts with an empty pool.
 */
export function masterSuite(id: string, over: Partial<MasterConfig> = {}) {
  const s = { nats: undefined as unknown as TestNats, master: undefined as unknown as RunningMaster, ui: undefined as unknown as NatsConnection, workers: [] as FakeWorker[] };
  beforeAll(async () => {
    s.nats = await startTestNats({ init: true });
    s.master = await masterIn(s.nats, id, over);
    s.ui = await s.nats.connect("ui");
    // Cancel, retry, drain and resume are the leader's: a test's first command must not race the lease.
    await waitFor("the master leading", () => s.master.master.isLeader, 20_000, 20);
  });
  afterEach(async () => {
    for (const w of s.workers.splice(0)) await w.stop({ deregister: true });
  });
  afterAll(async () => {
    await s.master?.stop();
    await s.nats?.stop();
  });
  return s;
}

/**
 * Short intervals so liveness and leases play out in a test's time. The leader lease outlasts a loaded machine's
 * stalls of the test process the master runs in (at 1 s, a ~0.8 s stall lapsed it: a command then met "not the
 * leader" or no responder); a stopped master hands it back at once, so no test waits it out.
 */
export const FAST: Omit<MasterConfig, "id"> = {
  prefix: "troupe", heartbeatIntervalMs: 200, leaseMs: 3000, backoffMs: 100, maxBackoffMs: 1000,
  leaderLeaseMs: 4000, assignTimeoutMs: 1000, tickMs: 50, maxInflight: 64,
};

/** Environment of a child `troupe master` with the same short intervals (a 2 s leader lease: a takeover after a kill stays quick). */
export const fastEnv = (id: string): Record<string, string> => ({
  TROUPE_MASTER_ID: id, TROUPE_MASTER_PORT: "0", TROUPE_HEARTBEAT_MS: "200", TROUPE_JOB_LEASE_MS: "3000",
  TROUPE_RETRY_BACKOFF_MS: "100", TROUPE_RETRY_MAX_BACKOFF_MS: "1000", TROUPE_LEADER_LEASE_MS: "2000",
  TROUPE_ASSIGN_TIMEOUT_MS: "1000", TROUPE_MASTER_TICK_MS: "50", TROUPE_LOG_LEVEL: "warn",
});

export async function masterIn(nats: TestNats, id: string, over: Partial<MasterConfig> = {}, httpPort?: number): Promise<RunningMaster> {
  const nc = await nats.connect("master", id);
  return startMaster(nc, { ...FAST, id, ...over }, createLogger("master", process.env.TROUPE_LOG_LEVEL ?? "silent").child({ master: id }), httpPort ? { http: { host: "127.0.0.1", port: httpPort } } : {});
}

export async function fakeWorker(nats: TestNats, o: Omit<FakeWorkerOptions, "url" | "env">): Promise<FakeWorker> {
  return new FakeWorker({ url: nats.url, env: nats.env(), ...o }).start();
}

export async function submit(nc: NatsConnection, body: unknown): Promise<SubmitReply> {
  const r = await nc.request("troupe.rpc.jobs.submit", typeof body === "string" ? body : JSON.stringify(body), { timeout: 5000 });
  const d = decodeReply("jobs.submit", r.data);
  if (!d.ok) throw new Error(`invalid submit reply: ${d.error.message}`);
  return d.value;
}

/** The job id of an accepted submission; a refusal fails the test with the master's reason. */
export function jobIdOf(r: SubmitReply): string {
  if (!r.ok) throw new Error(`submit refused: ${r.error.message}`);
  return r.jobId;
}

export async function command(nc: NatsConnection, rpc: "jobs.cancel" | "jobs.retry" | "workers.drain" | "workers.resume", body: unknown): Promise<AckReply> {
  const r = await nc.request(`troupe.rpc.${rpc}`, JSON.stringify(body), { timeout: 5000 });
  const d = decodeReply("ack", r.data);
  if (!d.ok) throw new Error(`invalid ack reply: ${d.error.message}`);
  return d.value;
}

export interface LoggedEvent {
  seq: number;
  event: TroupeEvent;
  /** The server's time of storing it. */
  storedMs: number;
}

/** Reads the whole event log as it stands. */
export async function readLog(nc: NatsConnection): Promise<LoggedEvent[]> {
  const js = jetstream(nc);
  const info = await (await js.jetstreamManager()).streams.info("TROUPE_EVENTS");
  const last = info.state.last_seq;
  const out: LoggedEvent[] = [];
  if (info.state.messages === 0) return out;
  const c = await js.consumers.get("TROUPE_EVENTS", { deliver_policy: DeliverPolicy.All });
  const msgs = await c.consume();
  for await (const m of msgs) {
    const d = decodeEvent(m.subject, m.data);
    if (d.ok) out.push({ seq: m.seq, event: d.value, storedMs: Math.floor(m.info.timestampNanos / 1e6) });
    if (m.seq >= last) break;
  }
  await msgs.close();
  return out;
}

/** Folds the log per job with the shared reducer: final views and rejected events. */
export function foldJobs(log: LoggedEvent[]): { jobs: Map<string, JobView>; rejected: { seq: number; type: string; reason: string }[] } {
  const jobs = new Map<string, JobView>();
  const rejected: { seq: number; type: string; reason: string }[] = [];
  for (const { seq, event } of log) {
    if (!event.type.startsWith("job.")) continue;
    const e = event as Extract<TroupeEvent, { type: `job.${string}` }>;
    const r = evolveJob(jobs.get(e.data.jobId), e);
    if (r.ok) jobs.set(r.job.id, r.job);
    else rejected.push({ seq, type: e.type, reason: r.reason });
  }
  return { jobs, rejected };
}

/**
 * The job's view, folded from the log, once nothing further happens to it: completed, cancelled, dead, or failed for
 * good (a retryable failure is followed by the master's requeue or dead).
 */
export function finalJob(nc: NatsConnection, jobId: string, timeoutMs = 60_000, what = `job ${jobId} to end`): Promise<JobView> {
  return waitFor(what, async () => {
    const j = foldJobs(await readLog(nc)).jobs.get(jobId);
    return j && (["completed", "cancelled", "dead"].includes(j.status) || (j.status === "failed" && !j.error?.retryable)) ? j : undefined;
  }, timeoutMs, 200);
}

/** Waits for a folded event in a master that matches. */
export function folded(m: RunningMaster, match: (e: TroupeEvent) => boolean, timeoutMs = 10_000): Promise<TroupeEvent> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error("timed out waiting for a folded event")), timeoutMs);
    m.master.onFold((e) => {
      if (match(e)) {
        clearTimeout(t);
        res(e);
      }
    });
  });
}

/** A child process that can be killed with SIGKILL. */
export interface Child {
  proc: ChildProcess;
  output: () => string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** With `group`, kill9 also kills every descendant (Puppeteer starts Chromium in its own process group), like a machine crash. */
export function spawnChild(args: string[], env: Record<string, string>, o: { group?: boolean } = {}): Child {
  const proc = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const kill = async (sig: NodeJS.Signals) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const tree = o.group && sig === "SIGKILL" ? descendants(proc.pid as number) : [];
      proc.kill(sig);
      for (const p of tree) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // Already gone with its parent.
        }
      }
    }
    await exited;
  };
  return { proc, output: () => out, kill9: () => kill("SIGKILL"), stop: () => kill("SIGTERM") };
}

export const spawnMaster = (nats: TestNats, id: string, env: Record<string, string> = {}) => spawnChild(["bin/troupe.mjs", "master"], { ...nats.env(), ...fastEnv(id), ...env });
