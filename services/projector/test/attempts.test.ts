import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@troupe/events/node";
import { startTestNats, waitFor, type TestNats } from "@troupe/tests/harness";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newGenerationPath, swapIn } from "../src/db-file.ts";
import type { ReadModels } from "../src/read-models.ts";
import { dumpTables, openReadModels, rebuildInto, registration, result, Script, spec, startLive, tempDbPath, waitCaughtUp } from "./helpers.ts";

/**
 * Attempts by worker through real NATS into real SQLite files: a job fails on w-a and completes on w-b, another is
 * lost with w-a and completes on w-b. Each worker's page must list both jobs with what happened on it; a rebuild
 * gives the same table; a file of the schema before the table is rebuilt by `troupe projector` on start.
 */

const ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));
let nats: TestNats;
let path: string;
let stopLive: () => Promise<void>;
const t0 = Math.floor((Date.now() - 20 * 60_000) / 60_000) * 60_000;

/** Each of a worker's jobs as [job, status now, worker now, its attempts as "attempt:worker:outcome(:reason)"]. */
const brief = (rm: ReadModels, workerId: string) =>
  rm.workerJobs(workerId).map((r) => [r.job.id, r.job.status, r.job.workerId, r.attempts.map((a) => [a.attempt, a.workerId, a.outcome, a.reason ?? a.errorCode].filter((x) => x !== undefined).join(":"))]);

beforeAll(async () => {
  nats = await startTestNats({ init: true });
  const s = new Script({ master: (await nats.js("master")).js, worker: (await nats.js("worker")).js }, t0);
  await s.emit("worker.registered", registration("w-a"), 0);
  await s.emit("worker.registered", registration("w-b"));
  const metrics = { totalDuration: 800, responseTime: 90, memoryUsed: 40 };

  // Fails on w-a (a retryable error), the master requeues it, w-b completes it.
  await s.emit("job.submitted", { jobId: "j-failed", spec });
  await s.emit("job.assigned", { jobId: "j-failed", workerId: "w-a", attempt: 1, epoch: 1 });
  await s.emit("job.started", { jobId: "j-failed", workerId: "w-a", attempt: 1 });
  await s.emit("job.failed", { jobId: "j-failed", workerId: "w-a", attempt: 1, error: { message: "waited 10 s for #checkout", code: "timeout", retryable: true }, metrics: { totalDuration: 10_000 } });
  await s.emit("job.requeued", { jobId: "j-failed", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "failed-retryable", notBefore: s.tick(0), epoch: 1 });
  await s.emit("job.assigned", { jobId: "j-failed", workerId: "w-b", attempt: 2, epoch: 1 });
  await s.emit("job.started", { jobId: "j-failed", workerId: "w-b", attempt: 2 });
  await s.emit("job.progress", { jobId: "j-failed", workerId: "w-b", attempt: 2, progress: 50, currentStep: { index: 0, type: "navigate" } });
  await s.emit("job.completed", { jobId: "j-failed", workerId: "w-b", attempt: 2, result, metrics });

  // Running on w-a when w-a dies: requeued as lost, completed on w-b; w-a's late report of it is fenced off.
  await s.emit("job.submitted", { jobId: "j-lost", spec });
  await s.emit("job.assigned", { jobId: "j-lost", workerId: "w-a", attempt: 1, epoch: 1 });
  await s.emit("job.started", { jobId: "j-lost", workerId: "w-a", attempt: 1 });
  await s.emit("worker.lost", { workerId: "w-a", lastSeen: s.tick(0), epoch: 1, jobIds: ["j-lost"] }, 30_000);
  await s.emit("job.requeued", { jobId: "j-lost", attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "worker-lost", notBefore: s.tick(0), epoch: 1 });
  await s.emit("job.assigned", { jobId: "j-lost", workerId: "w-b", attempt: 2, epoch: 1 });
  await s.emit("job.completed", { jobId: "j-lost", workerId: "w-b", attempt: 2, result, metrics });
  await s.emit("job.completed", { jobId: "j-lost", workerId: "w-a", attempt: 1, result, metrics });

  // Only ever on w-b, still running.
  await s.emit("job.submitted", { jobId: "j-b", spec });
  await s.emit("job.assigned", { jobId: "j-b", workerId: "w-b", attempt: 1, epoch: 1 });
  await s.emit("job.started", { jobId: "j-b", workerId: "w-b", attempt: 1 });

  path = tempDbPath();
  const { live } = await startLive(await nats.connect("projector"), path, { batchMax: 5, durable: "attempts-live" });
  stopLive = () => live.stop();
}, 120_000);

afterAll(async () => {
  await stopLive?.();
  await nats?.stop();
});

describe("attempts by worker (real NATS, real SQLite)", () => {
  it("a job that failed on w-a and completed on w-b is in w-a's jobs as failed and in w-b's as completed; so is a job lost with w-a", async () => {
    const rm = openReadModels(path);
    await waitCaughtUp(nats, rm, 60_000);
    expect(brief(rm, "w-a")).toEqual([
      ["j-lost", "completed", "w-b", ["1:w-a:requeued:worker-lost", "2:w-b:completed"]],
      ["j-failed", "completed", "w-b", ["1:w-a:failed:timeout", "2:w-b:completed"]],
    ]);
    expect(brief(rm, "w-b")).toEqual([
      ["j-b", "running", "w-b", ["1:w-b:running"]],
      ["j-lost", "completed", "w-b", ["1:w-a:requeued:worker-lost", "2:w-b:completed"]],
      ["j-failed", "completed", "w-b", ["1:w-a:failed:timeout", "2:w-b:completed"]],
    ]);
    // The failure counts for w-a, as the page now shows it; the jobs' current worker is w-b.
    expect(rm.getWorker("w-a")).toMatchObject({ jobsFailed: 1, jobsCompleted: 0 });
    expect(rm.listJobs({ workerId: "w-a" }).jobs).toEqual([]);
    const failed = rm.workerJobs("w-a")[1]!.attempts[0]!;
    expect(failed).toMatchObject({ errorMessage: "waited 10 s for #checkout", errorRetryable: true });
    expect(Date.parse(failed.endedAt!) - Date.parse(failed.startedAt!)).toBe(1000);
    rm.close();
  }, 90_000);

  it("a rebuild from the log gives the same job_attempts, row for row (and every other table)", async () => {
    const other = tempDbPath();
    await rebuildInto(await nats.connect("projector"), other);
    const rebuilt = dumpTables(other);
    expect(rebuilt.job_attempts).toHaveLength(5);
    expect(rebuilt).toEqual(dumpTables(path));
  }, 90_000);

  it("troupe projector rebuilds a file of the schema before job_attempts on start, and then its workers' pages have their attempts", async () => {
    // The live file as an older build left it: no job_attempts, schema 8.
    const old = tempDbPath();
    const gen = newGenerationPath(old);
    const src = new Database(path, { readonly: true });
    src.exec(`vacuum into '${gen.replace(/'/g, "''")}'`);
    src.close();
    const db = new Database(gen);
    db.exec("drop table job_attempts; update meta set value = '8' where key = 'schema_version'");
    db.close();
    swapIn(old, gen);
    const rm = openReadModels(old);
    // Read before the projector rebuilt it: the jobs whose current worker w-a is, as before (none), and no error.
    expect(brief(rm, "w-a")).toEqual([]);

    const port = await freePort();
    const child = spawn(process.execPath, ["bin/troupe.mjs", "projector", "--db", old], {
      cwd: ROOT, env: { ...process.env, ...nats.env(), TROUPE_PROJECTOR_PORT: String(port), TROUPE_PROJECTOR_DURABLE: "attempts-upgrade", TROUPE_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    for (const out of [child.stdout, child.stderr]) out.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      // The reader follows the swap to the rebuilt file by itself.
      await waitFor(`w-a's attempts after the rebuild (projector output: ${output})`, () => rm.workerJobs("w-a").length === 2, 90_000, 100);
      expect(output).toMatch(/read-model schema differs from this build: rebuilding/);
      await waitCaughtUp(nats, rm, 60_000);
      expect(brief(rm, "w-a")).toEqual([
        ["j-lost", "completed", "w-b", ["1:w-a:requeued:worker-lost", "2:w-b:completed"]],
        ["j-failed", "completed", "w-b", ["1:w-a:failed:timeout", "2:w-b:completed"]],
      ]);
      expect(dumpTables(old)).toEqual(dumpTables(path));
    } finally {
      rm.close();
      child.kill("SIGTERM");
    }
    expect(await exited, output).toBe(0);
  }, 180_000);
});
