import { mkdtempSync, realpathSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEvent, encodeEvent, jobAttempts, subjectOf, subjects, type EventData, type EventType, type JobView, type TroupeEvent } from "@troupe/events";
import { describe, expect, it } from "vitest";
import { matchingJobIds, openReadModels, ReadModelQueryError } from "./read-models.ts";
import { openWriterDb, ReadModelWriter, type RawMessage } from "./writer.ts";
import { newGenerationPath, swapIn } from "./db-file.ts";
import Database from "better-sqlite3";
import { generateEvents } from "../test/generate.ts";
import { FOLDED_TABLES } from "./schema.ts";
import { BatchPacker, unpack } from "./packed.ts";

/** The write side against a real SQLite file, without NATS: messages are built as a consumer would deliver them. */

const T0 = Date.now() - 600_000;
const spec = { url: "https://e.com/x", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };
let seq = 0;
const msg = <T extends EventType>(type: T, data: EventData<T>): RawMessage => {
  const e = createEvent(type, data, "t", new Date(T0 + seq * 1000)) as TroupeEvent;
  return { seq: ++seq, subject: subjectOf(e), data: encodeEvent(e), publishedMs: T0 + seq * 1000 };
};

function open() {
  const path = join(mkdtempSync(join(tmpdir(), "troupe-writer-")), "rm.sqlite");
  const gen = newGenerationPath(path);
  const w = new ReadModelWriter(openWriterDb(gen, "live"), { subjects, seriesRetentionMs: 3600_000, clockMs: Date.now });
  swapIn(path, gen);
  return { path, w };
}

describe("ReadModelWriter", () => {
  it("keeps the read models readable by their owner only, the WAL too (they hold job URLs and proxy user names)", () => {
    seq = 0;
    const { path, w } = open();
    w.applyBatch("TROUPE_EVENTS", [msg("job.submitted", { jobId: "a", spec })]);
    for (const f of [realpathSync(path), `${realpathSync(path)}-wal`]) expect(statSync(f).mode & 0o777, f).toBe(0o600);
  });

  it("treats a redelivered batch at or below the checkpoint as a no-op", () => {
    seq = 0;
    const { path, w } = open();
    const batch = [msg("job.submitted", { jobId: "a", spec }), msg("job.submitted", { jobId: "b", spec })];
    expect(w.applyBatch("TROUPE_EVENTS", batch)).toMatchObject({ applied: 2, duplicates: 0, lastSeq: 2 });
    const again = [...batch, msg("job.cancelled", { jobId: "a", epoch: 0 })];
    expect(w.applyBatch("TROUPE_EVENTS", again)).toMatchObject({ applied: 1, duplicates: 2, lastSeq: 3 });
    const rm = openReadModels(path);
    expect(rm.stats().jobs.byStatus).toMatchObject({ queued: 1, cancelled: 1 });
    expect(rm.getJob("a")!.status).toBe("cancelled");
    rm.close();
  });

  it("commits rows and checkpoint together: a failed batch leaves neither", () => {
    seq = 0;
    const { path, w } = open();
    w.db.exec("create trigger boom before insert on projection_checkpoints when new.last_seq = 2 begin select raise(abort, 'disk on fire'); end");
    const batch = [msg("job.submitted", { jobId: "a", spec }), msg("job.submitted", { jobId: "b", spec })];
    expect(() => w.applyBatch("TROUPE_EVENTS", batch)).toThrow(/TROUPE_EVENTS \(seq 1–2\) failed: disk on fire/);
    const rm = openReadModels(path);
    expect(rm.listJobs().jobs).toEqual([]);
    expect(w.checkpoint("TROUPE_EVENTS")).toBe(0);
    w.db.exec("drop trigger boom");
    expect(w.applyBatch("TROUPE_EVENTS", batch)).toMatchObject({ applied: 2, lastSeq: 2 });
    expect(rm.listJobs().jobs.map((j) => j.id)).toEqual(["b", "a"]);
    rm.close();
  });

  it("keeps no finished job in memory once it is written, and folds a later event of it from the stored row (a soak: every result stayed cached up to 50,000 jobs)", () => {
    seq = 0;
    const { path, w } = open();
    const result = { success: true as const, data: { rows: "x".repeat(100_000) }, dataExtracted: 1, screenshots: [], logs: [] };
    const metrics = { totalDuration: 10, responseTime: 1, memoryUsed: 1 };
    w.applyBatch("TROUPE_EVENTS", [
      msg("job.submitted", { jobId: "a", spec }), msg("job.submitted", { jobId: "b", spec }), msg("job.submitted", { jobId: "c", spec }),
      msg("job.assigned", { jobId: "a", workerId: "w1", attempt: 1, epoch: 1 }),
      msg("job.completed", { jobId: "a", workerId: "w1", attempt: 1, result, metrics }),
      msg("job.dead", { jobId: "c", reason: "expired", attempts: 0, epoch: 1 }),
    ]);
    expect(w.cachedJobs).toBe(1); // b, still queued
    // A redrive of the dead job: folded from its stored row.
    const redriven = w.applyBatch("TROUPE_EVENTS", [msg("job.requeued", { jobId: "c", attempt: 2, epoch: 2, reason: "redrive", notBefore: new Date(T0).toISOString() })]);
    expect(redriven.skipped).toEqual([]);
    const rm = openReadModels(path);
    expect(rm.getJob("a")).toMatchObject({ status: "completed", result: { data: { rows: "x".repeat(100_000) } } });
    expect(rm.getJob("c")).toMatchObject({ status: "requeued", attempt: 2 });
    expect(rm.stats().jobs.byStatus).toMatchObject({ queued: 1, requeued: 1, completed: 1 });
    rm.close();
  });

  it("keeps nothing per job on a live writer that started on an empty file (a soak: a fresh install's projector kept every job id it wrote, up to 3,000,000)", () => {
    seq = 0;
    const { path, w } = open();
    const result = { success: true as const, data: { title: "x" }, dataExtracted: 1, screenshots: [], logs: [] };
    const metrics = { totalDuration: 10, responseTime: 1, memoryUsed: 1 };
    for (let b = 0; b < 20; b++) {
      const batch: RawMessage[] = [];
      for (let i = 0; i < 100; i++) {
        const jobId = `j${b}x${i}`;
        batch.push(msg("job.submitted", { jobId, spec }), msg("job.assigned", { jobId, workerId: "w1", attempt: 1, epoch: 1 }), msg("job.completed", { jobId, workerId: "w1", attempt: 1, result, metrics }));
      }
      w.applyBatch("TROUPE_EVENTS", batch);
    }
    expect(w.cachedJobs).toBe(0);
    expect(w.rememberedKeys).toBe(0);
    const rm = openReadModels(path);
    expect(rm.stats().jobs.byStatus).toMatchObject({ completed: 2000 });
    rm.close();
    // A rebuild (rows held, an empty file, a finite log) still skips the SELECT of a key it never wrote.
    const gen = newGenerationPath(join(mkdtempSync(join(tmpdir(), "troupe-writer-")), "rm.sqlite"));
    const build = new ReadModelWriter(openWriterDb(gen, "build"), { subjects, seriesRetentionMs: 3600_000, clockMs: Date.now, holdRows: true });
    seq = 0;
    build.applyBatch("TROUPE_EVENTS", [msg("job.submitted", { jobId: "a", spec })]);
    build.flushHeld();
    expect(build.rememberedKeys).toBeGreaterThan(0);
  });

  it("skips and counts invalid messages while moving the checkpoint past them", () => {
    seq = 0;
    const { w } = open();
    const bad: RawMessage = { seq: ++seq, subject: "troupe.evt.job.x.submitted", data: new TextEncoder().encode("[]"), publishedMs: T0 };
    const r = w.applyBatch("TROUPE_EVENTS", [bad, msg("job.submitted", { jobId: "a", spec })]);
    expect(r).toMatchObject({ applied: 1, lastSeq: 2 });
    expect(r.skipped).toEqual([{ seq: 1, subject: "troupe.evt.job.x.submitted", reason: "not-object", detail: "(body): payload must be a JSON object, got an array" }]);
    expect(w.db.prepare("select reason, count from projection_skips").all()).toEqual([{ reason: "not-object", count: 1 }]);
  });
});

/** Every folded table's rows, ordered by every column. */
function dump(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true });
  const out: Record<string, unknown[]> = {};
  for (const t of FOLDED_TABLES) {
    const cols = (db.prepare(`pragma table_info(${t})`).all() as { name: string }[]).map((c) => c.name);
    out[t] = db.prepare(`select * from ${t} order by ${cols.join(", ")}`).all();
  }
  db.close();
  return out;
}

describe("ReadModelWriter holding rows (rebuild)", () => {
  it("writes the same rows as the live writer, also when it writes early because many rows are held or the cache is full", () => {
    const start = Date.now() - 3 * 3600_000;
    const events = [...generateEvents({ workers: 40, events: 8_000, startMs: start, stepMs: 1000, seed: 5 })];
    // Some heartbeats carry a memoryTotal (an absent one keeps the previous in the worker view).
    events.forEach((e, i) => {
      if (e.type === "worker.heartbeat" && i % 7 === 0) e.data.metrics = { ...e.data.metrics, memoryTotal: 16_000 + i };
    });
    const streams: Record<string, RawMessage[]> = { TROUPE_EVENTS: [], TROUPE_HEARTBEATS: [] };
    for (const e of events) {
      const list = streams[e.type === "worker.heartbeat" ? "TROUPE_HEARTBEATS" : "TROUPE_EVENTS"] as RawMessage[];
      list.push({ seq: list.length + 1, subject: subjectOf(e), data: encodeEvent(e), publishedMs: Date.parse(e.time) });
    }
    const dir = mkdtempSync(join(tmpdir(), "troupe-hold-"));
    const fold = (file: string, o: { holdRows?: boolean; cacheLimit?: number; holdLimit?: number }) => {
      const w = new ReadModelWriter(openWriterDb(file, o.holdRows ? "build" : "live"), { subjects, seriesRetentionMs: 24 * 3600_000, clockMs: () => start + 4 * 3600_000, ...o });
      // The two streams' batches interleave, as in a live projector.
      for (let i = 0; i < 8_000; i += 500) for (const [stream, list] of Object.entries(streams)) if (i < list.length) w.applyBatch(stream, list.slice(i, i + 500));
      return w;
    };
    fold(join(dir, "live"), {}).close();
    const expected = dump(join(dir, "live"));
    expect(expected.jobs!.length).toBeGreaterThan(300);
    expect(expected.job_attempts!.length).toBeGreaterThan(300);

    const held = fold(join(dir, "held"), { holdRows: true });
    // Before flushHeld, unfinished jobs and every worker are still in memory only.
    const before = dump(join(dir, "held"));
    expect(before.workers!.length).toBe(0);
    expect(before.jobs!.length).toBeLessThan(expected.jobs!.length);
    held.flushHeld();
    held.close();
    expect(dump(join(dir, "held"))).toEqual(expected);

    for (const [name, limits] of [["full-cache", { cacheLimit: 150 }], ["many-held", { holdLimit: 60 }]] as const) {
      const w = fold(join(dir, name), { holdRows: true, ...limits });
      w.flushHeld();
      w.close();
      expect(dump(join(dir, name))).toEqual(expected);
    }

    // As the rebuild does it: packed and validated on the reading thread, so heartbeats a later one of the same worker overwrites come as samples and are not parsed.
    const w = new ReadModelWriter(openWriterDb(join(dir, "packed"), "build"), { subjects, seriesRetentionMs: 24 * 3600_000, clockMs: () => start + 4 * 3600_000, holdRows: true });
    let samples = 0;
    for (let i = 0; i < 8_000; i += 500) {
      for (const [stream, list] of Object.entries(streams)) {
        if (i >= list.length) continue;
        const packer = new BatchPacker(stream, subjects, 500, true);
        for (const m of list.slice(i, i + 500)) packer.add(m.subject, m.data, m.seq, m.publishedMs);
        const msgs = unpack(packer.take(), subjects);
        samples += msgs.filter((m) => m.sample).length;
        w.applyBatch(stream, msgs);
      }
    }
    w.flushHeld();
    w.close();
    expect(samples).toBeGreaterThan(streams.TROUPE_HEARTBEATS!.length / 2);
    expect(dump(join(dir, "packed"))).toEqual(expected);
  });
});

describe("several processes with one worker id (a restart, a paused twin)", () => {
  const t = Date.now() - 3600_000;
  const at = (s: number) => new Date(t + s * 1000);
  const caps = { maxConcurrentJobs: 2, memory: 1024, cpu: 2, supportedBrowsers: [] };
  const reg = (workerId: string, instanceId: string, s: number) => createEvent("worker.registered", { workerId, instanceId, name: workerId, type: "puppeteer", ip: "10.0.0.1", port: 3002, version: "1", capabilities: caps }, workerId, at(s)) as TroupeEvent;
  const dereg = (workerId: string, instanceId: string, s: number) => createEvent("worker.deregistered", { workerId, instanceId, reason: "shutdown" }, workerId, at(s)) as TroupeEvent;
  const beat = (workerId: string, instanceId: string, s: number, cpu: number) => createEvent("worker.heartbeat", {
    workerId, instanceId, status: cpu > 50 ? "busy" : "online", currentJobs: cpu > 50 ? 1 : 0, maxConcurrentJobs: 2, jobIds: [], heartbeatMs: 1000,
    metrics: { memoryUsage: cpu * 10, memoryTotal: 4096, cpuUsage: cpu, diskUsage: 1, networkUsage: 0, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
    performance: { successRate: 0, averageJobDuration: 0 },
  }, workerId, at(s)) as TroupeEvent;

  /**
   * Folds `arrival` live (one message at a time, in that order: the two streams' consumers run independently, so a
   * heartbeat can be folded before an older event) and rebuilt (every event, then the heartbeats, packed as the
   * rebuild packs them); both databases must be equal. Returns the live worker views.
   */
  function liveAndRebuilt(arrival: TroupeEvent[]) {
    const streams: Record<string, RawMessage[]> = { TROUPE_EVENTS: [], TROUPE_HEARTBEATS: [] };
    const inOrder: [string, RawMessage][] = [];
    for (const e of arrival) {
      const stream = e.type === "worker.heartbeat" ? "TROUPE_HEARTBEATS" : "TROUPE_EVENTS";
      const list = streams[stream] as RawMessage[];
      const m = { seq: list.length + 1, subject: subjectOf(e), data: encodeEvent(e), publishedMs: t + 3000_000 };
      list.push(m);
      inOrder.push([stream, m]);
    }
    const dir = mkdtempSync(join(tmpdir(), "troupe-twin-"));
    const opts = { subjects, seriesRetentionMs: 24 * 3600_000, clockMs: () => t + 3600_000 };
    const live = new ReadModelWriter(openWriterDb(join(dir, "live"), "live"), opts);
    for (const [stream, m] of inOrder) live.applyBatch(stream, [m]);
    live.close();
    const rebuilt = new ReadModelWriter(openWriterDb(join(dir, "rebuilt"), "build"), { ...opts, holdRows: true });
    for (const stream of ["TROUPE_EVENTS", "TROUPE_HEARTBEATS"]) {
      const packer = new BatchPacker(stream, subjects, 100, true);
      for (const m of streams[stream]!) packer.add(m.subject, m.data, m.seq, m.publishedMs);
      rebuilt.applyBatch(stream, unpack(packer.take(), subjects));
    }
    rebuilt.flushHeld();
    rebuilt.close();
    expect(dump(join(dir, "rebuilt"))).toEqual(dump(join(dir, "live")));
    return Object.fromEntries((dump(join(dir, "live")).workers as { id: string; view: string }[]).map((r) => [r.id, JSON.parse(r.view) as { cpu: number; instanceId: string; lastHeartbeatAt?: string }]));
  }

  // w1: i beats, i-2 replaces it at 10 s (i paused) and beats; i resumes beside it.
  const w1 = [reg("w1", "i", 0), beat("w1", "i", 1, 60), beat("w1", "i", 2, 61), reg("w1", "i-2", 10), beat("w1", "i-2", 11, 10), beat("w1", "i", 12, 90), beat("w1", "i", 13, 91), beat("w1", "i-2", 14, 11), beat("w1", "i", 15, 92)];
  // w2: its replacement registered and never beat; the old one beat before and after.
  const w2 = [reg("w2", "a", 0), beat("w2", "a", 3, 70), beat("w2", "a", 4, 71), reg("w2", "b", 10), beat("w2", "a", 12, 95), beat("w2", "a", 13, 96)];
  const byTime = (es: TroupeEvent[]) => [...es].sort((x, y) => Date.parse(x.time) - Date.parse(y.time));
  const heartbeatsFirst = (es: TroupeEvent[]) => [...es.filter((e) => e.type === "worker.heartbeat"), ...es.filter((e) => e.type !== "worker.heartbeat")];

  it("show the registered process's telemetry, live in any arrival order and rebuilt alike", () => {
    for (const [name, arrival] of [["by time", byTime([...w1, ...w2])], ["heartbeats first", heartbeatsFirst([...w1, ...w2])], ["events first", [...heartbeatsFirst([...w1, ...w2])].sort((x, y) => Number(x.type === "worker.heartbeat") - Number(y.type === "worker.heartbeat"))]] as const) {
      const views = liveAndRebuilt(arrival);
      expect(views.w1, name).toMatchObject({ instanceId: "i-2", cpu: 11, lastHeartbeatAt: at(14).toISOString() });
      // No heartbeat of b yet, and a's latest came after b registered: none shown (b is online by its registration).
      expect(views.w2, name).toMatchObject({ instanceId: "b", cpu: 0, status: "online", lastSeen: at(10).toISOString() });
      expect(views.w2?.lastHeartbeatAt, name).toBeUndefined();
    }
  });

  it("fold a restarted process's heartbeats that arrive before its registration as a rebuild does (a projector catching up)", () => {
    const views = liveAndRebuilt([reg("w", "A", 0), beat("w", "A", 1, 50), dereg("w", "A", 9), beat("w", "B", 11, 7), beat("w", "B", 12, 8), reg("w", "B", 10), dereg("w", "B", 13)]);
    expect(views.w).toMatchObject({ instanceId: "B", cpu: 8, lastHeartbeatAt: at(12).toISOString() });
  });

  it("follow a process that registers again after a reconnect (the same instance) back", () => {
    const views = liveAndRebuilt([reg("w", "A", 0), reg("w", "B", 10), beat("w", "B", 11, 7), beat("w", "A", 12, 90), reg("w", "A", 20)]);
    expect(views.w).toMatchObject({ instanceId: "A", cpu: 90, lastHeartbeatAt: at(12).toISOString() });
  });
});

describe("read models queries", () => {
  it("rejects bad queries with a ReadModelQueryError naming the field", () => {
    const { path } = open();
    const rm = openReadModels(path);
    expect(() => rm.listJobs({ limit: 0 })).toThrow(ReadModelQueryError);
    expect(() => rm.listJobs({ limit: 501 })).toThrow(/limit: expected a whole number from 1 to 500/);
    expect(() => rm.listJobs({ cursor: "garbage" })).toThrow(/cursor: not a cursor/);
    expect(() => rm.listJobs({ status: "sleeping" as never })).toThrow(/status: expected one of queued/);
    expect(() => rm.listWorkers({ status: "asleep" as never })).toThrow(/status: expected one of online/);
    rm.close();
  });

  it("returns empty results before the database exists and picks it up once it does", () => {
    const path = join(mkdtempSync(join(tmpdir(), "troupe-rm-")), "rm.sqlite");
    const rm = openReadModels(path);
    expect(rm.ready()).toBe(false);
    expect(rm.listWorkers()).toEqual([]);
    expect(rm.listJobs()).toEqual({ jobs: [], nextCursor: null });
    expect(rm.getJob("x")).toBeNull();
    expect(rm.projectorLag()).toBeNull();
    expect(rm.stats().workers.total).toBe(0);
    const gen = newGenerationPath(path);
    new ReadModelWriter(openWriterDb(gen, "live"), { subjects, seriesRetentionMs: 3600_000, clockMs: Date.now }).close();
    swapIn(path, gen);
    expect(rm.ready()).toBe(true);
    rm.close();
  });

  it("reads every model inside snapshot() as of one moment: a batch the writer commits meanwhile shows only after it, a rebuild's swap too", () => {
    seq = 0;
    const { path, w } = open();
    w.applyBatch("TROUPE_EVENTS", [msg("job.submitted", { jobId: "j1", spec })]);
    const rm = openReadModels(path);
    const seen = rm.snapshot(() => {
      const before = rm.listJobs().jobs.map((j) => j.id);
      // Committed while the page reads: neither the active list nor the worker's jobs may show half of it.
      w.applyBatch("TROUPE_EVENTS", [
        msg("job.submitted", { jobId: "j2", spec }),
        msg("job.assigned", { jobId: "j2", workerId: "w1", attempt: 1, epoch: 1 }),
      ]);
      // A rebuild swapping a new file in meanwhile: the snapshot keeps reading the one it began on.
      const gen = newGenerationPath(path);
      new ReadModelWriter(openWriterDb(gen, "live"), { subjects, seriesRetentionMs: 3600_000, clockMs: Date.now }).close();
      swapIn(path, gen);
      return { before, after: rm.listJobs().jobs.map((j) => j.id), attempts: rm.workerJobs("w1"), stats: rm.stats().jobs.total };
    });
    expect(seen).toEqual({ before: ["j1"], after: ["j1"], attempts: [], stats: 1 });
    // Outside it, each read takes the newest file: the swapped-in, empty one.
    expect(rm.listJobs().jobs).toEqual([]);
    // A throw inside ends the snapshot: the next read is not pinned.
    expect(() => rm.snapshot(() => { throw new Error("page failed"); })).toThrow("page failed");
    expect(rm.ready()).toBe(true);
    w.close();
    rm.close();
  });
});

describe("matchingJobIds (a bulk action's jobs)", () => {
  it("pages through every match newest first, stops at the limit and says whether more match", () => {
    seq = 0;
    const { path, w } = open();
    // 1,300 jobs over three 500-row pages: every third one's url has "shop", every fifth one is cancelled.
    const batch: RawMessage[] = [];
    for (let i = 0; i < 1300; i++) batch.push(msg("job.submitted", { jobId: `j${String(i).padStart(4, "0")}`, spec: { ...spec, url: i % 3 === 0 ? `https://shop.example/${i}` : `https://e.com/${i}` } }));
    for (let i = 0; i < 1300; i += 5) batch.push(msg("job.cancelled", { jobId: `j${String(i).padStart(4, "0")}`, epoch: 0 }));
    w.applyBatch("TROUPE_EVENTS", batch);
    const rm = openReadModels(path);
    const want = (pred: (i: number) => boolean) => Array.from({ length: 1300 }, (_, i) => 1299 - i).filter(pred).map((i) => `j${String(i).padStart(4, "0")}`);

    const queuedShop = want((i) => i % 3 === 0 && i % 5 !== 0);
    expect(matchingJobIds(rm, { status: ["queued"], q: "shop" }, 10_000)).toEqual({ ids: queuedShop, more: false });
    // Exactly the limit: nothing more is left out.
    expect(matchingJobIds(rm, { status: ["queued"], q: "shop" }, queuedShop.length)).toEqual({ ids: queuedShop, more: false });
    expect(matchingJobIds(rm, { status: ["queued"], q: "shop" }, 7)).toEqual({ ids: queuedShop.slice(0, 7), more: true });
    // Across pages: 1,040 queued jobs, limit 1,001.
    const queued = want((i) => i % 5 !== 0);
    expect(matchingJobIds(rm, { status: ["queued"] }, 1001)).toEqual({ ids: queued.slice(0, 1001), more: true });
    expect(matchingJobIds(rm, { status: ["queued", "cancelled"] }, 10_000).ids).toHaveLength(1300);
    expect(matchingJobIds(rm, { status: ["dead"] }, 10)).toEqual({ ids: [], more: false });
    rm.close();
  });

  it("searches plain text: % and _ in the search are characters, not wildcards", () => {
    seq = 0;
    const { path, w } = open();
    const tagged = (jobId: string, tag: string) => msg("job.submitted", { jobId, spec: { ...spec, tags: [tag] } });
    w.applyBatch("TROUPE_EVENTS", [tagged("a1", "team_a"), tagged("a2", "teama-prod"), msg("job.submitted", { jobId: "a3", spec: { ...spec, url: "https://e.com/sale?off=50%25" } }), tagged("a4", "other")]);
    const rm = openReadModels(path);
    const ids = (q: string) => matchingJobIds(rm, { status: ["queued"], q }, 100).ids.sort();
    expect(ids("team_a")).toEqual(["a1"]);
    expect(ids("%")).toEqual(["a3"]);
    expect(ids("__")).toEqual([]);
    expect(ids("50%2")).toEqual(["a3"]);
    expect(ids("team")).toEqual(["a1", "a2"]);
    expect(rm.listJobs({ q: "a\\" }).jobs).toEqual([]);
    // A NUL would end SQLite's pattern there and match every job.
    expect(() => rm.listJobs({ q: "\u0000" })).toThrow(ReadModelQueryError);
    rm.close();
  });
});

describe("job_attempts (a worker's jobs, wherever they went)", () => {
  const metrics = { totalDuration: 10, responseTime: 1, memoryUsed: 1 };
  const result = { success: true as const, data: {}, dataExtracted: 0, screenshots: [], logs: [] };
  const iso = (ms: number) => new Date(ms).toISOString();
  /** w1 fails j1 (retryable), w2 completes it; w1 runs j2 twice (lost, then completed); w2 holds j3; j4 never ran. */
  const script = () => [
    msg("job.submitted", { jobId: "j1", spec }), msg("job.submitted", { jobId: "j2", spec }), msg("job.submitted", { jobId: "j3", spec }), msg("job.submitted", { jobId: "j4", spec }),
    msg("job.assigned", { jobId: "j1", workerId: "w1", attempt: 1, epoch: 1 }),
    msg("job.started", { jobId: "j1", workerId: "w1", attempt: 1 }),
    msg("job.failed", { jobId: "j1", workerId: "w1", attempt: 1, error: { message: "waited 5 s for #buy", code: "timeout", retryable: true } }),
    msg("job.requeued", { jobId: "j1", attempt: 2, reason: "failed-retryable", notBefore: iso(T0), epoch: 1 }),
    msg("job.assigned", { jobId: "j2", workerId: "w1", attempt: 1, epoch: 1 }),
    msg("job.requeued", { jobId: "j2", attempt: 2, previousAttempt: 1, previousWorkerId: "w1", reason: "worker-lost", notBefore: iso(T0), epoch: 1 }),
    msg("job.assigned", { jobId: "j1", workerId: "w2", attempt: 2, epoch: 1 }),
    msg("job.completed", { jobId: "j1", workerId: "w2", attempt: 2, result, metrics }),
    msg("job.assigned", { jobId: "j2", workerId: "w1", attempt: 2, epoch: 1 }),
    msg("job.completed", { jobId: "j2", workerId: "w1", attempt: 2, result, metrics }),
    msg("job.assigned", { jobId: "j3", workerId: "w2", attempt: 1, epoch: 1 }),
    msg("job.started", { jobId: "j3", workerId: "w2", attempt: 1 }),
  ];

  it("lists the jobs that ran on a worker, newest attempt first, each once with all its attempts; a job that went elsewhere stays", () => {
    seq = 0;
    const { path, w } = open();
    expect(w.applyBatch("TROUPE_EVENTS", script()).skipped).toEqual([]);
    const rm = openReadModels(path);
    const brief = (id: string) => rm.workerJobs(id).map((r) => [r.job.id, r.job.status, r.job.workerId, r.attempts.map((a) => `${a.attempt}:${a.workerId}:${a.outcome}${a.reason ? `:${a.reason}` : ""}`)]);
    expect(brief("w1")).toEqual([
      ["j2", "completed", "w1", ["1:w1:requeued:worker-lost", "2:w1:completed"]],
      ["j1", "completed", "w2", ["1:w1:failed", "2:w2:completed"]],
    ]);
    expect(brief("w2")).toEqual([
      ["j3", "running", "w2", ["1:w2:running"]],
      ["j1", "completed", "w2", ["1:w1:failed", "2:w2:completed"]],
    ]);
    expect(rm.workerJobs("w1")[1]!.attempts[0]).toMatchObject({ errorCode: "timeout", errorMessage: "waited 5 s for #buy", errorRetryable: true, startedAt: expect.any(String), endedAt: expect.any(String) });
    expect(rm.workerJobs("w1", 1).map((r) => r.job.id)).toEqual(["j2"]);
    expect(rm.workerJobs("nobody")).toEqual([]);
    for (const bad of [0, 501, 1.5]) expect(() => rm.workerJobs("w1", bad)).toThrow(ReadModelQueryError);
    // Before: the jobs whose current worker it is.
    expect(rm.listJobs({ workerId: "w1" }).jobs.map((j) => j.id)).toEqual(["j2"]);
    rm.close();
  });

  it("writes an attempt's row when it starts or ends, not for every progress event of its job (the first starts it when it comes before job.started)", () => {
    seq = 0;
    const { w } = open();
    w.db.exec("create table attempt_writes (n integer); insert into attempt_writes values (0); create trigger count_attempts before insert on job_attempts begin update attempt_writes set n = n + 1; end");
    const writes = () => (w.db.prepare("select n from attempt_writes").get() as { n: number }).n;
    w.applyBatch("TROUPE_EVENTS", [msg("job.submitted", { jobId: "a", spec }), msg("job.assigned", { jobId: "a", workerId: "w1", attempt: 1, epoch: 1 })]);
    expect(writes()).toBe(1);
    for (let p = 10; p <= 50; p += 10) w.applyBatch("TROUPE_EVENTS", [msg("job.progress", { jobId: "a", workerId: "w1", attempt: 1, progress: p })]);
    expect(writes()).toBe(2);
    // A job.started after them changes nothing: the attempt runs from its first progress.
    w.applyBatch("TROUPE_EVENTS", [msg("job.started", { jobId: "a", workerId: "w1", attempt: 1 })]);
    expect(writes()).toBe(2);
    w.applyBatch("TROUPE_EVENTS", [msg("job.failed", { jobId: "a", workerId: "w1", attempt: 1, error: { message: "no such element", code: "step-failed", retryable: false } })]);
    expect(writes()).toBe(3);
    expect(w.db.prepare("select outcome, started_at is not null as started, error_code from job_attempts").all()).toEqual([{ outcome: "failed", started: 1, error_code: "step-failed" }]);
    // A redrive reads the finished job back from its row (new objects): its attempt is written again, unchanged, beside the new one.
    const r = w.applyBatch("TROUPE_EVENTS", [msg("job.requeued", { jobId: "a", attempt: 2, reason: "redrive", notBefore: iso(T0), epoch: 1 }), msg("job.assigned", { jobId: "a", workerId: "w2", attempt: 2, epoch: 1 })]);
    expect(r.skipped).toEqual([]);
    expect(w.db.prepare("select attempt, worker_id, outcome from job_attempts order by attempt").all()).toEqual([{ attempt: 1, worker_id: "w1", outcome: "failed" }, { attempt: 2, worker_id: "w2", outcome: "assigned" }]);
  });

  it("holds, for every stored job, exactly the attempts of its view's history (a generated log with failures, requeues and stale reports)", () => {
    const start = Date.now() - 3 * 3600_000;
    const file = join(mkdtempSync(join(tmpdir(), "troupe-attempts-")), "rm.sqlite");
    const w = new ReadModelWriter(openWriterDb(file, "live"), { subjects, seriesRetentionMs: 24 * 3600_000, clockMs: () => start + 4 * 3600_000 });
    const events = [...generateEvents({ workers: 20, events: 4_000, startMs: start, stepMs: 1000, seed: 11 })];
    const lists: Record<string, RawMessage[]> = { TROUPE_EVENTS: [], TROUPE_HEARTBEATS: [] };
    for (const e of events) {
      const list = lists[e.type === "worker.heartbeat" ? "TROUPE_HEARTBEATS" : "TROUPE_EVENTS"] as RawMessage[];
      list.push({ seq: list.length + 1, subject: subjectOf(e), data: encodeEvent(e), publishedMs: Date.parse(e.time) });
    }
    for (const [stream, list] of Object.entries(lists)) for (let i = 0; i < list.length; i += 300) w.applyBatch(stream, list.slice(i, i + 300));
    const views = (w.db.prepare("select view from jobs").all() as { view: string }[]).map((r) => JSON.parse(r.view) as JobView);
    const expected = views.flatMap((j) => jobAttempts(j)).sort((a, b) => (a.jobId === b.jobId ? a.attempt - b.attempt : a.jobId < b.jobId ? -1 : 1));
    const rows = (w.db.prepare("select * from job_attempts order by job_id, attempt").all() as Record<string, unknown>[]).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== null)));
    const asRow = (a: ReturnType<typeof jobAttempts>[number]) => Object.fromEntries(Object.entries({
      job_id: a.jobId, attempt: a.attempt, worker_id: a.workerId, assigned_at: a.assignedAt, started_at: a.startedAt, ended_at: a.endedAt, outcome: a.outcome,
      reason: a.reason, error_code: a.errorCode, error_message: a.errorMessage, error_retryable: a.errorRetryable === undefined ? undefined : Number(a.errorRetryable),
    }).filter(([, v]) => v !== undefined));
    expect(rows).toEqual(expected.map(asRow));
    // The log holds failures, requeues and jobs that ran more than once.
    for (const o of ["completed", "failed", "requeued"]) expect(expected.some((a) => a.outcome === o), o).toBe(true);
    expect(rows.length).toBeGreaterThan(views.filter((j) => j.history.length).length);
    w.close();
  });

  it("reads a file of the schema before job_attempts (the UI during the projector's start-up rebuild): a worker's current jobs, nothing fails", () => {
    seq = 0;
    const { path, w } = open();
    w.applyBatch("TROUPE_EVENTS", script());
    w.db.exec("drop table job_attempts; update meta set value = '8' where key = 'schema_version'");
    const rm = openReadModels(path);
    expect(rm.workerJobs("w1").map((r) => [r.job.id, r.attempts.map((a) => `${a.attempt}:${a.workerId}:${a.outcome}`)])).toEqual([["j2", ["2:w1:completed"]]]);
    expect(rm.workerJobs("w2").map((r) => [r.job.id, r.attempts.map((a) => `${a.attempt}:${a.workerId}:${a.outcome}`)])).toEqual([["j3", ["1:w2:running"]], ["j1", ["2:w2:completed"]]]);
    expect(rm.getJob("j1")).toMatchObject({ status: "completed" });
    rm.close();
    // The projector rebuilds such a file rather than writing into it.
    w.close();
    expect(() => openWriterDb(realpathSync(path), "live")).toThrow(/schema version 8, this build writes 10: rebuild it/);
  });
});
