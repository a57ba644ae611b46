import { createEvent, encodeEvent, subjectOf, subjects, type EventData, type EventType, type JobError, type TroupeEvent } from "@troupe/events";
import { newGenerationPath, swapIn } from "../src/db-file.ts";
import { openWriterDb, ReadModelWriter, type RawMessage } from "../src/writer.ts";

/**
 * Real read models for the server's tests: events built as workers and the master send them, folded into a SQLite
 * file by the projector's own writer (no NATS). Shared by the read-model tests of failed attempts and the UI server's
 * API tests (recent success rate, Top errors).
 */

let seq = 0;
/** One event as the stream would hand it over, dated `timeMs`. */
export const msg = <T extends EventType>(type: T, data: EventData<T>, timeMs: number): RawMessage => {
  const e = createEvent(type, data, "t", new Date(timeMs)) as TroupeEvent;
  return { seq: ++seq, subject: subjectOf(e), data: encodeEvent(e), publishedMs: timeMs };
};

const result = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
const metrics = { totalDuration: 10, responseTime: 1, memoryUsed: 1 };

/** One job run on `workerId`, ending at `timeMs`: completed, or failed with `error`. */
export function run(jobId: string, workerId: string, timeMs: number, error?: JobError, spec = { url: "https://shop.example/x", priority: 5, maxAttempts: 1, timeoutMs: 60_000 }): RawMessage[] {
  return [
    msg("job.submitted", { jobId, spec }, timeMs - 2000),
    msg("job.assigned", { jobId, workerId, attempt: 1, epoch: 1 }, timeMs - 1000),
    error ? msg("job.failed", { jobId, workerId, attempt: 1, error }, timeMs) : msg("job.completed", { jobId, workerId, attempt: 1, result, metrics }, timeMs),
  ];
}

/** A worker's registration at `timeMs` (chromium, 2 slots). */
export const register = (workerId: string, timeMs: number): RawMessage => msg("worker.registered", {
  workerId, instanceId: `i-${workerId}`, name: workerId, type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "1",
  capabilities: { maxConcurrentJobs: 2, memory: 1024, cpu: 2, supportedBrowsers: [{ name: "chromium", version: "120" }] },
}, timeMs);

/**
 * Folds `events` (in time order, as the stream holds them) into a new read-model file at `path`; the writer is left
 * open for a test that goes on with its database (`gen`: the generation file the path points to).
 */
export function foldIntoFile(path: string, events: RawMessage[]): { gen: string; w: ReadModelWriter } {
  const gen = newGenerationPath(path);
  const w = new ReadModelWriter(openWriterDb(gen, "live"), { subjects, seriesRetentionMs: 24 * 3600_000, clockMs: Date.now });
  swapIn(path, gen);
  events.sort((a, b) => a.publishedMs - b.publishedMs);
  events.forEach((m, i) => (m.seq = i + 1));
  w.applyBatch("TROUPE_EVENTS", events);
  return { gen, w };
}

/** Folds `events` into a new read-model file at `path`, closed once written. */
export function writeReadModels(path: string, events: RawMessage[]): void {
  foldIntoFile(path, events).w.db.close();
}
