import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEvent, encodeEvent, subjectOf, subjects, type EventData, type EventType, type TroupeEvent } from "@troupe/events";
import { describe, expect, it } from "vitest";
import { openReadModels, ReadModelQueryError } from "./read-models.ts";
import { openWriterDb, ReadModelWriter, type RawMessage } from "./writer.ts";
import { newGenerationPath, swapIn } from "./db-file.ts";

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
});
