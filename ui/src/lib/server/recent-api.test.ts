import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { RawMessage } from "../../../../services/projector/src/writer.ts";
import { recentFrom } from "../recent.ts";
import { register, run, writeReadModels } from "../../../../services/projector/test/read-model-fixture.ts";
import { apiOver } from "./api-over.ts";

/**
 * The server's read of a worker's recent success rate, against a real SQLite file of read models written by the
 * projector's writer from real events (no NATS), through the API's own handlers.
 */

const dir = mkdtempSync(join(tmpdir(), "troupe-recent-"));
const path = join(dir, "readmodels.sqlite");
const MIN = 60_000;
const now = Date.now();

let job = 0;
/** One job run on `workerId` at `timeMs`, ending as `outcome`. */
const runAs = (workerId: string, timeMs: number, outcome: "completed" | "failed"): RawMessage[] =>
  run(`j${++job}`, workerId, timeMs, outcome === "failed" ? { message: "boom", code: "timeout", retryable: false } : undefined);

const loadApi = apiOver(dir, path);
let api: typeof import("./api.ts");

beforeAll(async () => {
  const t0 = now - 3 * 3600_000;
  const events: RawMessage[] = [register("w-healed", t0), register("w-turned", t0), register("w-idle", t0)];
  // w-healed: a burst of 8 failures 90 minutes ago (out of the window), then 12 clean attempts in the last half hour.
  for (let i = 0; i < 8; i++) events.push(...runAs("w-healed", now - 90 * MIN + i * 1000, "failed"));
  for (let i = 0; i < 12; i++) events.push(...runAs("w-healed", now - 30 * MIN + i * 1000, "completed"));
  // w-turned: 40 good attempts two hours ago, then 6 failures and 2 successes in the last minutes.
  for (let i = 0; i < 40; i++) events.push(...runAs("w-turned", now - 120 * MIN + i * 1000, "completed"));
  for (let i = 0; i < 8; i++) events.push(...runAs("w-turned", now - 5 * MIN + i * 1000, i < 6 ? "failed" : "completed"));
  // w-idle: attempts only long ago.
  for (let i = 0; i < 3; i++) events.push(...runAs("w-idle", now - 150 * MIN + i * 1000, "completed"));
  writeReadModels(path, events);
  api = await loadApi();
});

type Perf = { successRate: number; jobsCompleted: number; jobsFailed: number; recent: { windowMinutes: number; from: string; jobsCompleted: number; jobsFailed: number; successRate: number | null } };

async function get(handler: (typeof api)["listWorkers"], url: string, params: Record<string, string> = {}) {
  const res = await handler({ url: new URL(url, "http://127.0.0.1"), params } as never);
  return { status: res.status, body: await res.json() };
}

describe("GET /api/workers: the recent window from worker_series", () => {
  it("gives each worker its last 60 minutes beside every attempt since registration", async () => {
    const before = Date.now();
    const r = await get(api.listWorkers, "/api/workers");
    const after = Date.now();
    expect(r.status).toBe(200);
    const perf = Object.fromEntries((r.body.workers as { id: string; performance: Perf }[]).map((w) => [w.id, w.performance]));
    // The window's first minute, as of the answer.
    const from = Date.parse(perf["w-healed"]!.recent.from);
    expect(from === recentFrom(before) || from === recentFrom(after)).toBe(true);
    // All time 12 of 20 (60 %); the burst 90 minutes ago is out of the window: 12 of 12.
    expect(perf["w-healed"]).toMatchObject({ jobsCompleted: 12, jobsFailed: 8, successRate: 60, recent: { windowMinutes: 60, jobsCompleted: 12, jobsFailed: 0, successRate: 100 } });
    // All time 42 of 48 (87.5 %, below the warning); in the window 2 of 8 (25 %).
    expect(perf["w-turned"]).toMatchObject({ jobsCompleted: 42, jobsFailed: 6, successRate: 87.5, recent: { jobsCompleted: 2, jobsFailed: 6, successRate: 25 } });
    // Nothing in the window: no rate ("–"), not 0 %.
    expect(perf["w-idle"]).toMatchObject({ jobsCompleted: 3, successRate: 100, recent: { jobsCompleted: 0, jobsFailed: 0, successRate: null } });
  });

  it("GET /api/workers/:id gives the same figures for one worker", async () => {
    const one = await get(api.getWorker, "/api/workers/w-turned", { id: "w-turned" });
    expect(one.status).toBe(200);
    expect(one.body.worker.performance.recent).toMatchObject({ windowMinutes: 60, jobsCompleted: 2, jobsFailed: 6, successRate: 25 });
    const idle = await get(api.getWorker, "/api/workers/w-idle", { id: "w-idle" });
    expect(idle.body.worker.performance.recent).toMatchObject({ jobsCompleted: 0, jobsFailed: 0, successRate: null });
  });

  it("the pages' read (Reads) gives the window's minutes by worker, as the live view seeds them", async () => {
    const { context } = await import("./context.ts");
    const reads = context().reads();
    const t = Date.now();
    const all = reads.recentOutcomes(t);
    expect([...all.keys()].sort()).toEqual(["w-healed", "w-turned"]);
    const sum = (b: readonly (readonly [number, number, number])[]) => b.reduce((s, [, c, f]) => [s[0]! + c, s[1]! + f], [0, 0]);
    expect(sum(all.get("w-turned")!)).toEqual([2, 6]);
    expect(all.get("w-turned")!.every(([m]) => m >= recentFrom(t))).toBe(true);
    expect(reads.workerRecent("w-turned", t)).toEqual(all.get("w-turned"));
    expect(reads.workerRecent("w-idle", t)).toEqual([]);
    // Two hours on, the same file has nothing left in the window.
    expect(reads.recentOutcomes(t + 2 * 3600_000).size).toBe(0);
  });
});
