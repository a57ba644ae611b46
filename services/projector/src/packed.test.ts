import { createEvent, decodeEvent, encodeEvent, subjectOf, subjectsFor } from "@troupe/events";
import { describe, expect, it } from "vitest";
import { BatchPacker, overwrittenHeartbeats as overwritten, STICKY_HEARTBEAT_MS, STICKY_MEMORY_TOTAL, stickyMask, unpack, workerHeartbeatKey } from "./packed.ts";

const s = subjectsFor("troupe");
const spec = { url: "https://e.com/ü/✓", priority: 5, maxAttempts: 3, timeoutMs: 60_000 };

describe("overwrittenHeartbeats", () => {
  const hb = (worker: string | null, hasMemoryTotal = false) => ({ worker, hasMemoryTotal });
  const overwrittenHeartbeats = (hbs: { worker: string | null; hasMemoryTotal: boolean }[]) => [...overwritten(hbs.map((h) => h.worker), hbs.map((h) => h.hasMemoryTotal))].map(Boolean);
  it("marks a heartbeat only when a later one of the same worker follows before any other event", () => {
    expect(overwrittenHeartbeats([hb("a"), hb("b"), hb("a"), hb("a"), hb("b")])).toEqual([true, true, true, false, false]);
    // Another valid event in between (it may change the worker's view): nothing before it is marked for what comes after it.
    expect(overwrittenHeartbeats([hb("a"), hb(null), hb("a"), hb("a")])).toEqual([false, false, true, false]);
    expect(overwrittenHeartbeats([])).toEqual([]);
  });

  it("keeps a heartbeat with a memoryTotal unless a later one has one too (an absent memoryTotal keeps the previous)", () => {
    expect(overwrittenHeartbeats([hb("a", true), hb("a"), hb("a")])).toEqual([false, true, false]);
    expect(overwrittenHeartbeats([hb("a", true), hb("a"), hb("a", true), hb("a")])).toEqual([true, true, false, false]);
  });

  it("keeps a heartbeat with a heartbeatMs too unless later ones set it (it is sticky like memoryTotal; a rebuild differed from the live fold)", () => {
    const m = (worker: string, mask: number) => ({ worker, mask });
    const run = (hbs: { worker: string; mask: number }[]) => [...overwritten(hbs.map((h) => h.worker), hbs.map((h) => h.mask))].map(Boolean);
    expect(run([m("a", STICKY_HEARTBEAT_MS), m("a", 0)])).toEqual([false, false]);
    expect(run([m("a", STICKY_HEARTBEAT_MS), m("a", STICKY_HEARTBEAT_MS)])).toEqual([true, false]);
    // Both sticky fields: overwritten only once later heartbeats set both, between them.
    expect(run([m("a", STICKY_HEARTBEAT_MS | STICKY_MEMORY_TOTAL), m("a", STICKY_MEMORY_TOTAL), m("a", STICKY_HEARTBEAT_MS)])).toEqual([true, false, false]);
    expect(run([m("a", STICKY_HEARTBEAT_MS | STICKY_MEMORY_TOTAL), m("a", STICKY_MEMORY_TOTAL)])).toEqual([false, false]);
    expect(stickyMask({ heartbeatMs: 30_000, metrics: {} })).toBe(STICKY_HEARTBEAT_MS);
    expect(stickyMask({ metrics: { memoryTotal: 1 } })).toBe(STICKY_MEMORY_TOTAL);
  });
});

describe("overwrittenHeartbeats of several processes of one worker", () => {
  const run = (hbs: [string, string][]) => [...overwritten(hbs.map(([w, i]) => workerHeartbeatKey(w, i)), hbs.map(() => 0))].map(Boolean);
  it("marks a heartbeat only when a later one of the same process follows (a view keeps each process's latest)", () => {
    expect(run([["a", "i"], ["a", "i"]])).toEqual([true, false]);
    expect(run([["a", "i"], ["a", "j"]])).toEqual([false, false]);
    expect(run([["a", "i"], ["a", "j"], ["a", "i"], ["a", "j"]])).toEqual([true, true, false, false]);
  });
});

describe("packed rebuild batches", () => {
  it.each([["on the reading thread", true], ["on the writer thread", false]])("carry every message's sequence, publish time and decode result across, however big the bodies (validated %s)", (_where, validate) => {
    const valid = Array.from({ length: 30 }, (_, i) => createEvent("job.submitted", { jobId: `j${i}`, spec: { ...spec, tags: ["t"], url: `https://e.com/ü/✓/${"x".repeat(i * 40)}` } }, "master"));
    const msgs: { subject: string; body: Uint8Array }[] = valid.map((e) => ({ subject: subjectOf(e, s), body: encodeEvent(e) }));
    // Invalid ones: not JSON, a body on the wrong subject, a truncated multi-byte character.
    msgs.splice(3, 0, { subject: "troupe.evt.job.x.submitted", body: new TextEncoder().encode("{not json") });
    msgs.splice(7, 0, { subject: "troupe.evt.job.other.submitted", body: encodeEvent(valid[0]!) });
    msgs.splice(9, 0, { subject: "troupe.evt.job.y.submitted", body: Uint8Array.of(0x7b, 0x22, 0xc3) });
    // A tiny body hint: the packer has to grow its buffer several times.
    const packer = new BatchPacker("TROUPE_EVENTS", s, msgs.length, validate, 16);
    msgs.forEach((m, i) => packer.add(m.subject, m.body, 100 + i, 1_000 + i));
    expect(packer.full).toBe(true);
    const batch = packer.take();
    expect(packer.size).toBe(0);
    expect(batch.count).toBe(msgs.length);
    if ("invalid" in batch.checked) {
      expect(batch.checked.invalid.map((x) => [x.i, x.subject, x.error.code])).toEqual([
        [3, "troupe.evt.job.x.submitted", "not-json"], [7, "troupe.evt.job.other.submitted", "subject-mismatch"], [9, "troupe.evt.job.y.submitted", "not-json"],
      ]);
    }
    expect("invalid" in batch.checked).toBe(validate);
    const out = unpack(batch, s);
    expect(out).toHaveLength(msgs.length);
    out.forEach((m, i) => {
      const src = msgs[i]!;
      expect([m.seq, m.publishedMs, m.subject]).toEqual([100 + i, 1_000 + i, src.subject]);
      expect(Buffer.from(m.data).equals(Buffer.from(src.body))).toBe(true);
      expect(m.decoded).toEqual(decodeEvent(src.subject, src.body, { subjects: s }));
    });
  });

  it("starts a fresh batch after take, and refuses more than its maximum", () => {
    const packer = new BatchPacker("TROUPE_EVENTS", s, 2);
    const e = createEvent("job.submitted", { jobId: "a", spec }, "master");
    packer.add(subjectOf(e, s), encodeEvent(e), 1, 1);
    packer.add(subjectOf(e, s), encodeEvent(e), 2, 2);
    expect(() => packer.add(subjectOf(e, s), encodeEvent(e), 3, 3)).toThrow(/full/);
    const first = packer.take();
    packer.add(subjectOf(e, s), encodeEvent(e), 3, 3);
    const second = packer.take();
    expect([first.count, second.count]).toEqual([2, 1]);
    expect(unpack(second, s).map((m) => m.seq)).toEqual([3]);
    expect(unpack(first, s).map((m) => m.seq)).toEqual([1, 2]);
  });

  it("folds in full a heartbeat whose heartbeatMs no later one of the same worker replaces", () => {
    const hb = (heartbeatMs?: number) => createEvent("worker.heartbeat", {
      workerId: "w1", instanceId: "i1", status: "online", currentJobs: 0, maxConcurrentJobs: 2, jobIds: [], ...(heartbeatMs !== undefined ? { heartbeatMs } : {}),
      metrics: { memoryUsage: 1, cpuUsage: 1, diskUsage: 1, networkUsage: 1, jobsCompleted: 0, jobsFailed: 0, averageResponseTime: 0 },
      performance: { successRate: 100, averageJobDuration: 0 },
    }, "w1");
    const packer = new BatchPacker("TROUPE_HEARTBEATS", s, 3, true);
    [hb(3_600_000), hb(), hb()].forEach((e, i) => packer.add(subjectOf(e, s), encodeEvent(e), i + 1, i + 1));
    // No later heartbeat sets a heartbeatMs, so the first one's stays in the view: it is folded in full; the second is
    // wholly repeated by the third and only gives its sample.
    expect([...(packer.take().samples?.idx ?? [])]).toEqual([1]);
    [hb(3_600_000), hb(), hb(30_000)].forEach((e, i) => packer.add(subjectOf(e, s), encodeEvent(e), i + 1, i + 1));
    // A later heartbeatMs replaces it: both before the last only give samples.
    expect([...(packer.take().samples?.idx ?? [])]).toEqual([0, 1]);
  });

  it("switches where it validates from one batch to the next, never within a batch", () => {
    const packer = new BatchPacker("TROUPE_EVENTS", s, 3, false);
    const e = createEvent("job.submitted", { jobId: "a", spec }, "master");
    const bad = new TextEncoder().encode("nope");
    packer.add(subjectOf(e, s), encodeEvent(e), 1, 1);
    packer.setValidate(true);
    packer.add("troupe.evt.job.a.submitted", bad, 2, 2);
    const first = packer.take();
    packer.add("troupe.evt.job.a.submitted", bad, 3, 3);
    const second = packer.take();
    expect(["subjects" in first.checked, "invalid" in second.checked]).toEqual([true, true]);
    for (const b of [first, second]) expect(unpack(b, s).at(-1)!.decoded).toMatchObject({ ok: false, error: { code: "not-json" } });
    expect(unpack(first, s)[0]!.decoded).toEqual({ ok: true, value: JSON.parse(JSON.stringify(e)) });
  });
});
