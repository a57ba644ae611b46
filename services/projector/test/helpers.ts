import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JetStreamClient } from "@nats-io/jetstream";
import { createEvent, subjects, type EventData, type EventType, type TroupeEvent } from "@troupe/events";
import { createLogger, publishEvent } from "@troupe/events/node";
import { waitFor, type TestNats } from "@troupe/tests/harness";
import { expect } from "vitest";
import Database from "better-sqlite3";
import { dbPathFor } from "../src/db-file.ts";
import { prepareFile } from "../src/init-file.ts";
import { LiveProjector } from "../src/live.ts";
import { ProjectorMetrics } from "../src/metrics.ts";
import { rebuild, type RebuildResult } from "../src/rebuild.ts";
import { FOLDED_TABLES } from "../src/schema.ts";
import { openReadModels, type ReadModels } from "../src/read-models.ts";

export const STREAMS = ["TROUPE_EVENTS", "TROUPE_HEARTBEATS"] as const;
export const quietLog = createLogger("projector-test", process.env.TROUPE_LOG_LEVEL ?? "silent");

export function tempDbPath(): string {
  return dbPathFor(mkdtempSync(join(tmpdir(), "troupe-projector-")));
}

/** An in-process live projector on a fresh file (for tests that need no child process). */
export async function startLive(nc: Parameters<typeof rebuild>[0]["nc"], path: string, o: { batchMax?: number; durable?: string } = {}) {
  prepareFile(path, quietLog);
  const metrics = new ProjectorMetrics();
  const live = new LiveProjector({ nc, path, streams: STREAMS, durable: o.durable ?? "projector", subjects, batchMax: o.batchMax ?? 500, seriesRetentionMs: 24 * 3600_000, metrics, log: quietLog });
  await live.start();
  return { live, metrics };
}

export function rebuildInto(nc: Parameters<typeof rebuild>[0]["nc"], path: string, extra: Partial<Parameters<typeof rebuild>[0]> = {}): Promise<RebuildResult> {
  return rebuild({ nc, path, streams: [...STREAMS], subjects, batchMax: 5000, seriesRetentionMs: 24 * 3600_000, log: quietLog, graceMs: 0, ...extra });
}

/** Last sequence of each stream. */
export async function streamHeads(t: TestNats): Promise<Record<string, number>> {
  const r = await fetch(`${t.monitorUrl}/jsz?streams=true`);
  const j = (await r.json()) as { account_details?: { stream_detail?: { name: string; state: { last_seq: number } }[] }[] };
  const out: Record<string, number> = {};
  for (const a of j.account_details ?? []) for (const s of a.stream_detail ?? []) out[s.name] = s.state.last_seq;
  return out;
}

/** Waits until the database's checkpoints reached the streams' heads. */
export async function waitCaughtUp(t: TestNats, rm: ReadModels, timeoutMs = 20_000): Promise<void> {
  const heads = await streamHeads(t);
  await waitFor(`projector to reach ${JSON.stringify(heads)}`, () => {
    const cps = rm.projectorLag()?.checkpoints ?? {};
    return STREAMS.every((s) => (cps[s] ?? 0) >= (heads[s] ?? 0));
  }, timeoutMs);
}

/** The read models at `path` equal a rebuild from scratch into a fresh file, table by table (a failure names the table). */
export async function expectSameAsFreshRebuild(nc: Parameters<typeof rebuild>[0]["nc"], path: string): Promise<void> {
  const fresh = tempDbPath();
  await rebuildInto(nc, fresh);
  const a = dumpTables(path);
  const b = dumpTables(fresh);
  for (const table of Object.keys(b)) expect({ table, rows: a[table] }).toEqual({ table, rows: b[table] });
}

/** Every folded table, rows ordered by every column: equal dumps mean equal databases row for row. */
export function dumpTables(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<string, unknown[]> = {};
    for (const t of FOLDED_TABLES) {
      const cols = (db.prepare(`pragma table_info(${t})`).all() as { name: string }[]).map((c) => c.name);
      out[t] = db.prepare(`select * from ${t} order by ${cols.join(", ")}`).all();
    }
    return out;
  } finally {
    db.close();
  }
}

export { openReadModels };

/** Publishes events with controlled times through the role that produces them. */
export class Script {
  private clock: number;
  constructor(private readonly js: { master: JetStreamClient; worker: JetStreamClient }, startMs: number) {
    this.clock = startMs;
  }
  /** Moves the clock by `ms` and returns the ISO time. */
  tick(ms = 1000): string {
    this.clock += ms;
    return new Date(this.clock).toISOString();
  }
  get now(): number {
    return this.clock;
  }
  async emit<T extends EventType>(type: T, data: EventData<T>, advanceMs = 1000): Promise<TroupeEvent> {
    this.clock += advanceMs;
    const e = createEvent(type, data, type === "worker.lost" || /job\.(submitted|assigned|requeued|cancelled|dead)/.test(type) ? "master-test" : "worker-test", new Date(this.clock)) as TroupeEvent;
    const producer = e.type === "worker.lost" || ["job.submitted", "job.assigned", "job.requeued", "job.cancelled", "job.dead"].includes(e.type) ? this.js.master : this.js.worker;
    await publishEvent(producer, e);
    return e;
  }
}

export const spec = { url: "https://example.com/page", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
export const result = { success: true as const, data: { title: "Example" }, dataExtracted: 1, screenshots: [], logs: [] };
export const caps = { maxConcurrentJobs: 2, memory: 4096, cpu: 2, supportedBrowsers: [{ name: "chromium", version: "120" }] };
export const hbMetrics = (cpu: number, memory: number) => ({ memoryUsage: memory, cpuUsage: cpu, diskUsage: 40, networkUsage: 1.5, jobsCompleted: 99, jobsFailed: 0, averageResponseTime: 1 });
export const hb = (workerId: string, cpu: number, memory: number, status: "online" | "busy" = "online", jobIds: string[] = []) => ({
  workerId, instanceId: `${workerId}-i1`, status, currentJobs: jobIds.length, maxConcurrentJobs: 2, jobIds,
  metrics: hbMetrics(cpu, memory), performance: { successRate: 100, averageJobDuration: 1 },
});
export const registration = (workerId: string) => ({ workerId, instanceId: `${workerId}-i1`, name: `Worker ${workerId}`, type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "0.1.0", capabilities: caps });
