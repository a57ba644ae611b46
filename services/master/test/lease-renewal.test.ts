import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { NatsConnection } from "@nats-io/nats-core";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningMaster } from "../src/main.ts";
import { finalJob, masterIn, readLog, spawnChild, submit, type Child } from "./helpers.ts";

/** A real `troupe worker` keeps a short job lease alive for a job that runs longer than it. */

// Progress at a third of it (1.5 s): a stall of the worker's process under ~3 s is no lapse (at 2.4 s, ~1.6 s was; CI
// has seen a worker stall 1.5 s).
const LEASE_MS = 4500;
let nats: TestNats;
let master: RunningMaster;
let ui: NatsConnection;
let site: Server;
let base: string;
let worker: Child | undefined;

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  master = await masterIn(nats, "m-lease", { heartbeatIntervalMs: 1000, leaseMs: LEASE_MS, assignTimeoutMs: 5000 });
  ui = await nats.connect("ui");
  site = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<title>long job</title>"));
  await new Promise<void>((r) => site.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await worker?.kill9();
  site?.close();
  await master?.stop();
  await nats?.stop();
});

describe("a job longer than its lease", () => {
  /** Starts a real worker (stopping the previous one), runs a job with a 12 s wait on it, returns its log lines. */
  async function runLongJob(name: string, workerId: string, env: Record<string, string>): Promise<string> {
    await worker?.stop();
    worker = spawnChild(["bin/troupe.mjs", "worker"], {
      ...nats.env(), TROUPE_WORKER_NAME: name, TROUPE_WORKER_PORT: "0", TROUPE_WORKER_HOST: "127.0.0.1", TROUPE_HEARTBEAT_MS: "1000",
      TROUPE_ALLOW_PRIVATE_TARGETS: "true", TROUPE_MAX_CPU: "100", TROUPE_MIN_FREE_MEMORY_MB: "0", ...env,
    }, { group: true });
    const w = worker;
    await waitFor("the worker registered", () => (w.output().includes("registered as") ? true : w.proc.exitCode !== null ? Promise.reject(new Error(w.output())) : false), 60_000, 100);
    // The wait step alone outlasts the lease two and a half times over; before, the worker ticked every 5 s whatever the lease.
    const reply = await submit(ui, { url: `${base}/`, scenario: { steps: [{ type: "navigate", url: `${base}/` }, { type: "wait", ms: 12_000 }] } });
    if (!reply.ok) throw new Error(reply.error.message);
    const job = await finalJob(ui, reply.jobId);
    expect(job).toMatchObject({ status: "completed", attempt: 1, workerId });
    const log = await readLog(ui);
    expect(log.filter((l) => l.event.type === "job.requeued" && l.event.data.jobId === reply.jobId)).toEqual([]);
    // Progress came at a third of the lease during the 12 s wait: several ticks, where the old 5 s cadence gave two.
    const ticks = log.filter((l) => l.event.type === "job.progress" && l.event.data.jobId === reply.jobId && l.event.data.currentStep?.type === "wait");
    expect(ticks.length).toBeGreaterThanOrEqual(4);
    return w.output();
  }

  it("runs once: the worker reports progress often enough for the master's lease, which it is told alike", async () => {
    await runLongJob("Worker Node Lease", "wn-lease", { TROUPE_JOB_LEASE_MS: String(LEASE_MS), TROUPE_LOG_LEVEL: "warn" });
  }, 120_000);

  it("runs once on a worker left at the default 30 s lease: it follows the lease the master's assignment names", async () => {
    const out = await runLongJob("Worker Node Lease Default", "wn-lease-default", { TROUPE_LOG_LEVEL: "info" });
    expect(out).toContain("the master runs another job lease than this worker's TROUPE_JOB_LEASE_MS");
  }, 120_000);
});
