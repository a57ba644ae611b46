import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { foldIntoFile, msg } from "../test/read-model-fixture.ts";
import { newGenerationPath, swapIn } from "./db-file.ts";
import { failedAttemptsQuery, openReadModels, ReadModelQueryError } from "./read-models.ts";
import { openWriterDb, type RawMessage } from "./writer.ts";

/**
 * The failed attempts of a window (the Overview's "Top errors"), against a real SQLite file the writer folded from
 * events: what counts as failed, the window, the order, the index, and a file of this schema written without the index.
 */

const MIN = 60_000;
const now = Date.now();
const spec = { url: "https://e.com/x", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
const metrics = { totalDuration: 10, responseTime: 1, memoryUsed: 1 };
const result = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };

function fold(events: RawMessage[]) {
  const path = join(mkdtempSync(join(tmpdir(), "troupe-failed-")), "rm.sqlite");
  return { path, ...foldIntoFile(path, events) };
}

/** Job `jobId`: attempt 1 on w-a fails (retryable) at `t`, is requeued and attempt 2 on w-b ends as `second`. */
function twoAttempts(jobId: string, t: number, second: "completed" | "failed" | "lost" | "none"): RawMessage[] {
  const out = [
    msg("job.submitted", { jobId, spec }, t - 3000),
    msg("job.assigned", { jobId, workerId: "w-a", attempt: 1, epoch: 1 }, t - 2000),
    msg("job.failed", { jobId, workerId: "w-a", attempt: 1, error: { message: `timeout after 1500 ms (${jobId})`, code: "timeout", retryable: true } }, t),
    msg("job.requeued", { jobId, attempt: 2, previousAttempt: 1, previousWorkerId: "w-a", reason: "failed-retryable", notBefore: new Date(t).toISOString(), epoch: 1 }, t + 100),
  ];
  if (second === "none") return out;
  out.push(msg("job.assigned", { jobId, workerId: "w-b", attempt: 2, epoch: 1 }, t + 200));
  if (second === "completed") out.push(msg("job.completed", { jobId, workerId: "w-b", attempt: 2, result, metrics }, t + 300));
  if (second === "failed") out.push(msg("job.failed", { jobId, workerId: "w-b", attempt: 2, error: { message: "assert: no #checkout", code: "step-failed", retryable: false } }, t + 300));
  if (second === "lost") out.push(msg("job.requeued", { jobId, attempt: 3, previousAttempt: 2, previousWorkerId: "w-b", reason: "worker-lost", notBefore: new Date(t + 300).toISOString(), epoch: 1 }, t + 300));
  return out;
}

describe("failedAttempts", () => {
  it("gives the attempts that failed in the window, newest first, with their error; a requeue or a completion is no failure", () => {
    const { path } = fold([
      ...twoAttempts("j-old", now - 90 * MIN, "failed"), // both out of the window
      ...twoAttempts("j-healed", now - 30 * MIN, "completed"),
      ...twoAttempts("j-twice", now - 20 * MIN, "failed"),
      ...twoAttempts("j-lost", now - 10 * MIN, "lost"),
      ...twoAttempts("j-waiting", now - 5 * MIN, "none"),
    ]);
    const rm = openReadModels(path);
    const r = rm.failedAttempts(now - 60 * MIN, 100);
    expect(r.total).toBe(5);
    expect(r.attempts.map((a) => [a.jobId, a.attempt, a.workerId, a.errorCode])).toEqual([
      ["j-waiting", 1, "w-a", "timeout"],
      ["j-lost", 1, "w-a", "timeout"],
      ["j-twice", 2, "w-b", "step-failed"],
      ["j-twice", 1, "w-a", "timeout"],
      ["j-healed", 1, "w-a", "timeout"],
    ]);
    expect(r.attempts[0]).toMatchObject({ errorMessage: "timeout after 1500 ms (j-waiting)", endedAt: new Date(now - 5 * MIN).toISOString() });
    // The limit takes the newest; the total still counts them all.
    expect(rm.failedAttempts(now - 60 * MIN, 2)).toMatchObject({ total: 5, attempts: [{ jobId: "j-waiting" }, { jobId: "j-lost" }] });
    expect(rm.failedAttempts(now - 120 * MIN, 100).total).toBe(7);
    expect(() => rm.failedAttempts(now, 0)).toThrow(ReadModelQueryError);
    rm.close();
  });

  it("reads through the partial index, which a file of this schema written without it gets when the projector opens it", () => {
    const { path, gen, w } = fold(twoAttempts("j1", now - MIN, "failed"));
    // The very statement failedAttempts runs (a hand-copied one would pass even if the code bound the outcome).
    const q = failedAttemptsQuery().compile();
    const plan = (db: Database.Database) => (db.prepare(`explain query plan ${q.sql}`).all(...q.parameters.map(() => "x")) as { detail: string }[]).map((r) => r.detail).join("; ");
    expect(plan(w.db)).toMatch(/USING INDEX job_attempts_failed_by_end/);
    // The file as the build before this index wrote it: same schema version, no index.
    w.db.exec("drop index job_attempts_failed_by_end");
    expect(plan(w.db)).toMatch(/SCAN job_attempts/);
    w.db.close();
    // The live projector's open (openWriterDb "live") creates what is missing, with no rebuild.
    const again = openWriterDb(gen, "live");
    expect(plan(again)).toMatch(/USING INDEX job_attempts_failed_by_end/);
    again.close();
    const rm = openReadModels(path);
    expect(rm.failedAttempts(now - 60 * MIN, 10).total).toBe(2);
    rm.close();
  });

  it("a file without job_attempts (an older schema, read during the start-up rebuild) has no failed attempts", () => {
    const path = join(mkdtempSync(join(tmpdir(), "troupe-failed-")), "rm.sqlite");
    const gen = newGenerationPath(path);
    openWriterDb(gen, "live").close();
    const db = new Database(gen);
    db.exec("drop table job_attempts");
    db.close();
    swapIn(path, gen);
    const rm = openReadModels(path);
    expect(rm.failedAttempts(0, 10)).toEqual({ total: 0, attempts: [] });
    rm.close();
  });
});
